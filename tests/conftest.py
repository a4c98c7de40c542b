"""Shared fixtures: factories for users and rooms, the usual cast (alice, bob, owner, moderator,
superuser, lobby), a movable clock, service markers, a clean Redis test database.

A module that needs a differently built user or room asks the factories; it does not redefine
these names."""

from __future__ import annotations

import itertools
import os

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def _service_missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


def pytest_runtest_setup(item):
    if (
        item.get_closest_marker("postgres")
        and settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql"
    ):
        _service_missing("this test needs PostgreSQL: set DATABASE_URL=postgres://... (make test does when it answers)")
    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        _service_missing("this test needs Redis: set REDIS_URL=redis://... (make test does when it answers)")
    if item.get_closest_marker("browser") and not os.path.exists("/usr/bin/chromium"):
        _service_missing("this test needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")


@pytest.fixture(autouse=True)
def _fresh_shared_state():
    """Each test starts with empty rate-limit buckets, cache and (test) Redis database."""
    from django.core.cache import cache

    from rooms import ratelimit, wordfilter

    ratelimit.reset_local_buckets()
    wordfilter.forget_compiled()
    if settings.REDIS_URL:
        from chatsite.redis_clients import get_redis

        get_redis().flushdb()
    else:
        cache.clear()
    yield


_counter = itertools.count(1)


@pytest.fixture
def password() -> str:
    return "a-Strong-pass-4821"


@pytest.fixture
def user_factory(db, password):
    from django.contrib.auth import get_user_model

    def make(username: str | None = None, **fields):
        username = username or f"user{next(_counter)}"
        user = get_user_model().objects.create_user(username=username, password=password, **fields)
        return user

    return make


@pytest.fixture
def moderator_factory(user_factory):
    from django.contrib.auth.models import Group

    def moderators_group() -> Group:
        # Migration rooms/0002 made the group, but a transactional test's flush empties auth_group
        # for every test after it; permissions come back (post_migrate), the group must be remade.
        import importlib

        from django.contrib.auth.models import Permission

        group, created = Group.objects.get_or_create(name="Moderators")
        if created:
            # Every migration of rooms that grants the group permissions names them in a
            # MODERATOR_PERMISSIONS dict (found by attribute, so renumbering keeps working).
            import pkgutil

            import rooms.migrations

            for module_info in pkgutil.iter_modules(rooms.migrations.__path__):
                migration = importlib.import_module(f"rooms.migrations.{module_info.name}")
                for app_label, codenames in getattr(migration, "MODERATOR_PERMISSIONS", {}).items():
                    group.permissions.add(
                        *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
                    )
        return group

    def make(username: str | None = None):
        user = user_factory(username, is_staff=True)
        user.groups.add(moderators_group())
        return user

    return make


@pytest.fixture
def room_factory(db, user_factory):
    from rooms.services import room_create

    def make(slug: str | None = None, *, owner=None, is_private: bool = False, members=(), **fields):
        owner = owner or user_factory()
        slug = slug or f"room-{next(_counter)}"
        room = room_create(
            user=owner, name=fields.pop("name", slug.title()), slug=slug, is_private=is_private, **fields
        )
        from rooms.models import Membership

        for member in members:
            Membership.objects.get_or_create(room=room, user=member)
        return room

    return make


@pytest.fixture
def alice(user_factory):
    return user_factory("alice")


@pytest.fixture
def bob(user_factory):
    return user_factory("bob")


@pytest.fixture
def owner(user_factory):
    return user_factory("owner")


@pytest.fixture
def moderator(moderator_factory):
    return moderator_factory("mod")


@pytest.fixture
def superuser(user_factory):
    return user_factory("root", is_staff=True, is_superuser=True)


@pytest.fixture
def lobby(room_factory, alice, bob):
    """The public room `lobby`, with alice and bob as members."""
    return room_factory("lobby", name="Lobby", members=[alice, bob])


class Clock:
    """A clock frozen at the start of the test that moves only when told: `advance(seconds)`."""

    def __init__(self) -> None:
        import time

        from django.utils import timezone

        self.start = timezone.now()
        self.epoch = time.time()
        self.elapsed = 0.0

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds

    def time(self) -> float:
        return self.epoch + self.elapsed

    def now(self):
        from datetime import timedelta

        return self.start + timedelta(seconds=self.elapsed)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Freeze `chatsite.clock.now` and `django.utils.timezone.now`; `clock.advance(s)` moves both."""
    from django.utils import timezone

    from chatsite import clock as chat_clock

    fake = Clock()
    monkeypatch.setattr(chat_clock, "now", fake.time)
    monkeypatch.setattr(timezone, "now", fake.now)
    return fake


@pytest.fixture
def daphne_factory(transactional_db):
    """Start real daphne processes on free ports against the test database and Redis; stopped after."""
    from tests.support.servers import DaphneProcess

    started: list[DaphneProcess] = []

    def start(**kwargs) -> DaphneProcess:
        server = DaphneProcess(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _close_worker_thread_connections():
    """Async tests reach the ORM through asgiref's single worker thread; close that thread's
    connections afterwards so the test database can be flushed and dropped."""
    yield
    import threading

    from asgiref.sync import SyncToAsync
    from django.db import connections

    from rooms.realtime import db

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)
    if db._executor.cache_info().currsize:
        # One task per pool thread (the barrier keeps each thread busy until all have closed).
        workers = settings.CHAT_DB_THREADS
        barrier = threading.Barrier(workers)

        def close_then_wait():
            connections.close_all()
            barrier.wait(timeout=10)

        for future in [db._executor().submit(close_then_wait) for _ in range(workers)]:
            future.result(timeout=15)
