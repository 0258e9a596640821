"""The example site: a protected API (DRF + jwt_sessions) and a few plain pages using it."""
import os

from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from jwt_sessions.permissions import authenticated_with, recent_authentication

# EXAMPLE_STEP_UP_SECONDS=2: how recent a password check /api/step-up/ wants (the browser
# tests shorten it to see a step-up happen).
STEP_UP_SECONDS = int(os.environ.get("EXAMPLE_STEP_UP_SECONDS", "300"))


class WhoAmIView(APIView):
    """A protected endpoint: answers from the token alone (no SQL on a Redis hit)."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.pk})


class MeView(APIView):
    """A protected endpoint that reads the user row (one query)."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        user = request.user
        return Response({"id": user.pk, "username": user.get_username(),
                         "session_id": str(request.auth.session_id)})


class StepUpView(APIView):
    """A sensitive action: it wants the password checked in the last few minutes."""

    permission_classes = [IsAuthenticated, recent_authentication(STEP_UP_SECONDS)]

    def post(self, request):
        return Response({"id": request.user.pk, "confirmed": True})


class VaultView(APIView):
    """A sensitive endpoint: only for a session that proved itself with a passkey (or a
    security key) in the last five minutes."""

    permission_classes = [IsAuthenticated, recent_authentication(300), authenticated_with("hwk")]

    def get(self, request):
        return Response({"secret": "the vault is open", "amr": list(request.auth.amr)})


@method_decorator(ensure_csrf_cookie, name="dispatch")
class Page(TemplateView):
    """A page of the demo. The CSRF cookie is set because refresh and logout in cookie
    mode are CSRF-checked (the JavaScript sends it back as X-CSRFToken)."""
