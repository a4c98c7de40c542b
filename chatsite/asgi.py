"""ASGI root: the event stream and the WebSocket through the full origin check and authentication,
the rest of HTTP to Django.

Importing it under daphne (`daphne chatsite.asgi:application`, `python -m chatsite.serve`, or
`runserver` with daphne installed) also hooks the process into daphne once
(rooms/realtime/writer.py): the fast socket writer, the header deadline, the ping rules, and the
graceful 4012 shutdown on SIGTERM.
"""

import asyncio
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_asgi_app = get_asgi_application()  # sets Django up before the imports below use models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from accounts.ws_auth import ConnectionAuthMiddleware, FullOriginValidator  # noqa: E402
from rooms.protocol import CLOSE_SHUTTING_DOWN  # noqa: E402
from rooms.realtime import writer  # noqa: E402
from rooms.realtime.consumer import ChatConsumer  # noqa: E402
from rooms.realtime.hub import running_hubs  # noqa: E402
from rooms.stream import StreamApp  # noqa: E402

application = ProtocolTypeRouter(
    {
        # The stream is an ASGI app of its own, not a Django view: Django would hold a thread per
        # open stream and gives no way to write each event to the client as it happens.
        "http": URLRouter(
            [
                path("api/v1/stream/", FullOriginValidator(ConnectionAuthMiddleware(StreamApp()))),
                re_path(r"", django_asgi_app),  # type: ignore[arg-type]  # channels routes to ASGI apps
            ]
        ),
        "websocket": FullOriginValidator(
            ConnectionAuthMiddleware(URLRouter([path("ws/chat/", ChatConsumer.as_asgi())]))
        ),
    }
)


async def _shut_down_hubs() -> None:
    await asyncio.gather(*(hub.shutdown(code=CLOSE_SHUTTING_DOWN) for hub in running_hubs()))


writer.install()
writer.on_shutdown(_shut_down_hubs)
