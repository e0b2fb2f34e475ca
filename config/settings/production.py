"""Production settings: secrets and services come from the environment, with no defaults.

A missing required variable raises ImproperlyConfigured at start-up, not on first use.
"""

import os

from .base import *  # noqa: F403
from .base import VAR_DIR, env

# Prometheus multiprocess mode (core/metrics.py): every process of this host (gunicorn's
# workers, the Celery worker, the callback deliverer) writes its counters here and /metrics adds
# them up. Set before prometheus_client is imported, which happens after settings load.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

SECRET_KEY = env("SECRET_KEY")
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
# No per-request `SELECT 1`: it cost ~14 % on the webhook endpoint. A connection broken by a
# database restart fails one request and is replaced; every write here is safe to retry
# (Meta redelivers webhooks, API calls carry an Idempotency-Key).
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
REDIS_URL = env("REDIS_URL")
WAYPOST_RATE_LIMITER = env("WAYPOST_RATE_LIMITER", default="redis")
WAYPOST_CALLBACK_REQUIRE_HTTPS = env.bool("WAYPOST_CALLBACK_REQUIRE_HTTPS", default=True)
WHATSAPP_APP_SECRET = env("WHATSAPP_APP_SECRET")
WHATSAPP_VERIFY_TOKEN = env("WHATSAPP_VERIFY_TOKEN")

DEBUG = False
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_CONTENT_TYPE_NOSNIFF = True
