"""/healthz and /readyz (CONTRACT §4): liveness never depends on others, readiness names what fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.test import override_settings

from tests.ops.conftest import wait_until
from tests.support.servers import ROOT, free_port


def _get(url: str, timeout: float = 5) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _dead_redis_layer() -> dict:
    return {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [f"redis://127.0.0.1:{free_port()}/0"]},
        }
    }


def test_healthz_answers_ok(client):
    """/healthz answers 200 JSON while the process runs."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_refuses_post(client):
    """Probes are GET or HEAD; any other method answers 405, not 500."""
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_readyz_ok_when_database_and_layer_answer(client):
    """/readyz answers 200 with every check ok when PostgreSQL and Redis answer."""
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "failing": [], "checks": {"database": "ok", "channel_layer": "ok"}}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_readyz_names_channel_layer_when_redis_unreachable(client):
    """With the layer's Redis refusing connections /readyz answers 503 naming channel_layer only."""
    with override_settings(CHANNEL_LAYERS=_dead_redis_layer()):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["channel_layer"]
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["channel_layer"].startswith("failing: ")


def test_readyz_refuses_post(client):
    """/readyz answers 405 to a POST."""
    assert client.post("/readyz").status_code == 405


@pytest.mark.django_db
def test_probes_bypass_site_ban_middleware(client, user_factory, moderator_factory):
    """A site-banned user's session cookie on a probe is neither checked nor logged out."""
    from rooms.services import site_ban

    user = user_factory()
    client.force_login(user)
    site_ban(actor=moderator_factory(), username=user.username, reason="spam")
    for path in ("/healthz", "/metrics"):
        assert client.get(path).status_code == 200
        assert client.session.get("_auth_user_id") == str(user.pk)


def test_probes_are_exempt_from_https_redirect(client):
    """With HTTPS=1 pages redirect to https but /healthz, /readyz and /metrics answer over plain HTTP."""
    script = "from django.conf import settings; import json; print(json.dumps(settings.SECURE_REDIRECT_EXEMPT))"
    env = {**os.environ, "HTTPS": "1", "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "chatsite.settings"}
    exempt = json.loads(subprocess.check_output([sys.executable, "-c", script], cwd=ROOT, env=env, text=True))
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_REDIRECT_EXEMPT=exempt):
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/readyz").status_code != 301
        assert client.get("/accounts/login/").status_code == 301


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_follows_redis_stop_and_start(daphne_factory, redis_server):
    """A real Redis killed and started again: /readyz is 503 naming channel_layer while down, 200 after."""
    server = daphne_factory(env={"REDIS_URL": redis_server.url})
    assert _get(server.http_url + "/readyz")[0] == 200

    redis_server.stop()
    status, body = wait_until(
        lambda: (lambda r: r if r[0] == 503 else None)(_get(server.http_url + "/readyz")), timeout=10
    )
    assert status == 503
    assert "channel_layer" in body["failing"]
    assert body["checks"]["database"] == "ok"
    assert _get(server.http_url + "/healthz") == (200, {"status": "ok"})

    redis_server.start()
    status, body = wait_until(
        lambda: (lambda r: r if r[0] == 200 else None)(_get(server.http_url + "/readyz")), timeout=15
    )
    assert (status, body["failing"]) == (200, [])


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_readyz_names_database_when_postgres_unreachable(daphne_factory):
    """A process whose DATABASE_URL refuses connections stays live but /readyz answers 503 naming database."""
    server = daphne_factory(env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"})
    status, body = _get(server.http_url + "/readyz")
    assert status == 503
    assert body["failing"] == ["database"]
    assert body["checks"]["channel_layer"] == "ok"
    assert _get(server.http_url + "/healthz")[0] == 200
