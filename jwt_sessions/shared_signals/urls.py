"""The Shared Signals routes, included by `jwt_sessions.urls` (app namespace kept), and
the discovery route a project adds to its root urls.py."""
from __future__ import annotations

from django.urls import URLPattern, path

from ..discovery import well_known_path
from . import settings as ssf
from . import views

urlpatterns = [
    path(".well-known/ssf-configuration", views.ConfigurationView.as_view(),
         name="ssf_configuration"),
    path("ssf/streams/", views.StreamView.as_view(), name="ssf_stream"),
    path("ssf/status/", views.StatusView.as_view(), name="ssf_status"),
    path("ssf/verify/", views.VerificationView.as_view(), name="ssf_verification"),
    path("ssf/poll/<uuid:stream_id>/", views.PollView.as_view(), name="ssf_poll"),
    path("ssf/receive/", views.ReceiveView.as_view(), name="ssf_receive"),
    path("global-token-revocation/", views.GlobalTokenRevocationView.as_view(),
         name="global_token_revocation"),
]


def discovery_urlpatterns(issuer: str | None = None) -> list[URLPattern]:
    """The metadata at the issuer's discovery path, for the project's root urls.py
    (`jwt_sessions.urls` serves it under its own prefix, which receivers do not guess)."""
    issuer = ssf.issuer() if issuer is None else issuer
    if not issuer:
        return []
    return [path(well_known_path("ssf-configuration", issuer), views.ConfigurationView.as_view(),
                 name="ssf_discovery")]
