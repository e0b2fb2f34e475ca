"""Settings shared by every environment, read from the environment with django-environ.

Which module a process runs is decided once, in ``config/__init__.py`` (production unless told
otherwise). These shared defaults are the embedded ones — SQLite under ``var/`` and Celery's
in-process ``memory://`` broker — which ``local`` runs as they are and ``production`` refuses.
Every variable is listed with its default in ``.env.example`` and in the documentation's settings
table (``docs/operations/settings.md``). Environment-specific modules (``local``,
``production``, ``test``) import this one and change only what differs; ``core.checks``
refuses combinations that cannot work together (``manage.py check``, and every process at
start).
"""

from pathlib import Path

import environ

from core.coordination import default_backend, default_redis_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Local state of the embedded defaults (SQLite database, collected static files).
VAR_DIR = BASE_DIR / "var"
(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)

env = environ.Env()
# A .env file is read when present (never committed); real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Core -----------------------------------------------------------------------------------
# What kind of deployment this is: "production" (the default, and what ``core.checks`` holds to
# the strictest rules), "development" (config.settings.local) or "test".
WAYPOST_DEPLOYMENT = "production"
SECRET_KEY = env("SECRET_KEY", default="")
# The development settings' key; core.checks refuses it (and an empty one) in production.
INSECURE_DEVELOPMENT_KEY = "insecure-local-development-key-do-not-use-in-production"
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "core",
    "tenants",
    "templates_registry",
    "callbacks",
    "messaging",
    "webhooks",
    "operations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and API docs' static files from gunicorn, without a separate server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Django's sessions, authentication and messages, skipped on /webhooks/ (see there).
    "webhooks.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "webhooks.middleware.AuthenticationMiddleware",
    "webhooks.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.parsers.RejectUnstorableQueryMiddleware",
    "core.db.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'waypost.sqlite3'}"),
}
# Persistent connections: a new connection per request costs ~5x on the hot paths.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The embedded demo runs the API and a worker thread on one SQLite file: WAL lets readers
    # and the writer overlap, IMMEDIATE transactions take the write lock up front (no upgrade
    # deadlocks), and writers wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- I18N / time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(VAR_DIR / "static"))

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.IsTenant"],
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.TenantRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Waypost API",
    "DESCRIPTION": "Validated, reliable, tracked WhatsApp template messaging.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Self-hosted: serve Swagger UI's assets ourselves rather than from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.error_responses",
    ],
}

# --- WhatsApp / providers -----------------------------------------------------------------------
WHATSAPP_APP_SECRET = env("WHATSAPP_APP_SECRET", default="")
WHATSAPP_VERIFY_TOKEN = env("WHATSAPP_VERIFY_TOKEN", default="")
# The current Graph API version (v26.0, July 2026); whatsapp/meta.py says which are supported.
WHATSAPP_GRAPH_VERSION = env("WHATSAPP_GRAPH_VERSION", default="v26.0")
WHATSAPP_GRAPH_URL = env("WHATSAPP_GRAPH_URL", default="https://graph.facebook.com")
DIALOG360_BASE_URL = env("DIALOG360_BASE_URL", default="https://waba-v2.360dialog.io")
# 360dialog's optional x-360dialog-signature secret (the partner's platform secret).
DIALOG360_WEBHOOK_SECRET = env("DIALOG360_WEBHOOK_SECRET", default="")
# Meta's webhook payloads are up to 3 MB (docs/meta-api.md §4.2): refuse more with 413.
WEBHOOK_MAX_BYTES = env.int("WEBHOOK_MAX_BYTES", default=3 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BYTES + 1024
# Senders whose provider is `sandbox` talk to this URL (`python -m sandbox`). The provider is a
# test double: off unless switched on (config.settings.local and test do; production only when
# WAYPOST_SANDBOX_PROVIDER=true is set explicitly, which core.checks reports at every start).
SANDBOX_URL = env("SANDBOX_URL", default="http://127.0.0.1:8025")
WAYPOST_SANDBOX_PROVIDER = env.bool("WAYPOST_SANDBOX_PROVIDER", default=False)

# --- Send path --------------------------------------------------------------------------------
WAYPOST_PROVIDER_CONNECT_TIMEOUT = env.float("WAYPOST_PROVIDER_CONNECT_TIMEOUT", default=3.0)
WAYPOST_PROVIDER_READ_TIMEOUT = env.float("WAYPOST_PROVIDER_READ_TIMEOUT", default=10.0)
# The sender bucket holds this many seconds of tokens (see messaging/ratelimit.py for why < 1).
WAYPOST_RATE_BURST_SECONDS = env.float("WAYPOST_RATE_BURST_SECONDS", default=0.5)
# A provider's THROUGHPUT_UPGRADE never raises a sender's messages/second above this.
WAYPOST_SENDER_MPS_CAP = env.int("WAYPOST_SENDER_MPS_CAP", default=1000)
WAYPOST_PAIR_INTERVAL = env.float("WAYPOST_PAIR_INTERVAL", default=6.0)
WAYPOST_PAIR_BURST = env.int("WAYPOST_PAIR_BURST", default=10)
# Messages a drain claims and sends in one pass: a tenant's turn. Another tenant's message waits
# for at most one pass per worker process; 50 measured twice the fairness of 100 (B's p95
# under A's flood ~0.5 s vs ~1 s) for ~5 % of batch throughput (make bench: bench/RESULTS.md).
WAYPOST_BATCH_SIZE = env.int("WAYPOST_BATCH_SIZE", default=50)
WAYPOST_SUBMIT_CONCURRENCY = env.int("WAYPOST_SUBMIT_CONCURRENCY", default=32)
# A message still `submitting` this long after its submit began lost its worker mid-request.
WAYPOST_SUBMIT_STUCK_AFTER = env.float(
    "WAYPOST_SUBMIT_STUCK_AFTER",
    default=WAYPOST_PROVIDER_CONNECT_TIMEOUT + WAYPOST_PROVIDER_READ_TIMEOUT + 5,
)
# A queued message not published (or republished) this long ago is published again. Steps are
# idempotent, so a backlog older than this is merely processed twice, never sent twice.
WAYPOST_REDRIVE_AFTER = env.float("WAYPOST_REDRIVE_AFTER", default=300.0)
WAYPOST_COUNTDOWN_MAX = env.float("WAYPOST_COUNTDOWN_MAX", default=300.0)
# The reconciler (operations/reconciler.py): parked statuses no message claimed are expired after
# this many seconds; a stored webhook delivery still pending after this many is processed by the
# reconciler and logged as an error.
WAYPOST_ORPHAN_TTL = env.int("WAYPOST_ORPHAN_TTL", default=7 * 24 * 3600)
WAYPOST_WEBHOOK_LAG_ALERT = env.int("WAYPOST_WEBHOOK_LAG_ALERT", default=60)
# `manage.py retention`: processed webhook deliveries (raw bodies) are kept this many days.
WAYPOST_WEBHOOK_RETENTION_DAYS = env.int("WAYPOST_WEBHOOK_RETENTION_DAYS", default=30)
# How long a worker keeps trying to record the answers to a submit through database errors
# (the answers exist only in its memory); past it the messages are resolved as unknown outcomes.
WAYPOST_RECORD_PATIENCE = env.float("WAYPOST_RECORD_PATIENCE", default=60.0)
# A request that meets a transient database error is answered 503 with this Retry-After.
WAYPOST_DB_RETRY_AFTER = env.int("WAYPOST_DB_RETRY_AFTER", default=5)
# Fault injection for the crash tests only: names of points where the worker SIGKILLs itself.
WAYPOST_CRASH_POINTS = env.list("WAYPOST_CRASH_POINTS", default=[])

# --- Redis / Celery / coordination ----------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
# Redis for the coordination store; a Redis broker is the default.
REDIS_URL = env("REDIS_URL", default=default_redis_url(CELERY_BROKER_URL))
# Where state shared by the processes of a deployment lives — the drains' debounce and wake-up
# keys, per-sender and per-recipient rate limits, the API throttle, callback wake-ups
# (core.coordination, core.ratelimit): `redis` (REDIS_URL), or `memory` (this process's memory:
# only for the embedded demo, where the broker is in-process and API and worker are one
# process). It follows the broker; core.checks refuses `memory` beside a real broker.
WAYPOST_COORDINATION = env("WAYPOST_COORDINATION", default=default_backend(CELERY_BROKER_URL))
CELERY_TASK_DEFAULT_QUEUE = "waypost"
# How long a publish keeps trying a dead broker: the API answers 202 (message stays queued for
# the re-drive) after at most about this long.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# Redis redelivers a task whose worker died once this many seconds passed (acks_late).
# kombu sweeps for such tasks every interval x throttle seconds (its defaults: 10 x 10).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
}
# Periodic jobs are django-celery-beat rows (operations/migrations/0001_reconcile_schedule.py),
# editable in the admin; none are declared here.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fix-up closes the DB connection around every task unless this is set;
# reusing it measured ~3x on task chains on a 2-core machine.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# --- Client callbacks (callbacks/services.py) -----------------------------------------------------
# Production requires https; only an operator's setting lets callbacks reach loopback, link-local
# (cloud metadata) or private addresses.
WAYPOST_CALLBACK_REQUIRE_HTTPS = env.bool("WAYPOST_CALLBACK_REQUIRE_HTTPS", default=False)
WAYPOST_CALLBACK_ALLOW_PRIVATE = env.bool("WAYPOST_CALLBACK_ALLOW_PRIVATE", default=False)
# Seconds a deliverer owns the events it claimed; after a crash they are delivered again.
WAYPOST_CALLBACK_LEASE = env.int("WAYPOST_CALLBACK_LEASE", default=60)

# Extra task modules to load (the benchmarks' baseline tasks: bench.tasks).
CELERY_IMPORTS = env.list("CELERY_IMPORTS", default=[])

# --- Metrics (operations/metrics.py) -----------------------------------------------------------
# With a token, /metrics needs `Authorization: Bearer <token>`; without, only these networks.
WAYPOST_METRICS_TOKEN = env("WAYPOST_METRICS_TOKEN", default="")
WAYPOST_METRICS_ALLOW = env.list("WAYPOST_METRICS_ALLOW", default=["127.0.0.1/32", "::1/128"])

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# `json`: one JSON object per line (core.logging.JsonFormatter); `plain` otherwise.
LOG_FORMAT = env("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_phone_numbers": {"()": "core.logging.MaskPhoneNumbersFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["mask_phone_numbers"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Sentry (switched on by SENTRY_DSN) ---------------------------------------------------------
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="development")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
if SENTRY_DSN:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    from core.sentry import before_send

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # Phone numbers, API keys and tokens must never leave the process: no PII, and no
        # local variables of stack frames (they hold recipients and payloads).
        send_default_pii=False,
        include_local_variables=False,
        before_send=before_send,
    )
