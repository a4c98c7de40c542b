"""A tiny real HTTP client for end-to-end tests (standard library only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def http_json(method: str, url: str, token: str | None = None, body: Any = None, headers=None) -> tuple[int, Any]:
    """(status, parsed JSON or None) of one request; HTTP errors are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw) if raw else None
        except ValueError:
            return error.code, raw.decode(errors="replace")
