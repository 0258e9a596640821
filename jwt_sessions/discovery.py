"""The discovery documents at the paths a client derives from the issuer alone: the
well-known name between the issuer's host and its path (RFC 8414, SSF). A project adds
`*discovery_urlpatterns()` to its root urls.py, since `jwt_sessions.urls` serves them
under its own prefix, which no client guesses."""
from __future__ import annotations

from urllib.parse import urlsplit

from django.urls import URLPattern, path

from .conf import jwt_settings
from .shared_signals import settings as ssf


def well_known_path(name: str, issuer: str) -> str:
    """`.well-known/<name>` followed by the issuer's path (none for a bare host)."""
    return f".well-known/{name}" + urlsplit(issuer).path.rstrip("/")


def metadata_issuer() -> str:
    """The issuer the authorization-server metadata names: ISSUER, else Shared Signals'."""
    return str(jwt_settings.ISSUER or ssf.issuer() or "")


def discovery_urlpatterns(issuer: str | None = None) -> list[URLPattern]:
    """The authorization-server metadata at the issuer's discovery path, and the Shared
    Signals configuration at its own when Shared Signals is on; nothing without an issuer."""
    from .metadata import AuthorizationServerMetadataView
    from .shared_signals.urls import discovery_urlpatterns as ssf_discovery_urlpatterns

    issuer = metadata_issuer() if issuer is None else issuer
    if not issuer:
        return []
    patterns = [path(well_known_path("oauth-authorization-server", issuer),
                     AuthorizationServerMetadataView.as_view(issuer=issuer),
                     name="authorization_server_discovery")]
    if ssf.enabled():
        patterns += ssf_discovery_urlpatterns()
    return patterns
