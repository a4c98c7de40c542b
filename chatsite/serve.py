"""Run chatsite under daphne with the project's WebSocket settings (heartbeats, frame limits).

`python -m chatsite.serve --bind HOST --port PORT` is what `make run` and `make cluster` start.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from daphne.cli import CommandLineInterface

    daphne_args = [
        "--bind", args.bind,
        "--port", str(args.port),
        "--ping-interval", str(settings.CHAT_WS_PING_INTERVAL),
        "--ping-timeout", str(settings.CHAT_WS_PING_TIMEOUT),
        # Clients reconnect and resume after their last id, so a daily forced reconnect is harmless
        # and bounds how long one socket can pin a process (docs/realtime.md).
        "--websocket_timeout", "86400",
        "--websocket_connect_timeout", "5",
        "--http-timeout", "60",
        "--application-close-timeout", "5",
        "chatsite.asgi:application",
    ]
    CommandLineInterface().run(daphne_args)


if __name__ == "__main__":
    main(sys.argv[1:])
