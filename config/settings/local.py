"""Development and demo settings: embedded defaults, debug on, an insecure key, the developer
tools (``manage.py demo``) and the sandbox provider. Chosen explicitly (``make demo``, ``make
run``, or ``DJANGO_SETTINGS_MODULE=config.settings.local``): nothing defaults to them.

The variables read again here are those whose ``local`` default ``config/env.py`` declares."""

from config.env import SettingsEnv

from .base import *  # noqa: F403
from .base import INSTALLED_APPS

env = SettingsEnv("local")

WAYPOST_DEPLOYMENT = "development"
DEBUG = env("DEBUG")
SECRET_KEY = env("SECRET_KEY")
INSTALLED_APPS = [*INSTALLED_APPS, "devtools"]
WAYPOST_SANDBOX_PROVIDER = env("WAYPOST_SANDBOX_PROVIDER")
# The embedded demo's own callback receiver listens on loopback.
WAYPOST_CALLBACK_ALLOW_PRIVATE = env("WAYPOST_CALLBACK_ALLOW_PRIVATE")
