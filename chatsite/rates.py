"""Rates written as 'N/window' ('10/10s', '30/min'), shared by settings and the throttles."""

from __future__ import annotations

import re

_RATE_RE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*(s|sec|m|min|h|hour|d|day)\s*")
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def parse_rate(rate: str) -> tuple[int, float]:
    """'10/10s' -> (10, 10.0); accepts s, m, min, h, d and a bare unit ('30/min')."""
    match = _RATE_RE.fullmatch(rate)
    if not match:
        raise ValueError(f"rate {rate!r} must look like '10/10s' or '30/min'")
    count, amount, unit = match.groups()
    return int(count), float(amount or 1) * _UNIT_SECONDS[unit]
