"""Configuration: embedded defaults with no environment; production refuses without secrets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each test starts the project's settings in a fresh Python process.
pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}


def run_check(settings_module, **env):
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=CLEAN_ENV | {"DJANGO_SETTINGS_MODULE": settings_module} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_local_settings_run_with_no_environment_at_all():
    result = run_check("config.settings.local")
    assert result.returncode == 0, result.stderr


def test_embedded_defaults_are_sqlite_and_in_process_broker():
    code = (
        "import django, os; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=CLEAN_ENV | {"DJANGO_SETTINGS_MODULE": "config.settings.local"},
        timeout=60,
    )
    assert result.stdout.split() == ["django.db.backends.sqlite3", "memory://"], result.stderr


def test_production_refuses_to_start_without_secret_key():
    result = run_check("config.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_starts_with_its_environment():
    result = run_check(
        "config.settings.production",
        SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://u@127.0.0.1:1/db",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",
        REDIS_URL="redis://127.0.0.1:1/0",
        WHATSAPP_APP_SECRET="s",
        WHATSAPP_VERIFY_TOKEN="t",
        WAYPOST_METRICS_TOKEN="m",
    )
    assert result.returncode == 0, result.stderr


def test_env_example_lists_every_setting_the_code_reads():
    read = set()
    for path in (ROOT / "config" / "settings").glob("*.py"):
        text = path.read_text()
        for call in ("env(", "env.bool(", "env.int(", "env.float(", "env.list(", "env.db("):
            for chunk in text.split(call)[1:]:
                if chunk.startswith('"'):
                    read.add(chunk[1:].split('"', 1)[0])
    example = (ROOT / ".env.example").read_text()
    documented = (ROOT / "docs" / "operations" / "settings.md").read_text()
    missing = {name for name in read if f"{name}=" not in example}
    assert not missing, f".env.example lacks {missing}"
    assert not {name for name in read if f"`{name}`" not in documented}


def test_env_example_copied_to_env_works_as_it_stands(tmp_path):
    """`cp .env.example .env` must give a working configuration: django-environ keeps inline
    comments in values, and an empty value overrides a default."""
    loaded: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert "#" not in value and value == value.strip(), line
            assert value, f"{key} is empty: comment it out so the default applies"
            loaded[key] = value
    result = run_check("config.settings.local", **loaded)
    assert result.returncode == 0, result.stderr


def test_sentry_switches_on_with_its_dsn():
    result = run_check("config.settings.local", SENTRY_DSN="https://public@o0.ingest.sentry.io/0")
    assert result.returncode == 0, result.stderr
