from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmIView(APIView):
    """A protected endpoint: answers from the token alone (no SQL on a Redis hit)."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.pk})
