"""Development and demo settings: embedded defaults, debug on, an insecure key, the developer
tools (``manage.py demo``) and the sandbox provider. Chosen explicitly (``make demo``, ``make
run``, or ``DJANGO_SETTINGS_MODULE=config.settings.local``): nothing defaults to them."""

from .base import *  # noqa: F403
from .base import INSECURE_DEVELOPMENT_KEY, INSTALLED_APPS, env

WAYPOST_DEPLOYMENT = "development"
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default=INSECURE_DEVELOPMENT_KEY)
INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]
WAYPOST_SANDBOX_PROVIDER = env.bool("WAYPOST_SANDBOX_PROVIDER", default=True)
# The embedded demo's own callback receiver listens on loopback.
WAYPOST_CALLBACK_ALLOW_PRIVATE = env.bool("WAYPOST_CALLBACK_ALLOW_PRIVATE", default=True)
