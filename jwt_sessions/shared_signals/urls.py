"""The Shared Signals routes, included by `jwt_sessions.urls` (app namespace kept)."""
from django.urls import path

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
