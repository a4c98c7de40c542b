"""DRF throttles for the anonymous auth endpoints (CONTRACT §1 `AUTH_THROTTLE`).

Counted per client address in the Django cache, which is Redis when REDIS_URL is set, so every
process shares one budget. Beyond it DRF answers 429 with `Retry-After`.
"""

from __future__ import annotations

import ipaddress
from typing import cast

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from chatsite.rates import parse_rate


class AuthThrottle(SimpleRateThrottle):
    """Register, token and refresh calls per client address, at the `auth` rate."""

    scope = "auth"

    def get_rate(self) -> str | None:
        # Read at request time, not import time (DRF's default), so override_settings works.
        rates = cast(dict[str, str], settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}))
        return rates.get(self.scope)

    def parse_rate(self, rate: str | None) -> tuple[int | None, int | None]:
        # DRF only knows "30/m"; settings write windows such as "30/60s".
        if rate is None:
            return None, None
        count, window = parse_rate(rate)
        return count, int(window)

    def get_ident(self, request) -> str:
        """The client address: REMOTE_ADDR, or the address our own proxy saw.

        DRF's default trusts the whole X-Forwarded-For header when NUM_PROXIES is unset, so any
        client could rotate a made-up header past the throttle. Here the header is believed only
        when the direct peer is a loopback or private address (nginx on this host or network),
        and then only its last entry, the one nginx's $proxy_add_x_forwarded_for appended.
        """
        remote = request.META.get("REMOTE_ADDR", "")
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded and _is_internal(remote):
            last = forwarded.split(",")[-1].strip()
            if _is_address(last):
                return last
        return remote

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_internal(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.is_loopback or address.is_private
