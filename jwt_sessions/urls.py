"""`path("auth/", include("jwt_sessions.urls"))` (app namespace "jwt_sessions")."""
from django.urls import path

from . import views
from .metadata import AuthorizationServerMetadataView
from .shared_signals.urls import urlpatterns as shared_signals_urls

app_name = "jwt_sessions"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("refresh/", views.RefreshView.as_view(), name="refresh"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("logout-all/", views.LogoutAllView.as_view(), name="logout-all"),
    path("sessions/", views.SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>/", views.SessionDetailView.as_view(),
         name="session-detail"),
    path(".well-known/jwks.json", views.JWKSView.as_view(), name="jwks"),
    path("introspect/", views.IntrospectView.as_view(), name="introspect"),
    path("revoke/", views.RevokeView.as_view(), name="revoke"),
    path("reauthenticate/", views.ReauthenticateView.as_view(), name="reauthenticate"),
    path(".well-known/oauth-authorization-server", AuthorizationServerMetadataView.as_view(),
         name="authorization_server_metadata"),
    *shared_signals_urls,
]
