"""The WebSocket handshake refuses credentials that ended (CONTRACT §7): a JWT or ticket issued
before a password change, a deactivated user's; in-process, on the in-memory layer."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from accounts import services as account_services
from accounts.tickets import ticket_issue
from accounts.tokens import token_pair_issue
from chatsite.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    settings.REDIS_URL = ""


async def handshake(*, token: str | None = None, ticket: str | None = None) -> tuple[bool, object]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    ws = WebsocketCommunicator(application, "/ws/chat/" + (f"?ticket={ticket}" if ticket else ""), headers=headers)
    connected, code = await ws.connect()
    if connected:
        await ws.disconnect()
    return connected, code


async def test_credentials_from_before_a_password_change_are_refused(user_factory):
    """An access token and a ticket issued before the change: 4001; new ones open a socket."""
    user = await sync_to_async(user_factory)()
    old = await sync_to_async(token_pair_issue)(user=user)
    old_ticket, _ = await sync_to_async(ticket_issue)(user=user)
    await sync_to_async(account_services.password_set)(user=user, new_password="e-Fresh-pass-1357")
    assert await handshake(token=old.access) == (False, 4001)
    assert await handshake(ticket=old_ticket) == (False, 4001)
    fresh = await sync_to_async(token_pair_issue)(user=user)
    fresh_ticket, _ = await sync_to_async(ticket_issue)(user=user)
    assert (await handshake(token=fresh.access))[0] is True
    assert (await handshake(ticket=fresh_ticket))[0] is True


async def test_a_deactivated_users_token_is_refused(user_factory):
    """Deactivated in the admin: the handshake with an old token is refused."""
    user = await sync_to_async(user_factory)()
    admin = await sync_to_async(user_factory)(is_superuser=True, is_staff=True)
    pair = await sync_to_async(token_pair_issue)(user=user)
    await sync_to_async(account_services.user_deactivate)(actor=admin, user=user)
    assert await handshake(token=pair.access) == (False, 4001)


async def test_the_scope_carries_the_credential_for_the_engine(user_factory):
    """An accepted handshake leaves `scope["credential"]`: user, epoch (and session for cookies)."""
    from accounts.credentials import Credential
    from accounts.ws_auth import authenticate_scope

    user = await sync_to_async(user_factory)()
    pair = await sync_to_async(token_pair_issue)(user=user)
    scope = {"headers": [(b"authorization", f"Bearer {pair.access}".encode())], "query_string": b""}
    found, how, credential = await authenticate_scope(scope)
    assert (found.pk, how, credential) == (user.pk, "jwt", Credential(user_id=user.pk, token_epoch=0))
