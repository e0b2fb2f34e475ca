"""Settings shared by every environment.

Which module a process runs is decided once, in ``config/__init__.py`` (production unless told
otherwise). These shared defaults are the embedded ones — SQLite under ``var/`` and Celery's
in-process ``memory://`` broker — which ``local`` runs as they are and ``production`` refuses.
Environment-specific modules (``local``, ``production``, ``test``) import this one and change
only what differs; ``core.checks`` refuses combinations that cannot work together (``manage.py
check``, and every process at start).

Every variable read from the environment is declared once, with its type, its default in each
module and what it does, in ``config/env.py`` — the sections below follow its groups — and
listed from there in ``.env.example`` and ``docs/operations/settings.md``. Here a variable is
only named: ``env("WAYPOST_BATCH_SIZE")``.
"""

# BASE_DIR, VAR_DIR and INSECURE_DEVELOPMENT_KEY (local's default key, refused by core.checks in
# production) are settings too, declared beside the variables whose defaults use them.
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.env import BASE_DIR, VAR_DIR, SettingsEnv
from config.env import INSECURE_DEVELOPMENT_KEY as INSECURE_DEVELOPMENT_KEY
from core.coordination import broker_use_ssl, default_backend, default_redis_url
from core.queues import shared_queues

(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)

env = SettingsEnv("base")
# A .env file is read when present (never committed); real environment variables win.
env.read_env(BASE_DIR / ".env", overwrite=False)

# --- Django -----------------------------------------------------------------------------------
# What kind of deployment this is: "production" (the default, and what ``core.checks`` holds to
# the strictest rules), "development" (config.settings.local) or "test".
WAYPOST_DEPLOYMENT = "production"
SECRET_KEY = env("SECRET_KEY")
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

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
    "media",
    "messaging",
    "campaigns",
    "webhooks",
    "operations",
]

MIDDLEWARE = [
    # A bad Host on /api/ and /webhooks/: their JSON 400, also with DEBUG on (see there).
    "core.api.JsonHostCheckMiddleware",
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
    # The on-call pages' reads from DATABASE_REPLICA_URL, when set (core.replica).
    "core.replica.ReplicaReadsMiddleware",
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
def database(env: SettingsEnv, var: str = "DATABASE_URL") -> dict:
    """``DATABASE_URL`` (or ``var``) as a Django database, with what a pooler in front of
    PostgreSQL needs (``DATABASE_POOLER``)."""
    db = env.db(var)
    db["CONN_MAX_AGE"] = env("CONN_MAX_AGE")
    db["CONN_HEALTH_CHECKS"] = env("CONN_HEALTH_CHECKS")
    pooler = env("DATABASE_POOLER")
    if pooler not in ("", "transaction"):
        raise ImproperlyConfigured(f"DATABASE_POOLER is '' or 'transaction', not {pooler!r}")
    if pooler == "transaction":
        # Each transaction may get another server connection: nothing may live in a server
        # session across transactions — psycopg prepares a query server-side after its fifth
        # run, and Django's .iterator() opens a server-side cursor.
        db.setdefault("OPTIONS", {})["prepare_threshold"] = None
        db["DISABLE_SERVER_SIDE_CURSORS"] = True
    return db


def databases(env: SettingsEnv) -> dict:
    """``default``, and ``replica`` when ``DATABASE_REPLICA_URL`` names one (``core.replica``)."""
    found = {"default": database(env)}
    if env("DATABASE_REPLICA_URL"):
        found["replica"] = database(env, "DATABASE_REPLICA_URL") | {"TEST": {"MIRROR": "default"}}
    return found


DATABASES = databases(env)
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
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
# A request that meets a transient database error is answered 503 with this Retry-After.
WAYPOST_DB_RETRY_AFTER = env("WAYPOST_DB_RETRY_AFTER")

# --- I18N / time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT")

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

# --- Redis and Celery -------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
REDIS_URL = env("REDIS_URL", default=default_redis_url(CELERY_BROKER_URL))
CELERY_TASK_DEFAULT_QUEUE = "waypost"
CELERY_BROKER_CONNECTION_TIMEOUT = env("CELERY_BROKER_CONNECTION_TIMEOUT")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env("CELERY_VISIBILITY_TIMEOUT"),
    "unacked_restore_interval": env("CELERY_UNACKED_RESTORE_INTERVAL"),
    "unacked_restore_throttle": env("CELERY_UNACKED_RESTORE_THROTTLE"),
    "unacked_mutex_expire": env("CELERY_UNACKED_MUTEX_EXPIRE"),
}
# rediss:// (TLS): the server's certificate verified by default, for the broker as for the
# coordination client; the URL's ssl_* parameters say the rest (core.coordination).
CELERY_BROKER_USE_SSL = broker_use_ssl(CELERY_BROKER_URL)
# Redis behind Sentinel (sentinel://…;sentinel://…): the primary's name, for Celery and for
# the coordination client (core.coordination) alike.
REDIS_SENTINEL_MASTER = env("REDIS_SENTINEL_MASTER")
REDIS_SENTINEL_PASSWORD = env("REDIS_SENTINEL_PASSWORD")
if CELERY_BROKER_URL.startswith("sentinel://"):
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
    if REDIS_SENTINEL_PASSWORD:
        CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {"password": REDIS_SENTINEL_PASSWORD}
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
CELERY_DB_REUSE_MAX = env("CELERY_DB_REUSE_MAX")
CELERY_IMPORTS = env("CELERY_IMPORTS")
# The queues every worker consumes from its start: the default one and the shared lanes
# (core.queues); a tenant with a queue of its own is added at run time.
WAYPOST_SEND_QUEUES = env("WAYPOST_SEND_QUEUES")
WAYPOST_BULK_QUEUES = env("WAYPOST_BULK_QUEUES")
WORKER_LANES = env("WORKER_LANES")  # "all", or "express": messaging.signals
# An express worker takes no broadcast: "consume tenant.<slug>" (a tenant's own queue, its
# backlog included) is for the other workers (messaging.send.dispatch.announce_queue).
CELERY_WORKER_ENABLE_REMOTE_CONTROL = WORKER_LANES != "express"
CELERY_TASK_QUEUES = [
    Queue(name)
    for name in (
        CELERY_TASK_DEFAULT_QUEUE,
        *shared_queues(WAYPOST_SEND_QUEUES, WAYPOST_BULK_QUEUES),
    )
]

# --- Coordination (core.coordination, core.ratelimit) ------------------------------------------
# It follows the broker; core.checks refuses `memory` beside a shared broker.
WAYPOST_COORDINATION = env("WAYPOST_COORDINATION", default=default_backend(CELERY_BROKER_URL))
WAYPOST_COUNTDOWN_MAX = env("WAYPOST_COUNTDOWN_MAX")

# --- WhatsApp (Meta), 360dialog (whatsapp/) ------------------------------------------------------
WHATSAPP_APP_SECRET = env("WHATSAPP_APP_SECRET")
WHATSAPP_VERIFY_TOKEN = env("WHATSAPP_VERIFY_TOKEN")
WHATSAPP_GRAPH_VERSION = env("WHATSAPP_GRAPH_VERSION")
WHATSAPP_GRAPH_URL = env("WHATSAPP_GRAPH_URL")
DIALOG360_BASE_URL = env("DIALOG360_BASE_URL")
DIALOG360_WEBHOOK_SECRET = env("DIALOG360_WEBHOOK_SECRET")

# --- Sandbox ----------------------------------------------------------------------------------
# A test double: off unless switched on (config.settings.local and test do; production only
# when WAYPOST_SANDBOX_PROVIDER=true is set explicitly, which core.checks reports at every start).
WAYPOST_SANDBOX_PROVIDER = env("WAYPOST_SANDBOX_PROVIDER")
SANDBOX_URL = env("SANDBOX_URL")

# --- Send path (messaging.send, core.ratelimit) ------------------------------------------------
WAYPOST_PROVIDER_CONNECT_TIMEOUT = env("WAYPOST_PROVIDER_CONNECT_TIMEOUT")
WAYPOST_PROVIDER_READ_TIMEOUT = env("WAYPOST_PROVIDER_READ_TIMEOUT")
WAYPOST_RATE_BURST_SECONDS = env("WAYPOST_RATE_BURST_SECONDS")
WAYPOST_SENDER_MPS_CAP = env("WAYPOST_SENDER_MPS_CAP")
WAYPOST_PAIR_INTERVAL = env("WAYPOST_PAIR_INTERVAL")
WAYPOST_PAIR_BURST = env("WAYPOST_PAIR_BURST")
WAYPOST_BATCH_SIZE = env("WAYPOST_BATCH_SIZE")
WAYPOST_LOOKUP_CACHE_SECONDS = env("WAYPOST_LOOKUP_CACHE_SECONDS")
WAYPOST_CHAIN_MIN_BATCH = env("WAYPOST_CHAIN_MIN_BATCH")
WAYPOST_SUBMIT_CONCURRENCY = env("WAYPOST_SUBMIT_CONCURRENCY")
WAYPOST_RECORD_PATIENCE = env("WAYPOST_RECORD_PATIENCE")

# --- Reconciler (operations.reconciler, messaging.sweeps) ---------------------------------------
WAYPOST_SUBMIT_STUCK_AFTER = env(
    "WAYPOST_SUBMIT_STUCK_AFTER",
    default=WAYPOST_PROVIDER_CONNECT_TIMEOUT + WAYPOST_PROVIDER_READ_TIMEOUT + 5,
)
WAYPOST_SUBMIT_LOST_AFTER = env("WAYPOST_SUBMIT_LOST_AFTER")
WAYPOST_REDRIVE_AFTER = env("WAYPOST_REDRIVE_AFTER")
WAYPOST_ORPHAN_TTL = env("WAYPOST_ORPHAN_TTL")
WAYPOST_WEBHOOK_LAG_ALERT = env("WAYPOST_WEBHOOK_LAG_ALERT")
WAYPOST_HEALTH_POLL_SECONDS = env("WAYPOST_HEALTH_POLL_SECONDS")

# --- Webhooks (webhooks/) -----------------------------------------------------------------------
WEBHOOK_MAX_BYTES = env("WEBHOOK_MAX_BYTES")
DATA_UPLOAD_MAX_MEMORY_SIZE = WEBHOOK_MAX_BYTES + 1024
WAYPOST_WEBHOOK_RETENTION_DAYS = env("WAYPOST_WEBHOOK_RETENTION_DAYS")

# --- Campaigns (campaigns/) ---------------------------------------------------------------------
WAYPOST_CAMPAIGN_SHARE = env("WAYPOST_CAMPAIGN_SHARE")
WAYPOST_CAMPAIGN_LEAD_SECONDS = env("WAYPOST_CAMPAIGN_LEAD_SECONDS")
WAYPOST_CAMPAIGN_MAX_ROWS = env("WAYPOST_CAMPAIGN_MAX_ROWS")
WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES = env("WAYPOST_CAMPAIGN_MAX_UPLOAD_BYTES")

# --- Media (media/) -----------------------------------------------------------------------------
WAYPOST_MEDIA_MAX_BYTES = env("WAYPOST_MEDIA_MAX_BYTES")
WAYPOST_MEDIA_REFRESH_MARGIN = env("WAYPOST_MEDIA_REFRESH_MARGIN")

# --- Callbacks (callbacks/) ---------------------------------------------------------------------
WAYPOST_CALLBACK_REQUIRE_HTTPS = env("WAYPOST_CALLBACK_REQUIRE_HTTPS")
WAYPOST_CALLBACK_ALLOW_PRIVATE = env("WAYPOST_CALLBACK_ALLOW_PRIVATE")
WAYPOST_CALLBACK_LEASE = env("WAYPOST_CALLBACK_LEASE")

# --- Metrics (operations/metrics.py) -----------------------------------------------------------
WAYPOST_METRICS_TOKEN = env("WAYPOST_METRICS_TOKEN")
WAYPOST_METRICS_ALLOW = env("WAYPOST_METRICS_ALLOW")

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL")
LOG_FORMAT = env("LOG_FORMAT")
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
SENTRY_DSN = env("SENTRY_DSN")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT")
SENTRY_TRACES_SAMPLE_RATE = env("SENTRY_TRACES_SAMPLE_RATE")
if SENTRY_DSN:
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    from core import sentry

    # Phone numbers, API keys and tokens never leave the process: core/sentry.py.
    sentry.init(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
        integrations=(DjangoIntegration(), CeleryIntegration()),
    )

# --- Fault injection (messaging/send/faults.py): the crash tests only ---------------------------
WAYPOST_CRASH_POINTS = env("WAYPOST_CRASH_POINTS")
