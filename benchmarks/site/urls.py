from django.urls import include, path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from .ninja_api import api as ninja_api
from .views import VIEWS, KnoxLogin

urlpatterns = [
    path("auth/", include("jwt_sessions.urls")),
    path("simplejwt/login/", TokenObtainPairView.as_view()),
    path("simplejwt/refresh/", TokenRefreshView.as_view()),
    path("knox/login/", KnoxLogin.as_view()),
    path("ninja/", ninja_api.urls),
] + [path(f"whoami/{name}/", view.as_view()) for name, view in VIEWS.items()]
