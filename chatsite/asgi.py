"""ASGI root: HTTP to Django; WebSocket through the full origin check and authentication to the chat consumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below use models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from accounts.ws_auth import FullOriginValidator, WebSocketAuthMiddleware  # noqa: E402
from rooms.consumers import ChatConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": FullOriginValidator(
            WebSocketAuthMiddleware(URLRouter([path("ws/chat/", ChatConsumer.as_asgi())]))
        ),
    }
)
