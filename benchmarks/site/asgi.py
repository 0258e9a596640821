"""ASGI entry point for uvicorn: HTTP (the DRF and ninja views) and the WebSocket of the
close-latency figure (the example project's consumer behind JWTSessionAuthMiddleware)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.site.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from example_project.routing import websocket_urlpatterns  # noqa: E402
from jwt_sessions.channels import JWTSessionAuthMiddleware  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": JWTSessionAuthMiddleware(URLRouter(websocket_urlpatterns)),
})
