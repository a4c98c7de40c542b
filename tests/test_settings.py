"""chatsite/settings.py: configuration from the environment only (CONTRACT §1), failing loudly when unsafe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatsite.rates import parse_rate

ROOT = Path(__file__).resolve().parents[1]
GOOD_SECRET = "Zq8v-3kT_pW9xLm2Rb7nYc4HsJd6Ef1Ga5Uo0Ii8Kw3Tr7Ye2Nx9Vb4Mq6Lz1Sa"


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` after django.setup() in a fresh interpreter with exactly these chatsite variables."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DEBUG",
            "SECRET_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "ALLOWED_HOSTS",
            "ALLOWED_ORIGINS",
            "HTTPS",
            "RATE_LIMIT_MESSAGES",
            "AUTH_THROTTLE",
            "PORT",
            "HOST",
            "METRICS_TOKEN",
            "JWT_ACCESS_MINUTES",
            "JWT_REFRESH_DAYS",
        }
    }
    script = "import django; django.setup()\nfrom django.conf import settings\n" + code
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "rate,expected",
    [
        ("10/10s", (10, 10.0)),
        ("30/min", (30, 60.0)),
        ("5/m", (5, 60.0)),
        ("100/h", (100, 3600.0)),
        (" 2 / 3 s ", (2, 3.0)),
        ("1/day", (1, 86400.0)),
    ],
)
def test_parse_rate(rate, expected):
    """Rates read as N per window."""
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["", "ten/10s", "10", "10/10y", "10/s/s"])
def test_parse_rate_refuses_garbage(rate):
    """A malformed rate fails loudly."""
    with pytest.raises(ValueError):
        parse_rate(rate)


def test_production_refuses_missing_secret_key():
    """With DEBUG=0 and no SECRET_KEY the app does not start."""
    result = run_django("", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("secret", ["short", "django-insecure-" + "x" * 40])
def test_production_refuses_weak_secret_key(secret):
    """Short or placeholder secrets are refused with DEBUG=0."""
    result = run_django("", DEBUG="0", SECRET_KEY=secret)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_debug_has_dev_defaults():
    """DEBUG=1 starts without SECRET_KEY, on SQLite, with the in-memory channel layer."""
    result = run_django(
        "print(settings.DATABASES['default']['ENGINE']); print(settings.CHANNEL_LAYERS['default']['BACKEND'])",
        DEBUG="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "channels.layers.InMemoryChannelLayer"]


def test_environment_read():
    """DATABASE_URL, REDIS_URL, rates and origins come from the environment."""
    result = run_django(
        "print(settings.DATABASES['default']['ENGINE'], settings.CACHES['default']['BACKEND'],"
        " settings.CHAT_MESSAGE_RATE, settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['auth'],"
        " settings.ALLOWED_ORIGINS, settings.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'],"
        " settings.SIMPLE_JWT['REFRESH_TOKEN_LIFETIME'], sep='|')",
        DEBUG="0",
        SECRET_KEY=GOOD_SECRET,
        DATABASE_URL="postgres://u@127.0.0.1:5432/x",
        REDIS_URL="redis://127.0.0.1:6379/9",
        RATE_LIMIT_MESSAGES="3/5s",
        AUTH_THROTTLE="7/min",
        ALLOWED_ORIGINS="https://a.example,https://b.example",
        JWT_ACCESS_MINUTES="7",
        JWT_REFRESH_DAYS="60",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split("|") == [
        "django.db.backends.postgresql",
        "django.core.cache.backends.redis.RedisCache",
        "(3, 5.0)",
        "7/60s",
        "['https://a.example', 'https://b.example']",
        "0:07:00",
        "60 days, 0:00:00",
    ]


def _example_secrets() -> dict[str, str]:
    import yaml

    return yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())["stringData"]


@pytest.mark.parametrize("name", ["SECRET_KEY", "METRICS_TOKEN"])
def test_the_example_secrets_cannot_start_a_server(name):
    """The placeholders of deploy/k8s/secret.example.yaml refuse to start, whatever DEBUG says."""
    value = _example_secrets()[name]
    env = (
        {"DEBUG": "1", name: value} if name == "SECRET_KEY" else {"DEBUG": "0", "SECRET_KEY": GOOD_SECRET, name: value}
    )
    result = run_django("", **env)
    assert result.returncode != 0
    assert f"{name} is a placeholder" in result.stderr


def test_placeholder_rule_refuses_placeholders_and_keeps_random_secrets():
    """The start-up check: common placeholder shapes are refused, random tokens pass (in-process)."""
    import secrets

    from chatsite.settings import _looks_like_placeholder

    for placeholder in [
        *_example_secrets().values(),
        "changeme-changeme-changeme-changeme",
        "django-insecure-" + "k" * 40,
        "x" * 64,
        "REPLACE_ME_WITH_A_REAL_SECRET_0123456789",
        "your secret here, 40 characters or more!!",
    ]:
        assert _looks_like_placeholder(placeholder), placeholder
    for _ in range(200):
        assert not _looks_like_placeholder(secrets.token_urlsafe(50))
    assert not _looks_like_placeholder("insecure-test-only-key-0123456789abcdefghijklmnop")
    assert not _looks_like_placeholder(GOOD_SECRET)


def test_auth_throttle_rate_understood_by_throttle():
    """The AUTH_THROTTLE value settings hand to DRF is one accounts.throttles reads correctly."""
    from django.conf import settings

    from accounts.throttles import AuthThrottle

    count, window = parse_rate(settings.AUTH_THROTTLE)
    assert AuthThrottle().parse_rate(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"]) == (count, int(window))


def test_check_deploy_passes_in_production_config():
    """`manage.py check --deploy` passes when configured for production behind TLS."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DATABASE_URL", "REDIS_URL"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **env,
            "DEBUG": "0",
            "SECRET_KEY": GOOD_SECRET,
            "HTTPS": "1",
            "ALLOWED_HOSTS": "chat.example.com",
            "ALLOWED_ORIGINS": "https://chat.example.com",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
