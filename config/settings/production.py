"""Production settings — the default for every process (``config/__init__.py``).

Secrets and services come from the environment (or ``.env``) with no defaults: a missing one
stops the process at start-up with a message naming every variable to set. ``core.checks``
adds the rules that span several settings (a shared broker with process-memory coordination,
the sandbox provider, the development key) and runs in every process at start.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import VAR_DIR, env

WAYPOST_DEPLOYMENT = "production"

REQUIRED = (
    "SECRET_KEY",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
)
_missing = [name for name in REQUIRED if not env.str(name, default="")]
if _missing:
    raise ImproperlyConfigured(
        f"config.settings.production (the default settings) needs {', '.join(_missing)}: set "
        "them in the environment or in .env (see .env.example). To run the embedded "
        "development settings instead, set DJANGO_SETTINGS_MODULE=config.settings.local."
    )

# Prometheus multiprocess mode (core/metrics.py): every process of this host (gunicorn's
# workers, the Celery worker, the callback deliverer) writes its counters here and /metrics adds
# them up. Set before prometheus_client is imported, which happens after settings load.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# No per-request `SELECT 1`: it cost ~14 % on the webhook endpoint. A connection broken by a
# database restart fails one request and is replaced; every write here is safe to retry
# (Meta redelivers webhooks, API calls carry an Idempotency-Key).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
WAYPOST_CALLBACK_REQUIRE_HTTPS = env.bool("WAYPOST_CALLBACK_REQUIRE_HTTPS", default=True)
# /metrics: a bearer token (WAYPOST_METRICS_TOKEN) is required (core.checks, E016). Scraping by
# address instead is an explicit opt-out: list the networks in WAYPOST_METRICS_ALLOW (behind a
# reverse proxy on the same host every client comes from loopback: no default here).
WAYPOST_METRICS_ALLOW = env.list("WAYPOST_METRICS_ALLOW", default=[])

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# HSTS: browsers remember for a year to use only https here (and on subdomains), and the
# header allows preload lists to include the domain. Lower SECURE_HSTS_SECONDS (e.g. 3600)
# while trying https out, or set it to 0 to send no HSTS at all (a site still served over
# http); set the other two to False when subdomains are not all https.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
