"""Wiring only: settings, the Celery app and URLs. No domain logic lives here."""

from .celery_app import app as celery_app

__all__ = ("celery_app",)
