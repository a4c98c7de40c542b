"""Issue 2's ordering guarantee: message ids are never visible out of order.

Several threads and processes post into one room on PostgreSQL while readers page with
`after=<last seen>` through the real REST API. If id N+1 were ever committed (visible) before N,
some reader would step past N and never see it: every reader's view must equal the final history.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from rooms import services
from rooms.models import Message
from tests.support import servers

THREADS, PROCESSES, READERS, PER_POSTER = 4, 2, 3, 30
UNLIMITED = "100000/1s"

POSTER_SCRIPT = textwrap.dedent(
    """
    import sys
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rooms import services
    from rooms.models import Room

    user = get_user_model().objects.get(pk=int(sys.argv[1]))
    room = Room.objects.get(pk=int(sys.argv[2]))
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(int(sys.argv[3])):
        services.message_post(user=user, room=room, body=f"p{user.pk}-{i}")
    print("done", flush=True)
    """
)


def _start_poster_process(user, room) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DATABASE_URL": servers.test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "RATE_LIMIT_MESSAGES": UNLIMITED,
        "CONN_MAX_AGE": "0",
    }
    return subprocess.Popen(
        [sys.executable, "-c", POSTER_SCRIPT, str(user.pk), str(room.pk), str(PER_POSTER)],
        cwd=servers.ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.postgres
@pytest.mark.timeout(300)
@override_settings(CHAT_MESSAGE_RATE=(100_000, 1.0))
def test_concurrent_posts_are_seen_gap_free(transactional_db, user_factory, room_factory):
    """Readers paging with after=<last seen> during concurrent posting see every id, in order."""
    posters = [user_factory() for _ in range(THREADS + PROCESSES)]
    reader_user = user_factory()
    room = room_factory("race", members=[*posters, reader_user])
    total = (THREADS + PROCESSES) * PER_POSTER

    processes = [_start_poster_process(user, room) for user in posters[THREADS:]]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        start = threading.Barrier(THREADS + READERS + 1)
        posting_done = threading.Event()
        errors: list[BaseException] = []
        views: list[list[int]] = [[] for _ in range(READERS)]

        def post(user) -> None:
            try:
                start.wait()
                for i in range(PER_POSTER):
                    services.message_post(user=user, room=room, body=f"t{user.pk}-{i}")
            except BaseException as error:  # reported by the main thread
                errors.append(error)
            finally:
                connection.close()

        def read(view: list[int]) -> None:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(reader_user).access_token}")
            last = 0
            try:
                start.wait()
                while True:
                    # Check the flag before reading: a read that starts after posting ended is final.
                    finished = posting_done.is_set()
                    response = client.get(f"/api/v1/rooms/race/messages/?after={last}&limit=100")
                    assert response.status_code == 200, response.content
                    page = [message["id"] for message in response.json()["results"]]
                    view.extend(page)
                    last = page[-1] if page else last
                    if finished and not page:
                        return
            except BaseException as error:
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=post, args=(user,)) for user in posters[:THREADS]]
        threads += [threading.Thread(target=read, args=(view,)) for view in views]
        for thread in threads:
            thread.start()
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        start.wait()
        for thread in threads[:THREADS]:
            thread.join(timeout=240)
        for process in processes:
            assert process.stdout.readline().strip() == "done"
            assert process.wait(timeout=60) == 0
        posting_done.set()
        for thread in threads[THREADS:]:
            thread.join(timeout=60)
        assert not errors, errors
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    history = list(Message.objects.filter(room=room).order_by("id").values_list("id", "prev_id"))
    final_ids = [message_id for message_id, _ in history]
    assert len(final_ids) == total
    for view in views:
        assert view == final_ids, "a reader missed or reordered ids: a later id was visible before an earlier one"
    # Each message names the previous one as accepted: commit order equals id order.
    assert [prev for _, prev in history] == [0, *final_ids[:-1]]
