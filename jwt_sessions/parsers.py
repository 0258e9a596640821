"""Request bodies of the HTTP API: JSON (forms where an RFC says so), and never a 500 on
hostile input."""
from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

FORM = "application/x-www-form-urlencoded"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, except that a body nested deeper than Python's decoder can
    follow (`[[[[...`) is a 400 like any other malformed JSON, not a RecursionError."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply.") from exc


class FormParser(parsers.FormParser):
    """DRF's form parser, except that a form Django parses as one is taken from Django's
    `request.POST`, parsed once per request: introspection reads it before DRF does (to
    check both tokens in one round trip)."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        request = getattr((parser_context or {}).get("request"), "_request", None)
        if request is not None and request.content_type == FORM:
            return request.POST
        return super().parse(stream, media_type, parser_context)
