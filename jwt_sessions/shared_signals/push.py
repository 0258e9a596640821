"""One push (RFC 8935): POST a SET to a receiver's endpoint, say what came of it.

Redirects are not followed (`outbound`): the receiver's authorization header must never
be sent to another address than the one the stream names.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from .outbound import opener


@dataclass(frozen=True)
class PushResult:
    delivered: bool
    permanent: bool  # the receiver refused this SET for good (RFC 8935 error body)
    detail: str


def push_set(endpoint_url: str, token: str, authorization: str, timeout: float) -> PushResult:
    headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    if not endpoint_url.startswith(("https://", "http://")):
        return PushResult(False, True, "the endpoint is not an http(s) URL")
    request = urllib.request.Request(endpoint_url, data=token.encode(),  # noqa: S310 (http(s))
                                     headers=headers, method="POST")
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return _refused(exc)
    except (OSError, ValueError) as exc:  # unreachable, timed out, reset, bad URL
        return PushResult(False, False, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return PushResult(True, False, "")
    return PushResult(False, False, f"HTTP {status}")


def _refused(exc: urllib.error.HTTPError) -> PushResult:
    """A 400 with an RFC 8935 error body is the receiver's final word on this SET;
    anything else (5xx, 429, an auth failure being fixed) may pass later."""
    try:
        body = json.loads(exc.read(4096) or b"{}")
    except (ValueError, OSError):
        body = {}
    err = body.get("err") if isinstance(body, dict) else None
    detail = f"HTTP {exc.code}" + (f" {err}: {body.get('description', '')}" if err else "")
    return PushResult(False, exc.code == 400 and bool(err), detail[:500])
