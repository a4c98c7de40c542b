"""Small helpers for the hand-written SQL of the hot paths (rooms/posting.py, rooms/conversations)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection


def one_of(values: Sequence[Any], params: list[Any]) -> str:
    """`= ANY(%s)` with one array parameter on PostgreSQL (psycopg parses each placeholder of
    every statement: long IN lists were a visible share of the batch's CPU), `IN (...)` elsewhere.
    Appends the parameters to `params`, so build the SQL in the order it reads. `values` must not
    be empty."""
    if connection.vendor == "postgresql":
        params.append(list(values))
        return "= ANY(%s)"
    params.extend(values)
    return "IN (" + ", ".join(["%s"] * len(values)) + ")"
