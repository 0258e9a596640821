from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from example_project import admin as _user_admin  # noqa: F401  (the user admin, with the mixin)
from example_project import views
from tests import views as test_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("jwt_sessions.urls")),
    path("api/whoami/", views.WhoAmIView.as_view(), name="whoami"),
    path("api/me/", views.MeView.as_view(), name="me"),
    path("api/sensitive/", test_views.SensitiveView.as_view(), name="sensitive"),
    path("api/passkey-only/", test_views.PasskeyOnlyView.as_view(), name="passkey-only"),
    path("api/claims/", test_views.ClaimsView.as_view(), name="claims"),
]
if settings.ALLAUTH:
    urlpatterns.append(path("_allauth/", include("allauth.headless.urls")))
