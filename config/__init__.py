"""Wiring only: settings, the Celery app and URLs. No domain logic lives here.

Which settings module a process runs is decided here, once, for every entry point — ``manage.py``
(so the callback deliverer and every command), gunicorn's ``config.wsgi``, and Celery's
``-A config`` (worker and beat) all import this package before anything else:

1. ``DJANGO_SETTINGS_MODULE`` from the process environment, if set;
2. else from the project's ``.env`` file, if it names one;
3. else :data:`DEFAULT_SETTINGS_MODULE`, the production settings.

Production is the default so that a process started without the variable (a PaaS, a systemd
unit or a container that missed one line) runs the same settings as its peers — or refuses to
start, naming what to set — never the development settings with their process-memory state.
Development opts in explicitly (``make demo`` and ``make run`` set ``config.settings.local``;
pytest sets ``config.settings.test``). Every process logs the module it runs in its first line
(``core.startup``).
"""

import os
from pathlib import Path

DEFAULT_SETTINGS_MODULE = "config.settings.production"
ENV_FILE = Path(__file__).resolve().parent.parent / ".env"


def _settings_module_from_env_file() -> str | None:
    """``DJANGO_SETTINGS_MODULE=...`` in ``.env`` (the file the settings read too)."""
    try:
        lines = ENV_FILE.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, sep, value = line.strip().removeprefix("export ").partition("=")
        if sep and key.strip() == "DJANGO_SETTINGS_MODULE":
            return value.strip().strip("'\"") or None
    return None


os.environ.setdefault(
    "DJANGO_SETTINGS_MODULE", _settings_module_from_env_file() or DEFAULT_SETTINGS_MODULE
)

from .celery_app import app as celery_app  # noqa: E402  (after the settings module is chosen)

__all__ = ("DEFAULT_SETTINGS_MODULE", "celery_app")
