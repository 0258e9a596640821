"""The same whoami view (returns request.user.pk) once per authentication scheme."""
from knox.auth import TokenAuthentication
from knox.views import LoginView as KnoxLoginView
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import (
    JWTAuthentication,
    JWTStatelessUserAuthentication,
)

from jwt_sessions.authentication import JWTSessionAuthentication

from .floor import FloorAuthentication


class WhoAmI(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.pk})


def whoami(*classes):
    return type("WhoAmI", (WhoAmI,), {"authentication_classes": list(classes)})


class NoAuth(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"id": None})


VIEWS = {
    "none": NoAuth,
    "floor": whoami(FloorAuthentication),
    "jwt_sessions": whoami(JWTSessionAuthentication),
    "simplejwt": whoami(JWTAuthentication),
    "simplejwt_stateless": whoami(JWTStatelessUserAuthentication),
    "knox": whoami(TokenAuthentication),
    "session": whoami(SessionAuthentication),
}


class KnoxLogin(KnoxLoginView):
    authentication_classes = [BasicAuthentication]
