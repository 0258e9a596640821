"""The example project under ASGI: Django's HTTP views plus the WebSocket of the devices
page. `manage.py runserver` serves this (daphne is in INSTALLED_APPS); in production run
`daphne example_project.asgi:application` or `uvicorn example_project.asgi:application`."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from jwt_sessions.channels import JWTSessionAuthMiddleware  # noqa: E402

from .routing import websocket_urlpatterns  # noqa: E402

# No origin check is needed for this socket: the browser never attaches the token by
# itself (it is no cookie), so another site's page cannot open it as the user.
application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": JWTSessionAuthMiddleware(URLRouter(websocket_urlpatterns)),
})
