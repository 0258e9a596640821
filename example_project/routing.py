from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/session/", consumers.SessionConsumer.as_asgi(), name="session-socket"),
]
