"""Production settings — the default for every process (``config/__init__.py``).

Secrets and services come from the environment (or ``.env``) with no defaults: a missing one
stops the process at start-up with a message naming every variable to set (those
``config/env.py`` declares required in production). ``core.checks`` adds the rules that span
several settings (a shared broker with process-memory coordination, the sandbox provider, the
development key) and runs in every process at start. The variables read again here are those
whose ``production`` default ``config/env.py`` declares.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from config.env import SettingsEnv

from .base import *  # noqa: F403

env = SettingsEnv("production")

WAYPOST_DEPLOYMENT = "production"

_missing = env.missing_required()
if _missing:
    raise ImproperlyConfigured(
        f"config.settings.production (the default settings) needs {', '.join(_missing)}: set "
        "them in the environment or in .env (see .env.example). To run the embedded "
        "development settings instead, set DJANGO_SETTINGS_MODULE=config.settings.local."
    )

# Prometheus multiprocess mode (core/metrics.py): every process of this host (gunicorn's
# workers, the Celery worker, the callback deliverer) writes its counters here and /metrics adds
# them up. Set before prometheus_client is imported, which happens after settings load.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = env("PROMETHEUS_MULTIPROC_DIR")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# No per-request `SELECT 1` (CONN_HEALTH_CHECKS): it cost ~14 % on the webhook endpoint. A
# connection broken by a database restart fails one request and is replaced; every write here
# is safe to retry (Meta redelivers webhooks, API calls carry an Idempotency-Key).
DATABASES = databases(env)  # noqa: F405
WAYPOST_CALLBACK_REQUIRE_HTTPS = env("WAYPOST_CALLBACK_REQUIRE_HTTPS")
# /metrics: a bearer token (WAYPOST_METRICS_TOKEN) is required (core.checks, E016). Scraping by
# address instead is an explicit opt-out: list the networks in WAYPOST_METRICS_ALLOW (behind a
# reverse proxy on the same host every client comes from loopback: no default here).
WAYPOST_METRICS_ALLOW = env("WAYPOST_METRICS_ALLOW")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# HSTS: a year, subdomains included, preload allowed (config/env.py says when to lower them).
SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env("SECURE_HSTS_INCLUDE_SUBDOMAINS")
SECURE_HSTS_PRELOAD = env("SECURE_HSTS_PRELOAD")
SECURE_CONTENT_TYPE_NOSNIFF = True
