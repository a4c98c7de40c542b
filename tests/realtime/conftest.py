"""Fixtures for real-time tests: real daphne processes, users with tokens, a public room."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.support.ws import access_token


@dataclass
class ChatWorld:
    server: object
    alice: object
    bob: object
    carol: object
    room: object
    tokens: dict


@pytest.fixture
def world(daphne_factory, user_factory, room_factory) -> ChatWorld:
    """One daphne process; alice (owner) and bob are members of public room `lobby`; carol is not."""
    alice, bob, carol = user_factory("alice"), user_factory("bob"), user_factory("carol")
    room = room_factory("lobby", owner=alice, members=[bob])
    server = daphne_factory()
    tokens = {user.username: access_token(user) for user in (alice, bob, carol)}
    return ChatWorld(server=server, alice=alice, bob=bob, carol=carol, room=room, tokens=tokens)
