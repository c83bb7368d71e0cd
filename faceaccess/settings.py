"""Django settings, read from the environment (see docs/running.md for the list).

Unset DATABASE_URL / REDIS_URL mean the embedded development servers that `make run` starts
(PostgreSQL on 127.0.0.1:54329, Redis on 127.0.0.1:63799, passwords kept under the data dir).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .datadir import REPO_ROOT, data_dir, stored_secret
from .embedded import DEFAULT_PG_PORT, DEFAULT_REDIS_PORT
from .env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = REPO_ROOT
DATA_DIR = data_dir()

SECRET_KEY = env_str("SECRET_KEY") or stored_secret("django-secret-key", DATA_DIR, nbytes=48)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # The console first: its registration/ templates (login, password change) take precedence over the admin's.
    "console",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens stored hashed (SHA-512), with an expiry
    "drf_spectacular",
    "django_filters",  # the access log's filters (one FilterSet for the console and the API)
    "django_htmx",  # ships htmx as a static file: the console's live parts, no CDN, no build step
    "auditlog",  # who changed what, when, from what to what (thresholds, people, cameras, grants)
    "axes",  # failed logins counted per IP and per username, locked out with back-off (console, admin, token)
    # The layers, each importing only those below it: console -> access -> enrollment -> recognition.
    "recognition",
    "enrollment",
    "access",
]

MIDDLEWARE = [
    # First, so that it sees every error under /api/ (made by a view or not) and answers it in JSON.
    "faceaccess.api.middleware.ApiErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "faceaccess.headers.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",  # django-csp: the console's Content-Security-Policy (CONTENT_SECURITY_POLICY)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    # Last, as django-axes asks: turns a login that axes locked out into a 429 with Retry-After.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: a locked-out client is refused before ModelBackend hashes the password it sent.
AUTHENTICATION_BACKENDS = [
    "faceaccess.api.auth.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "faceaccess.urls"
WSGI_APPLICATION = "faceaccess.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],  # every template lives in its app (the console's in console/templates/)
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context.console",
            ],
        },
    },
]

# --- database: PostgreSQL only (pgvector does the nearest-neighbour search) -------------------------
EMBEDDED_PG_PORT = env_int("FACEACCESS_PG_PORT", DEFAULT_PG_PORT)
EMBEDDED_REDIS_PORT = env_int("FACEACCESS_REDIS_PORT", DEFAULT_REDIS_PORT)


def _database_url() -> str:
    url = env_str("DATABASE_URL")
    if url:
        return url
    password = stored_secret("postgres-password", DATA_DIR)
    return f"postgresql://faceaccess:{password}@127.0.0.1:{EMBEDDED_PG_PORT}/faceaccess"


def database_config(url: str) -> dict:
    """dj-database-url's dict for `url`, refusing every engine but PostgreSQL."""
    scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
    refusal = (f"DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:port/name), not {scheme!r}: "
               "FaceAccess stores and searches face embeddings with pgvector.")
    try:
        config = dj_database_url.parse(
            url, conn_max_age=env_int("FACEACCESS_DB_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    except ValueError:
        raise ImproperlyConfigured(refusal) from None
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(refusal)
    return dict(config)


DATABASES = {"default": database_config(_database_url())}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url() -> str:
    url = env_str("REDIS_URL")
    if url:
        if not url.startswith(("redis://", "rediss://")):
            raise ImproperlyConfigured(f"REDIS_URL must start with redis:// or rediss://, got {url.split(':')[0]!r}")
        return url
    return f"redis://:{stored_secret('redis-password', DATA_DIR)}@127.0.0.1:{EMBEDDED_REDIS_PORT}/0"


REDIS_URL = _redis_url()

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- files ---------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise serves it (filled by collectstatic)
# Face photos and snapshots are personal data: MEDIA_ROOT is never served by URL, only through
# authenticated API views.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or DATA_DIR / "media")
MEDIA_URL = "/media/"
# A worker on another machine (docs/running.md, "Scaling out") has no MEDIA_ROOT: with FACEACCESS_MEDIA_URL set
# (the web service's base URL) it reads and writes stored photos through the web service's internal endpoint,
# authenticated by the worker key. The web service generates that key once (var/secrets/worker-key); a remote
# worker must be given the same one.
FACEACCESS_MEDIA_URL = env_str("FACEACCESS_MEDIA_URL")
FACEACCESS_MEDIA_TIMEOUT = env_float("FACEACCESS_MEDIA_TIMEOUT", 10.0)
FACEACCESS_WORKER_KEY = env_str("FACEACCESS_WORKER_KEY") or (
    "" if FACEACCESS_MEDIA_URL else stored_secret("worker-key", DATA_DIR))
if FACEACCESS_MEDIA_URL and not FACEACCESS_WORKER_KEY:
    raise ImproperlyConfigured("FACEACCESS_MEDIA_URL is set but FACEACCESS_WORKER_KEY is not: give this worker the "
                               "web service's worker key (its data dir's secrets/worker-key)")
STORAGES = {
    "default": {"BACKEND": "faceaccess.media_remote.WebMediaStorage" if FACEACCESS_MEDIA_URL
                else "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

FACEACCESS_MAX_UPLOAD_BYTES = env_int("FACEACCESS_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)
# The web server (faceaccess/serve.py; docs/running.md, "The web server"): a request's line + headers within
# HEADER_TIMEOUT s of its first byte (a new connection's, of the accept), its body within BODY_TIMEOUT s after
# them, a keep-alive connection idle at most IDLE_TIMEOUT s; connections in all and per client address (0: none).
FACEACCESS_WEB_HEADER_TIMEOUT = env_float("FACEACCESS_WEB_HEADER_TIMEOUT", 10.0)
FACEACCESS_WEB_BODY_TIMEOUT = env_float("FACEACCESS_WEB_BODY_TIMEOUT", 60.0)
FACEACCESS_WEB_IDLE_TIMEOUT = env_float("FACEACCESS_WEB_IDLE_TIMEOUT", 30.0)
FACEACCESS_WEB_MAX_CONNECTIONS = env_int("FACEACCESS_WEB_MAX_CONNECTIONS", 4000)
FACEACCESS_WEB_CONNECTIONS_PER_ADDRESS = env_int("FACEACCESS_WEB_CONNECTIONS_PER_ADDRESS", 64)
FACEACCESS_MAX_PIXELS = env_int("FACEACCESS_MAX_PIXELS", 40_000_000)
# The most pixels the engine decodes for one photo (default 3840x2160): a larger JPEG is decoded at 1/2, 1/4 or
# 1/8 of its size, a larger PNG or WebP is refused with a 413. One photo then costs the engine ~0.15 s at most
# instead of the 2.5 s of a 40 MP PNG, which held every door behind it.
FACEACCESS_MAX_DECODED_PIXELS = env_int("FACEACCESS_MAX_DECODED_PIXELS", 3840 * 2160)
# PNG and WebP cannot be decoded at reduced size: at most this many pixels (default 2560x1440, ~50 ms to decode
# here, where a 4K PNG takes ~120 ms and a 40 MP one 2.5 s).
FACEACCESS_MAX_FULL_DECODE_PIXELS = env_int("FACEACCESS_MAX_FULL_DECODE_PIXELS", 2560 * 1440)
# Photo decodes (pixels, not headers) running at once in one process: each 40 MP one holds ~120 MB or more.
FACEACCESS_MAX_CONCURRENT_DECODES = env_int("FACEACCESS_MAX_CONCURRENT_DECODES", 2)
# Uploads above this size go to a temp file rather than memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)
FILE_UPLOAD_PERMISSIONS = 0o640

# --- engine --------------------------------------------------------------------------------------
# None: the engine's default embedder. Embeddings always record the model that made them.
FACEACCESS_EMBEDDER = env_str("FACEACCESS_EMBEDDER")
# "auto": CUDA when the worker's machine has it, else CPU.
FACEACCESS_DEVICE = env_str("FACEACCESS_DEVICE", "auto")
# How long POST /api/v1/snapshots/?wait= may hold a request at most.
FACEACCESS_MAX_WAIT_SECONDS = env_float("FACEACCESS_MAX_WAIT_SECONDS", 10.0)
# Enrollment refuses faces smaller (shorter box side, pixels) or less certain than these.
FACEACCESS_ENROLL_MIN_FACE_PX = env_float("FACEACCESS_ENROLL_MIN_FACE_PX", 40.0)
FACEACCESS_ENROLL_MIN_SCORE = env_float("FACEACCESS_ENROLL_MIN_SCORE", 0.9)
# Load the engine when a worker process starts rather than on its first task.
FACEACCESS_PRELOAD_PIPELINE = env_bool("FACEACCESS_PRELOAD_PIPELINE", False)
# torch intra-op threads per engine (worker process). 0 = the default, 1: two threads are 15-25% faster on an
# idle machine but 1.5-8x slower as soon as the web process, PostgreSQL or another worker wants a core, and
# cost more CPU per snapshot (README, "Door latency"). Raise it only on a machine that runs nothing but the engine.
FACEACCESS_TORCH_THREADS = env_int("FACEACCESS_TORCH_THREADS", 0) or None
# Half precision for the engine on CUDA (bench/gpu_check.py compares it with fp32 and the CPU); ignored on CPU.
FACEACCESS_ENGINE_FP16 = env_bool("FACEACCESS_ENGINE_FP16", False)
# The batching worker (`celery worker -P threads -c N`): while other snapshots are on their way to the engine
# of this process, take up to FACEACCESS_BATCH_SIZE of them into one detector and one embedder call, waiting
# at most FACEACCESS_BATCH_WAIT_MS for them. A snapshot with nothing else in flight never waits; 1 turns
# batching off (one engine call per snapshot, one at a time).
FACEACCESS_BATCH_SIZE = max(1, env_int("FACEACCESS_BATCH_SIZE", 16))
FACEACCESS_BATCH_WAIT_MS = env_float("FACEACCESS_BATCH_WAIT_MS", 5.0)
# A request waiting for its decision (?wait=) hears of it at once through Redis pub/sub; it also re-reads the
# event's status this often (seconds), in case a notification was lost.
FACEACCESS_WAIT_RECHECK_SECONDS = env_float("FACEACCESS_WAIT_RECHECK_SECONDS", 0.5)

# --- Celery (read by faceaccess/celery.py through the CELERY_ namespace) --------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = env_int("FACEACCESS_RESULT_EXPIRES", 86_400)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# A task is acknowledged after it ran, and a worker process that dies mid-task hands its message
# back to the queue: an accepted snapshot is never silently lost.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A pool child reports "up" only after worker_process_init, where the engine may load (CUDA start-up
# can take many seconds); Celery's default 4 s would kill and respawn it in a loop.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("FACEACCESS_WORKER_START_TIMEOUT", 120.0)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("FACEACCESS_TASK_SOFT_TIME_LIMIT", 120)
CELERY_TASK_TIME_LIMIT = env_int("FACEACCESS_TASK_TIME_LIMIT", 180)
# Every call to the broker (connect, publish, a control ping) gives up after FACEACCESS_BROKER_TIMEOUT seconds
# instead of waiting forever on a frozen Redis: a request that cannot queue its job answers 503 quickly.
FACEACCESS_BROKER_TIMEOUT = env_float("FACEACCESS_BROKER_TIMEOUT", 1.0)
# Retry-After (seconds) of that 503.
FACEACCESS_BROKER_RETRY_AFTER = env_int("FACEACCESS_BROKER_RETRY_AFTER", 5)
# Back-pressure: while this many snapshot jobs or more wait in their queue (the "gpu" list; asked within
# FACEACCESS_BROKER_TIMEOUT), POST /api/v1/snapshots/ stores nothing and answers 503 "overloaded" with the Retry-After
# above: a decision that would come after a long queue is no use at a door. 0 turns the bound off.
FACEACCESS_MAX_QUEUE = env_int("FACEACCESS_MAX_QUEUE", 100)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis redelivers a message whose worker vanished (kill -9, power loss) after this many seconds;
    # it must exceed the hard time limit or a slow task would run twice.
    "visibility_timeout": env_int("FACEACCESS_VISIBILITY_TIMEOUT", 600),
    "socket_timeout": FACEACCESS_BROKER_TIMEOUT,
    "socket_connect_timeout": FACEACCESS_BROKER_TIMEOUT,
    # A worker takes from its queues in the order it lists them (-Q gpu,gpu-bulk): a door snapshot waiting is
    # always taken before an enrollment photo or a re-embedding chunk (Redis BRPOP checks its keys in order).
    "queue_order_strategy": "priority",
}
# Also the whole time kombu spends (re)connecting before a publish.
CELERY_BROKER_CONNECTION_TIMEOUT = FACEACCESS_BROKER_TIMEOUT
# One try: a request's budget is its ?wait, and the camera retries with its idempotency key.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_REDIS_SOCKET_TIMEOUT = CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = max(FACEACCESS_BROKER_TIMEOUT, 5.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers reconnect every 0.5-2 s, for as long as it takes (Celery's back-off grows to 30 s and stops after 100
# tries): faceaccess/worker_consumer.py.
CELERY_WORKER_CONSUMER = "faceaccess.worker_consumer:QuickReconnectConsumer"
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_TRACK_STARTED = True
# Celery's Django fix-up closes a worker's database connections before and after every task unless this is set:
# each snapshot then paid for a new PostgreSQL connection (10-20 ms of its latency here). It closes them every
# this many tasks instead, and every task starts with Django's own check (access.signals): connections older than
# FACEACCESS_DB_CONN_MAX_AGE are closed, the others pinged before their first query, as in a web request.
CELERY_DB_REUSE_MAX = 10_000
CELERY_TASK_DEFAULT_QUEUE = "celery"
# The engine's bulk work (enrollment photos, re-embedding after a model switch) has its own queue, which the
# engine workers consume after the doors' "gpu" queue: an operator's upload of 200 photos no longer queues ahead
# of the door. "gpu" puts the bulk work back into the doors' queue (as before; the starvation benchmark's "before").
FACEACCESS_BULK_QUEUE = env_str("FACEACCESS_BULK_QUEUE", "gpu-bulk")
# What an engine worker consumes, in this order (-Q): the doors first.
ENGINE_QUEUES = ",".join(dict.fromkeys(("gpu", FACEACCESS_BULK_QUEUE)))
# Tasks that run the vision engine go to the "gpu" (doors) or the bulk queue that the engine workers consume; the
# first matching pattern wins, so a non-engine task (e.g. a webhook) gets its own entry above these.
CELERY_TASK_ROUTES = {
    "access.tasks.apply_retention": {"queue": "celery"},
    "access.tasks.sweep": {"queue": "celery"},
    "access.tasks.deliver_webhook": {"queue": "celery"},
    "access.tasks.deliver_mqtt": {"queue": "celery"},
    "access.tasks.mqtt_relock": {"queue": "celery"},
    "access.tasks.publish_mqtt_availability": {"queue": "celery"},
    # Priority 0 (first) .. 9 (last): bulk work goes last, so a worker takes it after every door snapshot waiting,
    # also those that a busy camera queued behind its others (access.snapshots.intake.fair_priority).
    "access.tasks.reembed_chunk": {"queue": FACEACCESS_BULK_QUEUE, "priority": 9},
    "enrollment.tasks.*": {"queue": FACEACCESS_BULK_QUEUE, "priority": 9},
    "access.tasks.*": {"queue": "gpu"},
}
# The sweeper re-queues snapshots and photos still pending this long after they arrived (their message was
# lost or never sent), at most FACEACCESS_SWEEP_MAX_ATTEMPTS times, then fails them with the reason; a message
# delivered more than FACEACCESS_MAX_DELIVERIES times (it keeps killing its worker) fails its row too.
FACEACCESS_SWEEP_AFTER_SECONDS = env_float("FACEACCESS_SWEEP_AFTER_SECONDS", 60.0)
FACEACCESS_SWEEP_EVERY_SECONDS = env_float("FACEACCESS_SWEEP_EVERY_SECONDS", 30.0)
FACEACCESS_SWEEP_MAX_ATTEMPTS = env_int("FACEACCESS_SWEEP_MAX_ATTEMPTS", 3)
FACEACCESS_MAX_DELIVERIES = env_int("FACEACCESS_MAX_DELIVERIES", 5)
# `make run` restarts a worker whose queue's oldest message has not moved for this long while the worker is not
# running a task (alive but no longer consuming, as Celery can be after a broker outage: faceaccess/watchdog.py).
FACEACCESS_WORKER_STALL_SECONDS = env_float("FACEACCESS_WORKER_STALL_SECONDS", 45.0)
# Periodic jobs (Celery beat; `make run` runs it inside the worker).
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "access.tasks.sweep", "schedule": FACEACCESS_SWEEP_EVERY_SECONDS},
    "retention": {"task": "access.tasks.apply_retention", "schedule": env_float("FACEACCESS_RETENTION_EVERY_S",
                                                                                 6 * 3600.0)},
}
# The jobs that requests queue keep their outcome in their own rows: no result to store, and no result-backend
# subscription (one more Redis round trip, without a timeout) in the request that queues them.
CELERY_TASK_ANNOTATIONS = {name: {"ignore_result": True}
                           for name in ("access.tasks.process_snapshot", "enrollment.tasks.embed_face_image")}
CELERY_TASK_ALWAYS_EAGER = env_bool("FACEACCESS_CELERY_EAGER", False)
# Extra task modules for the worker to import (the test suite adds probes this way).
CELERY_IMPORTS = ["access.tasks", *env_list("FACEACCESS_CELERY_IMPORTS", [])]
# Door webhooks (access/outputs/webhooks.py): one attempt's whole time (connect, send, the answer's headers) and its
# connection's, retries with exponential back-off from this delay.
FACEACCESS_WEBHOOK_TIMEOUT = env_float("FACEACCESS_WEBHOOK_TIMEOUT", 2.0)
FACEACCESS_WEBHOOK_CONNECT_TIMEOUT = env_float("FACEACCESS_WEBHOOK_CONNECT_TIMEOUT", 1.0)
FACEACCESS_WEBHOOK_RETRIES = env_int("FACEACCESS_WEBHOOK_RETRIES", 5)
FACEACCESS_WEBHOOK_BACKOFF_SECONDS = env_float("FACEACCESS_WEBHOOK_BACKOFF_SECONDS", 2.0)
# At most this many deliveries at once to one receiver (host:port, counted in Redis by every worker); a delivery to
# a receiver at its limit waits its turn (re-queued after this delay, doubled while it waits, up to the timeout) and
# leaves the I/O worker's threads to the other receivers.
FACEACCESS_WEBHOOK_PER_RECEIVER = env_int("FACEACCESS_WEBHOOK_PER_RECEIVER", 2)
FACEACCESS_WEBHOOK_BUSY_RETRY_SECONDS = env_float("FACEACCESS_WEBHOOK_BUSY_RETRY_SECONDS", 0.25)
# Webhooks go to public addresses only (faceaccess/outbound.py), except to these networks and host names
# (comma-separated CIDRs, addresses, names; ".lan" for every name under lan): a lock controller on the LAN.
FACEACCESS_WEBHOOK_ALLOW = env_list("FACEACCESS_WEBHOOK_ALLOW", [])
# MQTT out (access/outputs/mqtt.py, README "MQTT and Home Assistant"): off unless a broker URL is set
# (mqtt://host:1883, or mqtts://host:8883 for TLS, verified against FACEACCESS_MQTT_CA_FILE or the system's CAs).
FACEACCESS_MQTT_URL = env_str("FACEACCESS_MQTT_URL", "")
FACEACCESS_MQTT_USERNAME = env_str("FACEACCESS_MQTT_USERNAME", "")
FACEACCESS_MQTT_PASSWORD = env_str("FACEACCESS_MQTT_PASSWORD", "")
FACEACCESS_MQTT_CA_FILE = env_str("FACEACCESS_MQTT_CA_FILE", "")
FACEACCESS_MQTT_TOPIC_PREFIX = env_str("FACEACCESS_MQTT_TOPIC_PREFIX", "faceaccess")
FACEACCESS_MQTT_DISCOVERY_PREFIX = env_str("FACEACCESS_MQTT_DISCOVERY_PREFIX", "homeassistant")  # "": none
FACEACCESS_MQTT_TIMEOUT = env_float("FACEACCESS_MQTT_TIMEOUT", 3.0)  # connect + every acknowledgement, per attempt
FACEACCESS_MQTT_RETRIES = env_int("FACEACCESS_MQTT_RETRIES", 5)
# The console as people reach it, for the event links in MQTT messages.
FACEACCESS_PUBLIC_URL = env_str("FACEACCESS_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
FACEACCESS_MQTT_BACKOFF_SECONDS = env_float("FACEACCESS_MQTT_BACKOFF_SECONDS", 2.0)
# The camera bridge (access/bridge/, README "Connect a camera"): it asks the web service for its cameras with this
# token and posts each camera's frames with a key derived from it. Empty: no bridge is let in. `make run` generates
# one under the data dir and gives it to its web server and its bridge; elsewhere set the same value for both.
FACEACCESS_BRIDGE_TOKEN = env_str("FACEACCESS_BRIDGE_TOKEN", "")
FACEACCESS_BRIDGE_SERVER = env_str("FACEACCESS_BRIDGE_SERVER", "http://127.0.0.1:8000")

# --- REST API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("FACEACCESS_PAGE_SIZE", 50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Used by the views that name these scopes (faceaccess/api/throttling.py), not by every view.
    "DEFAULT_THROTTLE_RATES": {
        "snapshots": env_str("FACEACCESS_SNAPSHOT_RATE", "120/min"),  # per camera
        "token_ip": env_str("FACEACCESS_TOKEN_RATE_PER_IP", "20/min"),  # POST /api/v1/auth/token/ per client IP
    },
}

# API tokens (django-rest-knox): only a hash is stored; a token expires after this many hours.
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(hours=env_float("FACEACCESS_TOKEN_TTL_HOURS", 30 * 24.0)),
    "AUTH_HEADER_PREFIX": "Token",
}

# --- abuse limits --------------------------------------------------------------------------------
# DRF's throttle counts live in Redis (REDIS_URL), shared by every web thread and process. A Redis that does not
# answer within this many seconds lets the request through (fail open, logged) rather than hold it.
FACEACCESS_THROTTLE_CACHE_TIMEOUT = env_float("FACEACCESS_THROTTLE_CACHE_TIMEOUT", 0.25)
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "throttle": {
        "BACKEND": "faceaccess.api.throttling.ThrottleCache",  # Django's Redis cache on REDIS_URL
        "KEY_PREFIX": "faceaccess",
        "OPTIONS": {"socket_timeout": FACEACCESS_THROTTLE_CACHE_TIMEOUT,
                    "socket_connect_timeout": FACEACCESS_THROTTLE_CACHE_TIMEOUT},
    },
}
# django-axes: after this many failed logins (console, admin, token endpoint) for one username from one IP, that
# username is refused from that IP (only) without checking the password for FACEACCESS_LOGIN_COOLOFF_SECONDS,
# doubled for every attempt made while locked out, up to FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS; the same account
# from another address is not affected. Password checks per IP, whatever the username, are throttled
# (FACEACCESS_LOGIN_RATE_PER_IP, DRF's rate syntax, counted in the throttle cache).
FACEACCESS_LOGIN_FAILURE_LIMIT = env_int("FACEACCESS_LOGIN_FAILURE_LIMIT", 5)
FACEACCESS_LOGIN_COOLOFF_SECONDS = env_float("FACEACCESS_LOGIN_COOLOFF_SECONDS", 60.0)
FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS = env_float("FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS", 900.0)
FACEACCESS_LOGIN_RATE_PER_IP = env_str("FACEACCESS_LOGIN_RATE_PER_IP", "30/min")
AXES_FAILURE_LIMIT = FACEACCESS_LOGIN_FAILURE_LIMIT
# Door PINs (access.rules.credentials): this many wrong PINs in a row lock a person's PIN until an admin unlocks it.
FACEACCESS_PIN_FAILURE_LIMIT = env_int("FACEACCESS_PIN_FAILURE_LIMIT", 5)
# PBKDF2 rounds of a door PIN's hash: checked on the door's path, so fewer than the login passwords' million.
FACEACCESS_PIN_HASH_ITERATIONS = env_int("FACEACCESS_PIN_HASH_ITERATIONS", 100_000)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = "faceaccess.api.auth.lockout_cooloff"
AXES_USE_ATTEMPT_EXPIRATION = True  # each record expires after its own cool-off (the back-off), not a global one
AXES_LOCKOUT_CALLABLE = "faceaccess.api.auth.lockout_response"
AXES_RESET_ON_SUCCESS = True

SPECTACULAR_SETTINGS = {
    "TITLE": "FaceAccess API",
    "DESCRIPTION": "Face-recognition access control: cameras post snapshots, admins enroll people.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}
try:  # self-hosted Swagger UI / ReDoc assets when the sidecar package is installed (no CDN)
    import drf_spectacular_sidecar  # noqa: F401
except ImportError:
    pass
else:
    INSTALLED_APPS.append("drf_spectacular_sidecar")
    SPECTACULAR_SETTINGS.update(
        SWAGGER_UI_DIST="SIDECAR", SWAGGER_UI_FAVICON_HREF="SIDECAR", REDOC_DIST="SIDECAR"
    )

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# --- production hardening, opt-in by env (behind TLS) --------------------------------------------
BEHIND_TLS_PROXY = env_bool("FACEACCESS_BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
# Behind TLS the cookies are always secure; FACEACCESS_SECURE_COOKIES also turns them on without the proxy.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = BEHIND_TLS_PROXY or env_bool("FACEACCESS_SECURE_COOKIES", False)
# HSTS only when the browser reaches us over TLS: a year by default; subdomains only when the operator says so.
SECURE_HSTS_SECONDS = env_int("FACEACCESS_HSTS_SECONDS", 31_536_000) if BEHIND_TLS_PROXY else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("FACEACCESS_HSTS_INCLUDE_SUBDOMAINS", False)
# Console sessions: 8 hours by default, sliding (each request starts the hours again).
SESSION_COOKIE_AGE = max(60, int(env_float("FACEACCESS_SESSION_HOURS", 8.0) * 3600))
SESSION_SAVE_EVERY_REQUEST = True
# faceaccess.headers.PermissionsPolicyMiddleware: the webcam for our own pages (the person page), nothing else.
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=()"
# django-csp: the console runs only its own script and stylesheet files (no inline script, style or handler, no
# CDN), so an injected <script> or style attribute does nothing. The Django admin and the API (its Swagger page
# ships inline script) are left out; API answers are JSON.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/", "/api/"],
    "DIRECTIVES": {
        "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"], "object-src": ["'none'"], "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"], "form-action": ["'self'"],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes says "AXES: BEGIN ..." (and every successful login) at INFO on stderr, before any manage.py
    # command's own output: keep its warnings (lockouts) only.
    "loggers": {"axes": {"level": "WARNING"}},
}
