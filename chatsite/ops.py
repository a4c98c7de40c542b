"""Operations endpoints of CONTRACT §4: /healthz, /readyz and /metrics.

`/healthz` answers while the process runs; it touches nothing else, so a liveness probe never
restarts a healthy process because PostgreSQL or Redis is down. `/readyz` checks that the
database and the channel layer answer within `READY_CHECK_TIMEOUT` seconds each, both checks
concurrently and neither blocking the event loop. `/metrics` is the Prometheus exposition, summed
across every process of the host when PROMETHEUS_MULTIPROC_DIR is set (see chatsite/metrics.py).

All three are exempt from the HTTPS redirect (settings.SECURE_REDIRECT_EXEMPT) and from the
site-ban middleware (accounts/middleware.py), so a probe carrying a stale session cookie never
reaches the database through them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import ipaddress
import logging
import time

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from chatsite.api.errors import error_response

logger = logging.getLogger(__name__)

OPS_PATHS = ("/healthz", "/readyz", "/metrics")  # accounts.middleware.SiteBanMiddleware skips these
READY_CHECK_TIMEOUT = 1.5  # seconds per check; probes usually time out after 2-5 s

# One thread for database checks: a hung connection attempt (a black-holed host) ties up this
# thread, never the event loop or the sync worker pool serving requests; while it is stuck, later
# checks fail at once instead of piling up threads.
_db_executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="readyz-db")
_db_check_pending: concurrent.futures.Future | None = None
_cleanup_tasks: set[asyncio.Future] = set()


class CheckFailed(Exception):
    """A readiness check did not pass; the message says why, for the operator."""


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process can answer HTTP at all (liveness)."""
    return JsonResponse({"status": "ok"})


def _database_select_one() -> None:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        # Drop the broken connection so the next check opens a fresh one.
        connection.close()
        raise
    finally:
        connection.close_if_unusable_or_obsolete()


async def check_database() -> None:
    """`SELECT 1` on the default database, in its own thread, within READY_CHECK_TIMEOUT."""
    global _db_check_pending
    if _db_check_pending is not None and not _db_check_pending.done():
        raise CheckFailed("previous check still waiting for the database")
    future = _db_executor.submit(_database_select_one)
    _db_check_pending = future
    try:
        await asyncio.wait_for(asyncio.wrap_future(future), READY_CHECK_TIMEOUT)
    except TimeoutError:
        raise CheckFailed(f"no answer within {READY_CHECK_TIMEOUT} s") from None
    except Exception as error:  # any driver error means "not ready"; the reason goes to the probe
        raise CheckFailed(f"{type(error).__name__}: {error}".strip()) from error


async def _discard_channel(layer, channel: str) -> None:
    """Unsubscribe a probe channel: channels-redis' pub/sub layer only does so on a cancelled receive."""
    receive = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    receive.cancel()
    try:
        await asyncio.wait_for(receive, READY_CHECK_TIMEOUT)
    except (asyncio.CancelledError, TimeoutError, OSError):
        pass
    except Exception:  # cleanup of a probe channel must never fail the probe
        logger.debug("readyz: could not discard probe channel %s", channel, exc_info=True)


async def check_channel_layer() -> None:
    """A round trip through the channel layer (subscribe, send, receive) within READY_CHECK_TIMEOUT.

    A round trip, not a PING: after a Redis restart it proves the layer's own connections,
    subscriptions included, work again.
    """
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise CheckFailed("CHANNEL_LAYERS is not configured")
    channel = None
    try:
        async with asyncio.timeout(READY_CHECK_TIMEOUT):
            channel = await layer.new_channel("readyz.")
            await layer.send(channel, {"type": "ops.readyz", "sent": time.time()})
            await layer.receive(channel)
    except TimeoutError:
        raise CheckFailed(f"no answer within {READY_CHECK_TIMEOUT} s") from None
    except Exception as error:  # connection refused, reset, auth... all mean "not ready"
        raise CheckFailed(f"{type(error).__name__}: {error}".strip()) from error
    finally:
        if channel is not None and _is_pubsub_layer(layer):
            # In the background: with Redis hung the unsubscribe itself may wait. The loop keeps
            # only weak references to tasks, so hold one until it is done.
            task = asyncio.ensure_future(_discard_channel(layer, channel))
            _cleanup_tasks.add(task)
            task.add_done_callback(_cleanup_tasks.discard)


def _is_pubsub_layer(layer) -> bool:
    try:
        from channels_redis.pubsub import RedisPubSubChannelLayer
    except ImportError:
        return False
    return isinstance(layer, RedisPubSubChannelLayer)


READY_CHECKS = {"database": check_database, "channel_layer": check_channel_layer}


@require_safe
@never_cache
async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every dependency answers; 503 naming each one that does not (readiness)."""
    names = list(READY_CHECKS)
    results = await asyncio.gather(*(READY_CHECKS[name]() for name in names), return_exceptions=True)
    checks: dict[str, str] = {}
    failing: list[str] = []
    for name, result in zip(names, results, strict=False):
        if isinstance(result, CheckFailed):
            checks[name] = f"failing: {result}"
            failing.append(name)
        elif isinstance(result, BaseException):
            raise result
        else:
            checks[name] = "ok"
    if failing:
        logger.warning("readyz failing: %s", ", ".join(f"{name} ({checks[name]})" for name in failing))
        response = JsonResponse({"status": "unavailable", "failing": failing, "checks": checks}, status=503)
        # The warning above is the one line per failing probe; without this flag django.request
        # would add an ERROR "Service Unavailable" line for every probe during an outage.
        response._has_been_logged = True  # type: ignore[attr-defined]  # Django's own flag, not in its stubs
        return response
    return JsonResponse({"status": "ok", "failing": [], "checks": checks})


def client_is_loopback(request: HttpRequest) -> bool:
    """True for a direct connection from this host.

    A request that went through a proxy carries forwarding headers; nginx on this host connects
    from 127.0.0.1 too, so such a request counts as remote whatever its REMOTE_ADDR, and the
    headers' claimed addresses are never trusted.
    """
    if any(request.META.get(h) for h in ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def _refused(detail: str) -> JsonResponse:
    response = error_response("not_authenticated", detail, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition; METRICS_TOKEN as a bearer token when set, else loopback clients only."""
    if settings.METRICS_TOKEN:
        if not bearer_token_matches(request, settings.METRICS_TOKEN):
            return _refused("Send the METRICS_TOKEN as 'Authorization: Bearer <token>'.")
    elif not client_is_loopback(request):
        return _refused(
            "Without METRICS_TOKEN /metrics answers direct loopback clients only; "
            "set METRICS_TOKEN to scrape from elsewhere or through a proxy."
        )
    from chatsite.metrics import render

    body, content_type = render(request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
