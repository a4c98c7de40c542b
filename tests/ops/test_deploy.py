"""deploy/: the nginx site is valid nginx, manifests probe the right endpoints, the dashboard charts the contract's metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from tests.ops.conftest import NGINX, tool_missing
from tests.support.servers import ROOT

DEPLOY = ROOT / "deploy"
CONTRACT_METRICS = (
    "chat_ws_connections",
    "chat_rooms_joined",
    "chat_messages_accepted_total",
    "chat_frames_rejected_total",
    "chat_delivery_latency_seconds",
    "chat_layer_messages_total",
)


def _location(conf: str, prefix: str) -> str:
    match = re.search(r"location " + re.escape(prefix) + r" \{(.*?)\n    \}", conf, re.S)
    assert match, f"no location {prefix}"
    return match.group(1)


def _seconds(value: str) -> int:
    return int(value[:-1]) * {"s": 1, "m": 60}[value[-1]]


@pytest.fixture
def self_signed(tmp_path):
    if not os.path.exists("/usr/bin/openssl"):
        tool_missing("needs /usr/bin/openssl to make a throwaway certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=chat.example.com",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_production_nginx_site_passes_nginx_t(tmp_path, self_signed):
    """deploy/nginx/chatsite.conf, with a real certificate and writable log paths, passes `nginx -t`."""
    if not os.path.exists(NGINX):
        tool_missing(f"needs nginx at {NGINX}")
    cert, key = self_signed
    site = (DEPLOY / "nginx" / "chatsite.conf").read_text()
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "chatsite.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  include /etc/nginx/mime.types;\n  include {tmp_path}/chatsite.conf;\n}}\n"
    )
    result = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-e", f"{tmp_path}/error.log", "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_nginx_websocket_location_outlives_the_heartbeat():
    """The /ws/ location upgrades, does not buffer, and waits longer than the ping interval plus timeout."""
    from django.conf import settings

    ws = _location((DEPLOY / "nginx" / "chatsite.conf").read_text(), "/ws/")
    assert "proxy_set_header Upgrade    $http_upgrade;" in ws
    assert "proxy_set_header Connection $connection_upgrade;" in ws
    assert "proxy_buffering off;" in ws
    assert "proxy_set_header Host" in ws  # locations that set headers inherit none
    heartbeat = settings.CHAT_WS_PING_INTERVAL + settings.CHAT_WS_PING_TIMEOUT
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        assert _seconds(re.search(directive + r" (\d+[sm]);", ws).group(1)) > heartbeat


def test_nginx_site_bounds_slow_clients_and_terminates_tls():
    """The site sets header/body timeouts (slowloris), listens with TLS, and redirects plain HTTP."""
    conf = (DEPLOY / "nginx" / "chatsite.conf").read_text()
    for directive in ("client_header_timeout", "client_body_timeout"):
        assert _seconds(re.search(directive + r" (\d+[sm]);", conf).group(1)) <= 15
    assert "listen 443 ssl" in conf
    assert "return 301 https://$host$request_uri;" in conf
    assert re.search(r"upstream chatsite \{\s*#[^\n]*\n(?:\s*#[^\n]*\n)*\s*(least_conn|ip_hash);", conf)


def test_systemd_template_runs_chatsite_serve_on_instance_port():
    """chatsite@.service starts `python -m chatsite.serve --port %i` with a shared multiprocess dir and SIGTERM drain."""
    unit = (DEPLOY / "systemd" / "chatsite@.service").read_text()
    assert re.search(r"^ExecStart=\S+python -m chatsite\.serve --bind 127\.0\.0\.1 --port %i$", unit, re.M)
    assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/chatsite/metrics" in unit
    assert "KillSignal=SIGTERM" in unit
    assert "Restart=always" in unit


def _manifests() -> dict[str, dict]:
    docs = {}
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[f"{doc['kind']}/{doc.get('metadata', {}).get('name', path.stem)}"] = doc
    return docs


def test_kubernetes_deployment_probes_readyz_and_healthz():
    """The web Deployment is ready on /readyz, live on /healthz, with a Host header Django accepts."""
    pod = _manifests()["Deployment/chatsite-web"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in _manifests()["ConfigMap/chatsite-config"]["data"]["ALLOWED_HOSTS"].split(",")
    assert container["command"][:3] == ["python", "-m", "chatsite.serve"]
    assert pod["terminationGracePeriodSeconds"] > 15


def test_kubernetes_ingress_keeps_websockets_open():
    """The Ingress reads for longer than the heartbeat and does not buffer; the Service targets the pods."""
    manifests = _manifests()
    annotations = manifests["Ingress/chatsite"]["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 50
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    service = manifests["Service/chatsite-web"]["spec"]
    assert service["selector"] == manifests["Deployment/chatsite-web"]["spec"]["selector"]["matchLabels"]


def test_grafana_dashboard_charts_every_contract_metric():
    """The dashboard is valid JSON with a query on each metric of CONTRACT §4."""
    dashboard = json.loads((DEPLOY / "grafana" / "chatsite-dashboard.json").read_text())
    queries = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    for metric in CONTRACT_METRICS:
        assert metric in queries, metric


def test_prometheus_rules_and_scrape_jobs_parse():
    """The alert rules and scrape jobs are valid YAML and only query series chatsite exposes."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert exprs and all(
        rule.get("alert") and rule.get("annotations") for group in rules["groups"] for rule in group["rules"]
    )
    exposed = set(CONTRACT_METRICS) | {"chat_handshakes_refused_total", "up"}
    for expr in exprs:
        for name in re.findall(r"\b(chat_\w+|up)\b", expr):
            assert any(name.startswith(metric) for metric in exposed), name
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "scrape.yml").read_text())
    for job in scrape["scrape_configs"]:
        assert job["authorization"]["type"] == "Bearer"
