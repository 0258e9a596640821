"""Views of the test site that only tests need: a sensitive action and a claims echo."""
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from jwt_sessions.permissions import authenticated_with, recent_authentication


class SensitiveView(APIView):
    """An action that needs a password confirmed in the last five minutes."""

    permission_classes = [IsAuthenticated, recent_authentication(300)]

    def post(self, request):
        return Response({"done": True})


class PasskeyOnlyView(APIView):
    """An action that needs the session's last authentication to be a security key."""

    permission_classes = [IsAuthenticated, authenticated_with("hwk")]

    def post(self, request):
        return Response({"done": True})


class ClaimsView(APIView):
    """What a view sees of the token: `request.auth`."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        claims = request.auth
        return Response({"extra": dict(claims.extra), "amr": list(claims.amr),
                         "auth_time": claims.auth_time.timestamp()})
