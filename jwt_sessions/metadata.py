"""Authorization server metadata (RFC 8414 style): where a gateway finds introspection,
revocation, the JWKS, Global Token Revocation and (when on) the Shared Signals
transmitter, so that nothing has to be configured by hand but this one URL."""
from __future__ import annotations

from django.urls import reverse
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from .discovery import metadata_issuer
from .dpop.settings import dpop_settings
from .shared_signals import settings as ssf
from .views import JWTSessionsView


class AuthorizationServerMetadataView(JWTSessionsView):
    """GET -> the metadata document; `issuer` is ISSUER (else Shared Signals' ISSUER,
    else this URL's prefix)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    issuer: str | None = None  # set by `discovery_urlpatterns`: the one its path derives from

    def get(self, request: Request) -> Response:
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(f"jwt_sessions:{name}"))

        bearer = ["bearer"]  # RFC 6750 access tokens of an account holding the permission
        document = {
            "issuer": self.issuer or metadata_issuer() or url("jwks").rsplit(
                ".well-known/", 1)[0],
            "jwks_uri": url("jwks"),
            "introspection_endpoint": url("introspect"),
            "introspection_endpoint_auth_methods_supported": bearer,
            "revocation_endpoint": url("revoke"),
            "revocation_endpoint_auth_methods_supported": ["none"],
            "global_token_revocation_endpoint": url("global_token_revocation"),
            "global_token_revocation_endpoint_auth_methods_supported": bearer,
            # RFC 9449: the proof algorithms this deployment accepts.
            "dpop_signing_alg_values_supported": list(dpop_settings().algorithms),
        }
        if ssf.enabled():
            document["ssf_configuration_uri"] = url("ssf_configuration")
        return Response(document)
