"""The event stream through nginx (deploy/nginx, as `make cluster` runs it): unbuffered, headers intact."""

from __future__ import annotations

import asyncio

import pytest

from tests.ops.support import token_for
from tests.support.sse import open_stream
from tests.support.ws import join, send

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


def test_the_stream_passes_nginx_unbuffered(cluster, user_factory, room_factory):
    """Through nginx each event arrives as it is written (a socket's message within a second), with the stream headers."""
    import websockets

    alice, bob = user_factory(), user_factory()
    room = room_factory(members=[alice, bob])
    alice_token, bob_token = token_for(alice), token_for(bob)
    base = f"http://127.0.0.1:{cluster.port}"

    async def scenario() -> None:
        stream = await open_stream(None, url=f"{base}/api/v1/stream/?rooms={room.slug}", token=alice_token)
        assert stream.status == 200
        assert stream.response.headers["x-accel-buffering"] == "no"
        assert stream.response.headers["cache-control"] == "no-cache"
        # A few hundred bytes: nginx with buffering on would hold them back.
        assert (await stream.event_of_type("joined", timeout=2)).data["room"] == room.slug
        ws = await websockets.connect(cluster.ws_url, additional_headers={"Authorization": f"Bearer {bob_token}"})
        await join(ws, room.slug)
        await send(ws, {"type": "message", "room": room.slug, "body": "through nginx", "client_id": "n1"})
        message = await stream.event_of_type("message", timeout=1)
        assert message.data["message"]["client_id"] == "n1"
        await ws.close()
        await stream.close()

    asyncio.run(scenario())
