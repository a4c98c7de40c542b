"""Real WebSocket clients for end-to-end tests (the `websockets` library, as a native app would)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import websockets
from asgiref.sync import sync_to_async
from rest_framework_simplejwt.tokens import AccessToken


def access_token(user) -> str:
    return str(AccessToken.for_user(user))


async def async_access_token(user) -> str:
    return await sync_to_async(access_token)(user)


async def connect(server, *, token: str | None = None, origin: str | None = None, query: str = "", headers=None):
    """Open a socket to `server` (a DaphneProcess) with a Bearer token and/or an Origin header."""
    extra = dict(headers or {})
    if token is not None:
        extra["Authorization"] = f"Bearer {token}"
    url = server.ws_url + (f"?{query}" if query else "")
    return await websockets.connect(url, additional_headers=extra, origin=origin, max_size=None, open_timeout=5)


async def send(ws, frame: dict[str, Any] | str) -> None:
    await ws.send(frame if isinstance(frame, str) else json.dumps(frame))


async def recv(ws, timeout: float = 3.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, predicate: Callable[[dict], bool], timeout: float = 3.0) -> dict[str, Any]:
    """The first frame matching `predicate`, skipping others (presence, typing...)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError("no matching frame arrived in time")
        frame = await recv(ws, remaining)
        if predicate(frame):
            return frame


async def recv_type(ws, frame_type: str, timeout: float = 3.0) -> dict[str, Any]:
    return await recv_until(ws, lambda frame: frame.get("type") == frame_type, timeout)


async def drain(ws, seconds: float = 0.3) -> list[dict[str, Any]]:
    """Every frame that arrives within `seconds`."""
    frames = []
    try:
        while True:
            frames.append(await recv(ws, seconds))
    except TimeoutError:
        return frames


async def join(ws, room: str, after: int | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "join", "room": room}
    if after is not None:
        frame["after"] = after
    await send(ws, frame)
    return await recv_type(ws, "joined")


async def close_code(ws, timeout: float = 3.0) -> int | None:
    """Wait for the server to close the socket; its close code."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
