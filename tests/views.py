from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmIView(APIView):
    """Reads only request.user.pk: must cost zero SQL on a Redis hit."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.pk})


class MeView(APIView):
    """Reads a real user attribute, so the user row is loaded."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"username": request.user.get_username()})
