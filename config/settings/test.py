"""Test settings: the real PostgreSQL and Redis that `make test` starts.

`scripts/with-services.sh` exports DATABASE_URL and REDIS_URL (required here: ``config/env.py``);
without them the suite refuses to run rather than silently falling back to SQLite. What the
suite needs fixed — its secrets, the sandbox provider, callbacks to loopback — is set here, not
read from the environment.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from config.env import SettingsEnv

from .base import *  # noqa: F403
from .base import INSTALLED_APPS

env = SettingsEnv("test")

WAYPOST_DEPLOYMENT = "test"
if env.missing_required() or not env("DATABASE_URL").startswith("postgres"):
    raise ImproperlyConfigured(
        "The test suite runs on real PostgreSQL and Redis: run it with `make test` "
        "(or scripts/with-services.sh .venv/bin/pytest)."
    )
DATABASE_URL = env("DATABASE_URL")
REDIS_URL = env("REDIS_URL")

# Under pytest-xdist each process gets its own database (pytest-django adds the suffix) and its
# own Redis database — 3 + its number; 2 is the Procfile stack test's — so the broker queues,
# throttles and coordination keys of two processes never meet.
_xdist = os.environ.get("PYTEST_XDIST_WORKER", "")  # set by pytest-xdist, not a setting
if _xdist.startswith("gw"):
    REDIS_URL = f"{REDIS_URL.rsplit('/', 1)[0]}/{3 + int(_xdist[2:])}"

SECRET_KEY = "test-secret-key"
DEBUG = False
INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Each process's sessions are its own to count (pg_stat_activity.application_name): a test's
# worker process shares the test database.
DATABASES["default"]["OPTIONS"] = {"application_name": f"waypost-test-{os.getpid()}"}
CELERY_BROKER_URL = REDIS_URL
WAYPOST_COORDINATION = "redis"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHATSAPP_APP_SECRET = "test-app-secret"
WHATSAPP_VERIFY_TOKEN = "test-verify-token"
# Tests send through the sandbox; their callback receivers listen on loopback. A test that
# starts no sandbox reaches nothing (port 9, discard): never a demo or `make stack` running on
# this machine's default 8025.
WAYPOST_SANDBOX_PROVIDER = True
SANDBOX_URL = env("SANDBOX_URL")
WAYPOST_LOOKUP_CACHE_SECONDS = env("WAYPOST_LOOKUP_CACHE_SECONDS")
WAYPOST_CALLBACK_ALLOW_PRIVATE = True
