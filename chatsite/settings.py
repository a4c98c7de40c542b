"""Django settings for chatsite: the only module that reads the environment.

Every variable of CONTRACT §1 is read here, once; the rest of the code reads
`django.conf.settings`. `CHAT_*` names are tunables with safe defaults.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

from chatsite.rates import parse_rate

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-dev-only-chatsite-key-never-use-in-production"

# Words that only a placeholder holds: the values of deploy/k8s/secret.example.yaml ("REPLACE-ME:
# generate with ..."), Django's "django-insecure-" keys and the usual "changeme". A random secret
# (secrets.token_urlsafe) never contains them by chance.
_PLACEHOLDER_WORDS = ("replace-me", "replace_me", "generate", "changeme", "change-me", "change_me", "placeholder")


def _looks_like_placeholder(value: str) -> bool:
    lowered = value.lower()
    return (
        lowered.startswith("django-insecure")
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
        or any(ch.isspace() for ch in value)
        or len(set(value)) < 10  # "xxxxxxxx...", "0000..."
    )


def _refuse_secret(name: str, problem: str, minimum: int) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"{name} {problem}: set it to a random string of at least {minimum} characters; "
        f'generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )


def get_mandatory_secret(name: str, *, dev_default: str, minimum: int = 32) -> str:
    """A secret from the environment. With DEBUG=0 a missing or short one refuses to start; a
    placeholder (such as the examples in deploy/) refuses to start whatever DEBUG says."""
    value = env.str(name, default="")
    if value and _looks_like_placeholder(value):
        raise _refuse_secret(name, "is a placeholder, not a secret", minimum)
    if DEBUG:
        return value or dev_default
    if not value:
        raise _refuse_secret(name, "must be set when DEBUG=0", minimum)
    if len(value) < minimum:
        raise _refuse_secret(name, f"is {len(value)} characters long", minimum)
    return value


def get_optional_secret(name: str, *, minimum: int = 16) -> str:
    """A secret that may be unset ('' then), but when set must not be short or a placeholder."""
    value = env.str(name, default="")
    if value and _looks_like_placeholder(value):
        raise _refuse_secret(name, "is a placeholder, not a secret", minimum)
    if value and len(value) < minimum:
        raise _refuse_secret(name, f"is {len(value)} characters long", minimum)
    return value


SECRET_KEY = get_mandatory_secret("SECRET_KEY", dev_default=_DEV_SECRET_KEY)

HOST = env.str("HOST", default="127.0.0.1")
PORT = env.int("PORT", default=8000)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# Full origins (scheme://host:port) browsers may open WebSockets from; CSRF trusts the same.
# Without the variable only the loopback origins of PORT are allowed, which is safe in production
# too: a public deployment must name its own origin.
ALLOWED_ORIGINS = env.list("ALLOWED_ORIGINS", default=[f"http://127.0.0.1:{PORT}", f"http://localhost:{PORT}"])
CSRF_TRUSTED_ORIGINS = ALLOWED_ORIGINS
# JSON under /api/ (CONTRACT §2: errors are JSON), Django's page elsewhere.
CSRF_FAILURE_VIEW = "chatsite.api.views.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "rooms",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SiteBanMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chatsite.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# No health check query before each use: it doubles round trips on the chat path, and a broken
# connection is closed and replaced after its first error anyway.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads of one process write; wait for the lock instead of failing at once. IMMEDIATE:
    # a transaction takes the write lock when it begins, so two writers queue on the busy timeout
    # instead of one failing with "database is locked" when its read lock cannot be upgraded.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

REDIS_URL = env.str("REDIS_URL", default="")

# "core" is channels_redis' RedisChannelLayer, "pubsub" its RedisPubSubChannelLayer.
# docs/benchmarks.md has the measurements behind the default.
CHAT_CHANNEL_LAYER = env.str("CHAT_CHANNEL_LAYER", default="pubsub")

if REDIS_URL:
    _layer_backend = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }[CHAT_CHANNEL_LAYER]
    # Pub/sub channels are global to a Redis server whatever the database number, so the prefix
    # names the deployment: two deployments (or test runs) sharing a server never hear each other.
    CHAT_LAYER_PREFIX = env.str("CHAT_LAYER_PREFIX", default=f"chatsite.db{urlparse(REDIS_URL).path.strip('/') or 0}")
    CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": _layer_backend,
            "CONFIG": {"hosts": [REDIS_URL], "prefix": CHAT_LAYER_PREFIX, "capacity": 5000, "expiry": 60},
        }
    }
    if CHAT_CHANNEL_LAYER == "pubsub":
        CHANNEL_LAYERS["default"]["CONFIG"].pop("capacity")
        CHANNEL_LAYERS["default"]["CONFIG"].pop("expiry")
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "chatsite",
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10000}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve static/ without collectstatic under `make run`

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"


def _checked_rate(name: str, value: str) -> tuple[int, float]:
    try:
        return parse_rate(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None


RATE_LIMIT_MESSAGES = env.str("RATE_LIMIT_MESSAGES", default="10/10s")
CHAT_MESSAGE_RATE = _checked_rate("RATE_LIMIT_MESSAGES", RATE_LIMIT_MESSAGES)
# Reactions added or taken back per user, WebSocket and REST together (docs/api.md, Throttling).
CHAT_REACTION_RATE = _checked_rate("CHAT_REACTION_RATE", env.str("CHAT_REACTION_RATE", default="30/10s"))
AUTH_THROTTLE = env.str("AUTH_THROTTLE", default="30/min")
_auth_count, _auth_window = _checked_rate("AUTH_THROTTLE", AUTH_THROTTLE)

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BanAwareJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser", "rest_framework.parsers.FormParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "chatsite.api.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"auth": f"{_auth_count}/{int(_auth_window)}s"},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Access tokens are short (they cannot be revoked one by one: a password change or deactivation
# refuses all of a user's older ones through the token epoch); refresh tokens rotate on every use
# and the one given is blacklisted, so a mobile app stays signed in as long as it keeps refreshing.
JWT_ACCESS_MINUTES = env.int("JWT_ACCESS_MINUTES", default=5)
JWT_REFRESH_DAYS = env.int("JWT_REFRESH_DAYS", default=30)
if JWT_ACCESS_MINUTES < 1 or JWT_REFRESH_DAYS < 1:
    raise ImproperlyConfigured("JWT_ACCESS_MINUTES and JWT_REFRESH_DAYS must be whole numbers of at least 1.")

SIMPLE_JWT = {
    "AUTH_HEADER_TYPES": ("Bearer",),
    "SIGNING_KEY": SECRET_KEY,
    "UPDATE_LAST_LOGIN": False,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=JWT_ACCESS_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=JWT_REFRESH_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "chatsite API",
    "DESCRIPTION": "REST API of chatsite (CONTRACT §2). The WebSocket protocol (/ws/chat/) is CONTRACT §3; "
    "docs/realtime.md describes how it is served, docs/api.md this API.",
    "VERSION": "1.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from this app (drf-spectacular-sidecar), not a CDN, so the docs page
    # keeps the site's strict Content-Security-Policy.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The event stream is served outside DRF (rooms/stream.py); this hook documents it.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "chatsite.api.schema.add_stream_path"],
}

# Tunables of the chat protocol (CONTRACT §3).
CHAT_MAX_BODY_CHARS = 4000
CHAT_MAX_FRAME_BYTES = 64 * 1024
CHAT_REPLAY_LIMIT = 500
CHAT_ERROR_FLOOD = (20, 10.0)  # more than 20 bad frames in 10 s closes with 4008
CHAT_TICKET_TTL_SECONDS = 60
CHAT_REPORTS_PER_HOUR = 10  # POST messages/{id}/report/ per user (CONTRACT §7)
# How often a process asks the cache whether moderators changed the word filter (rooms/wordfilter.py).
CHAT_WORDFILTER_CHECK_SECONDS = env.float("CHAT_WORDFILTER_CHECK_SECONDS", default=1.0)
CHAT_TYPING_INTERVAL_SECONDS = env.float("CHAT_TYPING_INTERVAL_SECONDS", default=2.0)
CHAT_PRESENCE_TTL_SECONDS = env.int("CHAT_PRESENCE_TTL_SECONDS", default=30)
CHAT_DB_THREADS = env.int("CHAT_DB_THREADS", default=8)
# Message posts a process lets wait for the database before answering rate_limited (backpressure).
CHAT_MAX_POSTS_IN_FLIGHT = env.int("CHAT_MAX_POSTS_IN_FLIGHT", default=256)
# The socket's batcher (group commit): at most this many posts per transaction, and at most this
# long spent gathering a batch once a post is waiting (docs/realtime.md).
CHAT_BATCH_MAX_POSTS = env.int("CHAT_BATCH_MAX_POSTS", default=128)
CHAT_BATCH_WAIT_SECONDS = env.float("CHAT_BATCH_WAIT_SECONDS", default=0.002)
CHAT_HEARTBEAT_SECONDS = env.int("CHAT_HEARTBEAT_SECONDS", default=10)
# Connection caps (docs/realtime.md "Limits"): rooms one socket may have joined, sockets one user
# may hold open on one process, and joins per socket (capacity, window seconds; leave/join churn).
CHAT_MAX_ROOMS_PER_SOCKET = env.int("CHAT_MAX_ROOMS_PER_SOCKET", default=100)
CHAT_MAX_SOCKETS_PER_USER = env.int("CHAT_MAX_SOCKETS_PER_USER", default=20)
CHAT_JOIN_RATE = (env.int("CHAT_JOIN_BURST", default=20), env.float("CHAT_JOIN_WINDOW_SECONDS", default=10.0))
# The event stream's `: ping` comment (CONTRACT §6: at least every 15 s); tests make it short.
CHAT_SSE_PING_SECONDS = env.float("CHAT_SSE_PING_SECONDS", default=15.0)
# A socket or stream with more than this many bytes waiting for the client is closed (§6 slow readers).
CHAT_SLOW_READER_BYTES = env.int("CHAT_SLOW_READER_BYTES", default=1024 * 1024)
CHAT_WS_PING_INTERVAL = env.int("CHAT_WS_PING_INTERVAL", default=20)
CHAT_WS_PING_TIMEOUT = env.int("CHAT_WS_PING_TIMEOUT", default=30)

METRICS_TOKEN = get_optional_secret("METRICS_TOKEN")
# Prometheus multiprocess files. Unset, every process of a host started with the same environment
# (same checkout, database and Redis) shares one directory derived from them, so any process's
# /metrics sums them all with no setting (docs/operations.md). prometheus-client reads the variable
# itself when it is first imported, which chatsite/metrics.py does only after these settings.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="") or os.path.join(
    tempfile.gettempdir(),
    "chatsite-metrics-{}-{}".format(
        os.getuid(),
        hashlib.sha256(f"{BASE_DIR}|{env.str('DATABASE_URL', default='')}|{REDIS_URL}".encode()).hexdigest()[:12],
    ),
)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")

# Production hardening: behind TLS set HTTPS=1 so `manage.py check --deploy` passes.
HTTPS = env.bool("HTTPS", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # /healthz and /readyz are probed over plain HTTP inside the cluster.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "chatsite.logs.JsonFormatter"},
    },
    # Every line passes the hygiene filter: credentials masked, client text clipped (CONTRACT §7).
    "filters": {"hygiene": {"()": "chatsite.logs.LogHygieneFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["hygiene"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo-pass-123")
