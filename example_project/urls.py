from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("auth/", include("jwt_sessions.urls")),
    path("api/whoami/", views.WhoAmIView.as_view(), name="whoami"),
    path("api/me/", views.MeView.as_view(), name="me"),
    path("api/step-up/", views.StepUpView.as_view(), name="step-up"),
    path("", views.Page.as_view(template_name="example/home.html"), name="home"),
    path("login/", views.Page.as_view(template_name="example/login.html"), name="login"),
    path("protected/", views.Page.as_view(template_name="example/protected.html"),
         name="protected"),
    path("devices/", views.Page.as_view(template_name="example/devices.html"), name="devices"),
]

if settings.ALLAUTH:
    urlpatterns += [
        path("_allauth/", include("allauth.headless.urls")),
        path("api/vault/", views.VaultView.as_view(), name="vault"),
        path("passkey/", views.Page.as_view(template_name="example/passkey.html"),
             name="passkey"),
    ]
