"""Development and demo settings: embedded defaults, debug on, an insecure key."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="insecure-local-development-key-do-not-use-in-production")
# The embedded demo's own callback receiver listens on loopback.
WAYPOST_CALLBACK_ALLOW_PRIVATE = env.bool("WAYPOST_CALLBACK_ALLOW_PRIVATE", default=True)
