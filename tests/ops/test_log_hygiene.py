"""CONTRACT §7 log hygiene: no password, token, ticket or session id in any log line, client text
clipped. Unit tests of the filter, a real daphne process's whole log after every kind of login,
and nginx's access log through the deploy/ format."""

from __future__ import annotations

import asyncio
import http.cookiejar
import http.server
import importlib.util
import io
import json
import logging
import os
import re
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websockets

from chatsite.logs import MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, JsonFormatter, LogHygieneFilter, log_event
from tests.ops.conftest import NGINX, tool_missing
from tests.support.http import http_json
from tests.support.servers import ROOT, free_port

NEW_PASSWORD = "d-Changed-pass-6604"
WRONG_PASSWORD = "Wrong-guess-9911-zz"


def _records(formatter: logging.Formatter):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(LogHygieneFilter())
    logger = logging.getLogger("tests.ops.hygiene")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.DEBUG)
    return logger, stream


@pytest.mark.parametrize("formatter", [logging.Formatter("%(message)s"), JsonFormatter()], ids=["text", "json"])
def test_the_filter_masks_credentials_in_any_logger(formatter):
    """Tokens, tickets, session cookies and passwords are masked in messages, fields and tracebacks."""
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiMSJ9.c2lnbmF0dXJl"
    logger, stream = _records(formatter)
    logger.info("GET /ws/chat/?ticket=t1cketvalue&x=1 Authorization: Bearer %s", jwt)
    logger.info("Cookie: csrftoken=c5rf; sessionid=s3ssion", extra={"body": '{"password": "hunter22"}'})
    try:
        raise ValueError(f"refresh={jwt} password=hunter22")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    for secret in (jwt, "t1cketvalue", "s3ssion", "c5rf", "hunter22"):
        assert secret not in text
    assert text.count("[redacted]") >= 6


def test_the_filter_clips_client_text():
    """A 64 KiB value leaves a line of bounded length that says how much was cut."""
    logger, stream = _records(JsonFormatter())
    logger.warning("frame %s", "x" * 65536, extra={"reason": "y" * 65536})
    entry = json.loads(stream.getvalue())
    assert len(entry["message"]) < MAX_MESSAGE_CHARS + 60 and "more characters" in entry["message"]
    assert len(entry["reason"]) < MAX_FIELD_CHARS + 60


def test_log_event_clips_each_field_so_others_survive():
    """One huge field does not push the others out of an event line."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.ops.hygiene.event")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    log_event(logger, "ws_error", reason="z" * 65536, code="bad_request")
    line = stream.getvalue()
    assert len(line) < 2 * MAX_FIELD_CHARS and "code=bad_request" in line


# ----- a real server's log ---------------------------------------------------------------------


def _form_login(base: str, username: str, password: str) -> http.cookiejar.CookieJar:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/accounts/login/", timeout=10).read()
    csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    data = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf}).encode()
    request = urllib.request.Request(
        f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/accounts/login/"}
    )
    try:
        opener.open(request, timeout=10).read()
    except urllib.error.HTTPError as error:  # a wrong password re-shows the form with 400
        assert error.code == 400
    return jar


@pytest.mark.e2e
@pytest.mark.postgres
@pytest.mark.redis
def test_a_servers_log_holds_no_secret_after_every_kind_of_login(daphne_factory, user_factory, password):
    """After form and API logins (right and wrong), refreshes (and a reuse), tickets, JWT, ticket and
    cookie handshakes (and bad ones), a 64 KiB frame, a password change and logouts, no password,
    token, ticket or session id is anywhere in the process's output, and no line is huge."""
    user = user_factory("logger")
    server = daphne_factory(env={"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "json"})
    base = server.http_url
    secrets: set[str] = {password, NEW_PASSWORD, WRONG_PASSWORD}

    jar = _form_login(base, user.username, password)
    session_id = next(cookie.value for cookie in jar if cookie.name == "sessionid")
    secrets.add(session_id)
    _form_login(base, user.username, WRONG_PASSWORD)
    status, pair = http_json("POST", f"{base}/api/v1/auth/token/", body={"username": "logger", "password": password})
    assert status == 200
    assert (
        http_json("POST", f"{base}/api/v1/auth/token/", body={"username": "logger", "password": WRONG_PASSWORD})[0]
        == 401
    )
    status, rotated = http_json("POST", f"{base}/api/v1/auth/token/refresh/", body={"refresh": pair["refresh"]})
    assert status == 200
    assert http_json("POST", f"{base}/api/v1/auth/token/refresh/", body={"refresh": pair["refresh"]})[0] == 401
    status, ticket = http_json("POST", f"{base}/api/v1/auth/ws-ticket/", token=rotated["access"])
    assert status == 200
    secrets |= {pair["access"], pair["refresh"], rotated["access"], rotated["refresh"], ticket["ticket"]}
    bad_ticket = "Zk3" * 12
    secrets.add(bad_ticket)

    async def sockets():
        async with websockets.connect(f"{server.ws_url}?ticket={ticket['ticket']}", open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "x" * 65000}))
            assert json.loads(await ws.recv())["code"] == "bad_request"
        async with websockets.connect(
            server.ws_url, additional_headers={"Authorization": f"Bearer {rotated['access']}"}, open_timeout=5
        ) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await ws.recv()
        async with websockets.connect(
            server.ws_url,
            origin=server.origin,
            additional_headers={"Cookie": f"sessionid={session_id}"},
            open_timeout=5,
        ) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            await ws.recv()
        for url, headers in (
            (f"{server.ws_url}?ticket={bad_ticket}", {}),
            (server.ws_url, {"Authorization": f"Bearer {pair['access']}x"}),
        ):
            with pytest.raises(websockets.InvalidStatus):
                async with websockets.connect(url, additional_headers=headers, open_timeout=5):
                    pass

    asyncio.run(sockets())
    status, fresh = http_json(
        "POST",
        f"{base}/api/v1/auth/password/",
        token=rotated["access"],
        body={"old_password": password, "new_password": NEW_PASSWORD},
    )
    assert status == 200
    secrets |= {fresh["access"], fresh["refresh"]}
    assert http_json("POST", f"{base}/api/v1/auth/logout/", body={"refresh": fresh["refresh"]})[0] == 204
    server.stop()

    log = server.log()
    assert '"event": "ws_error"' in log and '"event": "credentials_ended"' in log, log[-3000:]
    leaked = [secret[:12] for secret in secrets if secret in log]
    assert leaked == [], f"secrets in the log: {leaked}"
    assert max(len(line) for line in log.splitlines()) < 4 * MAX_MESSAGE_CHARS
    assert "x" * (MAX_FIELD_CHARS + 10) not in log


# ----- nginx -----------------------------------------------------------------------------------


class _Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_nginx_access_log_redacts_query_strings(tmp_path):
    """Through deploy/'s nginx format, `?ticket=` (and any query) and a referer's query are logged as
    [redacted]; the path stays."""
    if not os.path.exists(NGINX):
        tool_missing(f"needs nginx at {NGINX}")
    spec = importlib.util.spec_from_file_location("deploy_cluster", ROOT / "deploy" / "cluster.py")
    cluster = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cluster)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    (tmp_path / "nginx-tmp").mkdir()
    conf = cluster.render_nginx_config(run_dir=tmp_path, port=port, backend_ports=[upstream.server_address[1]])
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(tmp_path),
            "-e",
            f"{tmp_path}/nginx-error.log",
            "-c",
            str(tmp_path / "nginx.conf"),
            "-g",
            "daemon off;",
        ]
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
                break
            except OSError:
                import time

                time.sleep(0.05)
        for path in ("/ws/chat/?ticket=TICKETSECRET1", "/api/v1/stream/?rooms=lobby&ticket=TICKETSECRET2"):
            request = urllib.request.Request(base + path, headers={"Referer": f"{base}/rooms/lobby/?ticket=REFSECRET3"})
            urllib.request.urlopen(request, timeout=5).read()
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)
        upstream.shutdown()
    log = (tmp_path / "nginx-access.log").read_text()
    assert "SECRET" not in log, log
    assert re.search(r'"GET /ws/chat/\?\[redacted\] HTTP/1\.1" 204', log), log
    assert "/api/v1/stream/?[redacted]" in log and "/rooms/lobby/?[redacted]" in log


def test_the_production_site_logs_with_the_redacting_format():
    """deploy/nginx/chatsite.conf's access log uses the redacting format, which logs no raw query."""
    conf = (ROOT / "deploy" / "nginx" / "chatsite.conf").read_text()
    assert re.search(r"access_log \S+ chatsite_redacted;", conf)
    log_format = re.search(r"log_format chatsite_redacted (.*?);", conf, re.S).group(1)
    for raw in ("$request ", "$request_uri", "$args", "$query_string", "$http_referer", "$http_cookie"):
        assert raw not in log_format
