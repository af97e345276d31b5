"""Settings, read from environment variables only (see docs/settings.md).

Two topologies share this file. With CELERY_BROKER_URL unset the project runs *embedded*: SQLite
in DATA_DIR, an in-process channel layer, and background work on an in-process Celery worker fed
by an on-disk queue. With CELERY_BROKER_URL set it runs in *production* mode: Celery workers and
beat are separate processes, SECRET_KEY must be given, and HTTPS hardening is on by default.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.connection import parse_url as parse_redis_url

# Whole blocks that read the environment on their own (see automation/conf/).
from automation.conf.logging import *  # noqa: F403  LOG_LEVEL, LOG_FORMAT, LOGGING
from automation.conf.mail import *  # noqa: F403  SITE_URL, APPROVAL_*, EMAIL_*
from automation.conf.openapi import *  # noqa: F403  SPECTACULAR_SETTINGS
from automation.conf.signin import *  # noqa: F403  TRUSTED_PROXY_COUNT, AXES_*
from automation.lib.env import (
    data_dir,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_rates,
    env_str,
    persistent_secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir("DATA_DIR", BASE_DIR / "data")

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
EMBEDDED = not CELERY_BROKER_URL

DEBUG = env_bool("DEBUG", default=False)
PORT = env_int("PORT", 8000, minimum=1, maximum=65535)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "SECRET_KEY is required in production mode (CELERY_BROKER_URL is set): every web, "
            "worker and beat process must share the same key. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
        )
    SECRET_KEY = persistent_secret_key(DATA_DIR)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_celery_beat",
    "channels",
    "django_htmx",
    "django_json_widget",  # the admin's JSON editor of workflow definitions
    "automation",
    "events",
    "approvals",
    "rules",
]
# Example workflows of every common pattern; they only react to `example.*` events.
EXAMPLES = env_bool("EXAMPLES", default=EMBEDDED)
if EXAMPLES:
    INSTALLED_APPS.append("examples")
# Your own apps (their workflows.py, actions and models) without editing this file.
INSTALLED_APPS += [app for app in env_list("EXTRA_APPS", []) if app not in INSTALLED_APPS]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who caused an event a signal emits during the request (events.bridge).
    "automation.lib.requestuser.RequestUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "automation.urls"
WSGI_APPLICATION = "automation.wsgi.application"
ASGI_APPLICATION = "automation.asgi.application"

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


# --- Database -------------------------------------------------------------------------------


def _database(url: str) -> dict:
    try:
        config = dj_database_url.parse(
            # PostgreSQL connections are kept (and health-checked) between requests and tasks
            # by default: a new connection per Celery task cost half a worker's time.
            url,
            conn_max_age=env_int(
                "DATABASE_CONN_MAX_AGE", 60 if url.startswith("postgres") else 0, minimum=0
            ),
        )
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r} cannot be parsed ({exc.__class__.__name__}); use "
            "postgres://user:password@host:5432/name or sqlite:////absolute/path.sqlite3."
        ) from None
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        # Several threads (web + embedded worker + scheduler) write to one SQLite file: WAL lets
        # readers proceed during a write, IMMEDIATE takes the write lock at BEGIN so two writers
        # queue on busy_timeout instead of failing with "database is locked" mid-transaction.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;"
            ),
        }
    elif engine == "django.db.backends.postgresql":
        config["CONN_HEALTH_CHECKS"] = True
        config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
        config["TEST"] = {"NAME": f"test_{config['NAME']}"}
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL uses {engine}; only PostgreSQL and SQLite are supported."
        )
    return config


DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}")
DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Auth, i18n, static ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Operators sign in to the web UI; the admin keeps its own login page.
LOGIN_URL = "/app/login/"
LOGIN_REDIRECT_URL = "/app/"
LOGOUT_REDIRECT_URL = "/app/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed files served by WhiteNoise; `collectstatic` builds them (make run and
    # the Procfile's release step do it).
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


# --- HTTPS hardening (on by default in production mode) -------------------------------------

HTTPS = env_bool("HTTPS", default=not EMBEDDED)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=HTTPS)
# Turning preload off is a deliberate choice, so its deploy-check warning is silenced with it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD or not HTTPS else ["security.W021"]
# Load balancers probe /healthz over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"


# --- REST framework -------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated request then gets 401 with `WWW-Authenticate: Token`.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}


# --- Channels -------------------------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL")


def _redis_db(url: str) -> int:
    try:
        return int(parse_redis_url(url).get("db") or 0)
    except ValueError as exc:
        raise ImproperlyConfigured(f"REDIS_URL={url!r} is not a Redis URL: {exc}") from exc


if REDIS_URL:
    # Pub/sub: a notice to a group is one PUBLISH, pipelined by automation.live; the sorted-set
    # layer (channels_redis.core) cost a worker a third of its CPU per run in round trips and
    # Lua. Pub/sub channels belong to the whole server, not to a database, so they are named
    # after the database: deployments (and test runs) on other databases of a server stay apart.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"asgi.{_redis_db(REDIS_URL)}."},
        }
    }
else:
    # One process in embedded mode, so an in-process layer reaches every socket.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


# --- Celery ---------------------------------------------------------------------------------
# The database is the source of truth; the broker only carries "do X" messages. These settings
# make sure a message is only removed once its task finished, even if the worker is killed.

CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60)
if EMBEDDED:
    # An on-disk queue in DATA_DIR consumed by the in-process worker that `manage.py serve`
    # starts: work enqueued before a restart is still there after it, and other local processes
    # (management commands) can enqueue for the server.
    CELERY_QUEUE_DIR = DATA_DIR / "queue"
    CELERY_QUEUE_DIR.mkdir(exist_ok=True)
    CELERY_BROKER_URL = (
        "automation-fs://localhost/"  # kombu's filesystem queue: automation/lib/queue.py
    )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR),
        "data_folder_out": str(CELERY_QUEUE_DIR),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "polling_interval": env_float("EMBEDDED_POLL_INTERVAL", 0.1, minimum=0.01),
    }
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
        # A list per priority (Redis takes 0 first). Runs default to the middle one, so a
        # trigger's priority can send a run ahead of them, or behind (automation.tasks).
        "priority_steps": list(range(10)),
        "queue_order_strategy": "priority",
    }
    CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 3.0, minimum=0.1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = None  # no result backend, so no nightly result clean-up job either
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# Background execution in embedded mode: threads of the in-process worker.
EMBEDDED_CONCURRENCY = env_int("EMBEDDED_CONCURRENCY", 4, minimum=1, maximum=64)
# How often the scheduler records that it is alive (shown by /healthz).
HEARTBEAT_INTERVAL = env_int(
    "HEARTBEAT_INTERVAL", 30, minimum=1
)  # whole seconds, as SWEEP_INTERVAL
# --- Engine ---------------------------------------------------------------------------------

# How long a worker holds a run without renewing (renewed before each step, by the step's
# timeout too). A killed worker's run is taken over this long after it died.
AUTOMATION_LEASE_SECONDS = env_float("RUN_LEASE_SECONDS", 60.0, minimum=1.0)
# A pending run (or branch) whose advance message was not consumed within this time is re-sent.
AUTOMATION_REDISPATCH_SECONDS = env_float("RUN_REDISPATCH_SECONDS", 120.0, minimum=1.0)
# Runs taken back from dead workers this many times are failed ("dead-lettered").
AUTOMATION_MAX_RECOVERIES = env_int("RUN_MAX_RECOVERIES", 5, minimum=1)
# Limits of every CEL evaluation (trigger filters, step conditions, wait conditions, dry runs):
# the data an expression reads may hold at most this many values (an over-size event fails
# that filter with a recorded error instead of holding the process), and it is stopped after
# this many milliseconds.
CEL_MAX_INPUT_VALUES = env_int("CEL_MAX_INPUT_VALUES", 10_000, minimum=1)
CEL_TIMEOUT_MS = env_int("CEL_TIMEOUT_MS", 50, minimum=1)
# wait_for_event also accepts an event stored this long before the wait began.
AUTOMATION_WAIT_LOOKBACK = timedelta(seconds=env_float("WAIT_LOOKBACK_SECONDS", 300.0))
# A run's query handler (@workflow.query) answers within this many seconds and this many bytes
# of JSON, or the request is answered 504 / 500 (one slow or huge handler holds no web worker).
AUTOMATION_QUERY_TIMEOUT = env_float("QUERY_TIMEOUT_SECONDS", 2.0, minimum=0.01)
AUTOMATION_QUERY_MAX_BYTES = env_int("QUERY_MAX_BYTES", 262_144, minimum=1)
# How often the sweep fires due timers and recovers runs; a due timer fires within this.
# Whole seconds: django-celery-beat stores intervals as integers (0.5 would become 0: non-stop).
SWEEP_INTERVAL = env_int("SWEEP_INTERVAL", 1, minimum=1)

# Periodic jobs of the platform. DatabaseScheduler copies these into django-celery-beat's tables,
# where admins can see them; schedules of their own are added there too.
CELERY_BEAT_SCHEDULE = {
    "automation.heartbeat": {"task": "automation.heartbeat", "schedule": HEARTBEAT_INTERVAL},
    "automation.sweep": {"task": "automation.sweep", "schedule": SWEEP_INTERVAL},
    # Reminds approvers before an approval is due (approvals' own job, as often as the sweep).
    "approvals.remind": {"task": "approvals.remind", "schedule": SWEEP_INTERVAL},
    # Routes events whose after-commit dispatch was lost (broker down, process killed).
    "events.sweep_unrouted": {"task": "events.sweep_unrouted", "schedule": 5.0},
    # Folds new events into the projections (events.projections), as often as the sweep.
    "events.project": {"task": "events.project", "schedule": SWEEP_INTERVAL},
}


# --- Events ---------------------------------------------------------------------------------

# Largest webhook (and POST /api/events/) body accepted, unless an endpoint sets its own.
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
# How long a rotated-out webhook secret still verifies, so senders can switch over.
WEBHOOK_SECRET_ROTATION_GRACE = env_int("WEBHOOK_SECRET_ROTATION_GRACE", 86400, minimum=0)
# Projections leave events younger than this for their next pass: a transaction that stamped an
# event earlier may still be committing (a checkpoint moved past it would skip that event).
PROJECTION_SETTLE_SECONDS = env_float("PROJECTION_SETTLE_SECONDS", 3.0, minimum=0.0)
# Deepest nesting of objects/arrays accepted in an event body (deeper: 400).
EVENTS_MAX_JSON_DEPTH = env_int("EVENTS_MAX_JSON_DEPTH", 64, minimum=2, maximum=500)
# Seconds a process keeps event schemas and signal bridges cached before re-reading them.
EVENTS_CONFIG_CACHE_SECONDS = env_float("EVENTS_CONFIG_CACHE_SECONDS", 5.0, minimum=0.0)
# How events reach the router. publish: "route event X" goes to the broker after each commit
# (lowest latency, no extra process). outbox: nothing is published; `manage.py route_events`
# processes poll the event table (the outbox) for unrouted events, which takes the broker
# publish off the ingest hot path (see docs/events.md, "Routing modes").
EVENTS_ROUTING = env_choice("EVENTS_ROUTING", "publish", ("publish", "outbox"))
# publish mode: the longest a "route" message of a busy process waits for more events to carry
# (from 500 events/s per process; (rate/500)² of it below: 2 ms at 100/s with the default).
# See events.publisher.
EVENTS_PUBLISH_MAX_WAIT = env_float("EVENTS_PUBLISH_MAX_WAIT", 0.05, minimum=0.0)
# Seconds `manage.py route_events` sleeps when it found nothing to route.
EVENTS_ROUTER_POLL_INTERVAL = env_float("EVENTS_ROUTER_POLL_INTERVAL", 0.01, minimum=0.001)


# --- Operating it: API conventions, OpenAPI, rate limits, metrics, logs, retention ----------
# (issue 7; each setting is documented in docs/operating.md)

INSTALLED_APPS += ["django_filters", "drf_spectacular"]
REST_FRAMEWORK |= {
    # One error shape for every API refusal, including DRF's own 400/401/403/404 and views
    # added later: {"error": {"code", "message", "fields"?}}.
    "EXCEPTION_HANDLER": "automation.api.errors.exception_handler",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # JSON bodies with values no database can store (lone surrogates, 1e999) are a 400.
    "DEFAULT_PARSER_CLASSES": [
        "automation.api.parsers.StorableJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
REST_FRAMEWORK |= {"DEFAULT_SCHEMA_CLASS": "automation.api.schema.AutoSchema"}
INSTALLED_APPS += ["drf_spectacular_sidecar"]

# Rate limits, "<count>/<period>" (s, m, h, d; e.g. 100/m) or off. Counted in the "ratelimit"
# cache: Redis when REDIS_URL is set (shared by every process), else in-process memory (the
# single embedded process).
API_RATE_LIMIT = env_rate("API_RATE_LIMIT")
WEBHOOK_RATE_LIMIT = env_rate("WEBHOOK_RATE_LIMIT")
WEBHOOK_RATE_LIMITS = env_rates("WEBHOOK_RATE_LIMITS")  # per slug: "shop=100/m,github=off"
REST_FRAMEWORK |= {"DEFAULT_THROTTLE_CLASSES": ["automation.api.throttles.ApiRateThrottle"]}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "ratelimit": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "ratelimit"}
    ),
}

# Retention: events and finished runs older than this many days are deleted by the periodic
# `automation.purge` task (every RETENTION_INTERVAL seconds) and by `manage.py purge`. 0 keeps
# them forever.
EVENTS_RETENTION_DAYS = env_int("EVENTS_RETENTION_DAYS", 0, minimum=0)
RUNS_RETENTION_DAYS = env_int("RUNS_RETENTION_DAYS", 0, minimum=0)
RETENTION_INTERVAL = env_float("RETENTION_INTERVAL", 3600.0, minimum=60.0)
RETENTION_BATCH_SIZE = env_int("RETENTION_BATCH_SIZE", 1000, minimum=1, maximum=100_000)
CELERY_BEAT_SCHEDULE["automation.purge"] = {
    "task": "automation.purge",
    "schedule": RETENTION_INTERVAL,
}

# WhiteNoise, streaming static files without a warning under ASGI too (automation.lib.staticfiles).
MIDDLEWARE[MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware")] = (
    "automation.lib.staticfiles.WhiteNoiseMiddleware"
)
# --- Declarative workflows and built-in actions (issue 5) -----------------------------------

# Hosts and networks (comma-separated: "localhost,10.0.0.0/8,fd00::/8") the http.request,
# slack.post actions may reach although they are private, loopback or link-local.
AUTOMATION_HTTP_ALLOWLIST = env_list("AUTOMATION_HTTP_ALLOWLIST", [])
# Largest response body http.request reads (larger: the step fails, not retried).
AUTOMATION_HTTP_MAX_RESPONSE_BYTES = env_int(
    "AUTOMATION_HTTP_MAX_RESPONSE_BYTES", 1024 * 1024, minimum=1024
)
# Redirects http.request follows (each hop is checked by the SSRF guard again).
AUTOMATION_HTTP_MAX_REDIRECTS = env_int("AUTOMATION_HTTP_MAX_REDIRECTS", 5, minimum=0)
# Models (app_label.Model, comma-separated) record.create and record.update may write.
AUTOMATION_RECORD_MODELS = env_list("AUTOMATION_RECORD_MODELS", [])
# Default incoming-webhook URL of slack.post.
AUTOMATION_SLACK_WEBHOOK_URL = env_str("SLACK_WEBHOOK_URL", "")
# ai.complete: an OpenAI-compatible API (https://api.openai.com/v1, a local server, ...).
AUTOMATION_AI_BASE_URL = env_str("AI_BASE_URL", "")
AUTOMATION_AI_API_KEY = env_str("AI_API_KEY", "")
AUTOMATION_AI_MODEL = env_str("AI_MODEL", "gpt-4o-mini")
AUTOMATION_AI_TIMEOUT = env_float("AI_TIMEOUT", 60.0, minimum=1.0)

# --- Worker database connections (issue 8) --------------------------------------------------
# Celery's Django fixup force-closes every database connection before and after each task
# unless this is set (celery#9824): a new PostgreSQL connection per task cost half of a
# worker's time. Set this high, Celery's forced closing is off, and automation/signals.py closes
# connections around each task as Django does around a request (DATABASE_CONN_MAX_AGE and
# health checks honoured): with DATABASE_CONN_MAX_AGE=60 (the default on PostgreSQL) a worker
# keeps its connection for a minute; with 0 each task gets a new one.
CELERY_DB_REUSE_MAX = 1_000_000_000


# --- Sign-in protection (issue 14) ----------------------------------------------------------
# The counts and lockouts are configured in automation/conf/signin.py.

INSTALLED_APPS.append("axes")
MIDDLEWARE.append("axes.middleware.AxesMiddleware")

# Wrong API tokens allowed per address; past it every token from there gets 429 for the window.
API_TOKEN_FAILURE_LIMIT = env_rate("API_TOKEN_FAILURE_LIMIT", "10/m")
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "automation.api.authentication.TokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]

# Circuit breakers (docs/circuit-breakers.md): the thresholds a circuit uses unless its action or
# step gives its own, and the actions that get one without asking ("*": every action).
AUTOMATION_CIRCUIT = {
    "failures": env_int("AUTOMATION_CIRCUIT_FAILURES", 5, minimum=1),
    "within": env_str("AUTOMATION_CIRCUIT_WITHIN", "1m"),
    "open_for": env_str("AUTOMATION_CIRCUIT_OPEN_FOR", "30s"),
    "actions": env_list("AUTOMATION_CIRCUIT_ACTIONS", []),
}

# --- Search -----------------------------------------------------------------------------------
# Milliseconds a text search over event data may take (the events page and ?q= in the API)
# before it is stopped and the person is asked to narrow it (docs/search.md).
SEARCH_TIMEOUT_MS = env_int("SEARCH_TIMEOUT_MS", 5000, minimum=100, maximum=600_000)
