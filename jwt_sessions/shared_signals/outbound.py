"""The HTTP client of Shared Signals' outgoing requests (pushes, JWKS fetches).

Redirects are never followed: a push's authorization header must never reach another
address than the stream's endpoint, and a JWKS URL must not be able to send our GET on
to an internal address. A redirect answer is an `HTTPError` like any other failure.
"""
from __future__ import annotations

import urllib.request


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


opener = urllib.request.build_opener(_NoRedirect)
