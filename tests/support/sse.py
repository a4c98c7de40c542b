"""A real HTTP client for the event stream (httpx), as a browser's EventSource or a mobile app reads it.

`open_stream(server, rooms=..., token=...)` performs the request and returns a `Stream` whose
events are parsed by the text/event-stream rules (fields, comments, blank-line dispatch) in a
background task; `next_event`/`event_until` wait with a deadline, never a sleep. Comments (`: ping`)
are kept as events of type `comment`, so tests can see the keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Event:
    type: str
    data: Any = None
    id: str | None = None
    raw: str = ""

    @property
    def frame(self) -> dict[str, Any]:
        return self.data


@dataclass
class Stream:
    response: httpx.Response
    client: httpx.AsyncClient
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task | None = None
    last_event_id: str | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    async def next_event(self, timeout: float = 3.0, *, comments: bool = False) -> Event:
        """The next event (pings skipped unless `comments`); AssertionError if none in time or the stream ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no event arrived within {timeout}s")
            try:
                event = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                raise AssertionError(f"no event arrived within {timeout}s") from None
            if event.type == "end":
                self.events.put_nowait(event)
                raise AssertionError("the stream ended")
            if event.type == "comment" and not comments:
                continue
            return event

    async def event_until(self, predicate: Callable[[Event], bool], timeout: float = 3.0) -> Event:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next_event(max(0.01, deadline - loop.time()))
            if predicate(event):
                return event

    async def event_of_type(self, event_type: str, timeout: float = 3.0) -> Event:
        return await self.event_until(lambda event: event.type == event_type, timeout)

    async def wait_ended(self, timeout: float = 3.0) -> None:
        await asyncio.wait_for(self.ended.wait(), timeout)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        await self.response.aclose()
        await self.client.aclose()


async def _read(stream: Stream) -> None:
    fields: dict[str, str] = {}
    data_lines: list[str] = []
    raw: list[str] = []
    try:
        async for line in stream.response.aiter_lines():
            if line == "":
                if data_lines or "event" in fields:
                    text = "\n".join(data_lines)
                    try:
                        data = json.loads(text) if text else None
                    except json.JSONDecodeError:
                        data = text
                    event_id = fields.get("id")
                    if event_id is not None:
                        stream.last_event_id = event_id
                    stream.events.put_nowait(
                        Event(type=fields.get("event", "message"), data=data, id=event_id, raw="\n".join(raw))
                    )
                fields, data_lines, raw = {}, [], []
                continue
            raw.append(line)
            if line.startswith(":"):
                stream.events.put_nowait(Event(type="comment", data=line[1:].strip(), raw=line))
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data_lines.append(value)
            else:
                fields[name] = value
    except (httpx.HTTPError, asyncio.CancelledError):
        pass
    finally:
        stream.ended.set()
        stream.events.put_nowait(Event(type="end"))


def stream_url(server, *, rooms: str | None = None, query: str = "") -> str:
    params = []
    if rooms is not None:
        params.append(f"rooms={rooms}")
    if query:
        params.append(query)
    return server.http_url + "/api/v1/stream/" + ("?" + "&".join(params) if params else "")


async def open_stream(
    server,
    *,
    rooms: str | None = None,
    token: str | None = None,
    query: str = "",
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    url: str | None = None,
) -> Stream:
    """GET the stream; the returned Stream has its status and, when 200, a reader running."""
    request_headers = dict(headers or {})
    if token is not None:
        request_headers["Authorization"] = f"Bearer {token}"
    client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), cookies=cookies)
    request = client.build_request("GET", url or stream_url(server, rooms=rooms, query=query), headers=request_headers)
    response = await client.send(request, stream=True)
    stream = Stream(response=response, client=client)
    if response.status_code == 200:
        stream.reader = asyncio.create_task(_read(stream))
    else:
        await response.aread()
    return stream


async def refused(server, **kwargs) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of a stream request expected to be refused before streaming."""
    stream = await open_stream(server, **kwargs)
    try:
        assert stream.status != 200, "the stream was expected to be refused"
        return stream.status, stream.response.json()
    finally:
        await stream.close()
