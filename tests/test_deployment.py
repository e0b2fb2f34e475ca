"""One settings truth for every process (issue 18 §1, §2): the default settings module is decided
in one place and is production; every entry point — manage.py, gunicorn's config.wsgi, the
Celery worker and beat, the callback deliverer — runs the deployment's checks and refuses an
inconsistent combination with a message naming what to set; coordination state follows the
broker; check --deploy passes; the production stack has no sandbox in it. (The webhook routes'
security headers and host check: tests/webhooks/test_front_door.py.)"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

import config
from core import checks
from core.startup import masked_url, startup_line
from devtools.stack import procfile_entries

# Most of these start the project's entry points in fresh processes.
pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parent.parent
CLEAN = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
# A complete production environment (nothing is reached: the checks need no connection).
PRODUCTION = {
    "SECRET_KEY": "p" * 20 + "roduction-key-0123456789-abcdefghijklmnopqrstuvw",
    "DATABASE_URL": "postgres://u@127.0.0.1:1/db",
    "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    "WHATSAPP_APP_SECRET": "s",
    "WHATSAPP_VERIFY_TOKEN": "t",
    "WAYPOST_METRICS_TOKEN": "m",
}


def run(args, env, timeout=60):
    return subprocess.run(
        args, cwd=ROOT, env=CLEAN | env, capture_output=True, text=True, timeout=timeout
    )


def python(code: str, **env):
    return run([sys.executable, "-c", code], env)


# --- the default, decided once ----------------------------------------------------------------


def test_the_default_settings_module_is_set_in_one_place_only():
    setters = [
        path.relative_to(ROOT).as_posix()
        for path in ROOT.glob("**/*.py")
        if ".venv" not in path.parts
        and re.search(r"setdefault\(\s*\"DJANGO_SETTINGS_MODULE\"", path.read_text())
    ]
    assert setters == ["config/__init__.py"]
    assert config.DEFAULT_SETTINGS_MODULE == "config.settings.production"


@pytest.mark.parametrize(
    "entry_point",
    [
        "import config.wsgi",
        "import config.celery_app",
        "import manage",
    ],
)
def test_every_entry_point_defaults_to_production(entry_point):
    code = (
        f"{entry_point}; from django.conf import settings; settings.INSTALLED_APPS; "
        "import os; print(os.environ['DJANGO_SETTINGS_MODULE'])"
    )
    # Nothing set: production, which refuses to start and names every variable to set.
    result = python(code)
    assert result.returncode != 0
    assert "config.settings.production (the default settings) needs SECRET_KEY" in result.stderr
    assert "DJANGO_SETTINGS_MODULE=config.settings.local" in result.stderr
    result = python(code, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "config.settings.production"


def test_the_settings_module_may_come_from_the_env_file(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nSECRET_KEY=x\nexport DJANGO_SETTINGS_MODULE='config.settings.local'\n"
    )
    monkeypatch.setattr(config, "ENV_FILE", env_file)
    assert config._settings_module_from_env_file() == "config.settings.local"
    env_file.write_text("SECRET_KEY=x\n")
    assert config._settings_module_from_env_file() is None
    monkeypatch.setattr(config, "ENV_FILE", tmp_path / "missing")
    assert config._settings_module_from_env_file() is None


def test_the_web_entry_point_logs_its_settings_and_coordination_first():
    code = (
        "import logging, sys; logging.basicConfig(stream=sys.stdout, level=logging.INFO); "
        "import config.wsgi"
    )
    result = python(code, **PRODUCTION, LOG_LEVEL="INFO")
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"waypost web \(pid \d+\): settings config\.settings\.production \(production\), "
        r"coordination redis \(redis://127\.0\.0\.1:1/0\), broker redis://127\.0\.0\.1:1/0",
        result.stdout + result.stderr,
    ), result.stdout + result.stderr


def test_the_start_line_never_shows_credentials():
    assert masked_url("redis://:s3cret@cache.internal:6380/2") == "redis://cache.internal:6380/2"
    assert masked_url("amqp://user:pw@mq/vhost") == "amqp://mq/vhost"
    assert (
        masked_url("redis://:pw1@h1/0;redis://:pw2@h2:6380/0") == "redis://h1/0;redis://h2:6380/0"
    )
    assert masked_url("sentinel://:pw@h1:26379;sentinel://h2:notaport") == (
        "sentinel://h1:26379;(unparseable URL)"
    )
    with override_settings(
        REDIS_URL="redis://:s3cret@h:1/0", CELERY_BROKER_URL="redis://:s3cret@h:1/0"
    ):
        assert "s3cret" not in startup_line("web")


# --- coordination follows the broker ------------------------------------------------------------


def settings_of(module: str, *names: str, **env) -> list[str]:
    code = (
        "import config; from django.conf import settings; "
        f"print(*[repr(getattr(settings, n)) for n in {names!r}], sep='\\n')"
    )
    result = python(code, DJANGO_SETTINGS_MODULE=module, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_coordination_lives_in_process_memory_only_with_the_in_process_broker():
    assert settings_of("config.settings.local", "WAYPOST_COORDINATION", "REDIS_URL") == [
        "'memory'",
        "''",
    ]
    # The development settings with a real broker (the trap of issue 18): shared, in Redis.
    assert settings_of(
        "config.settings.local",
        "WAYPOST_COORDINATION",
        "REDIS_URL",
        CELERY_BROKER_URL="redis://127.0.0.1:1/3",
    ) == ["'redis'", "'redis://127.0.0.1:1/3'"]
    assert settings_of(
        "config.settings.production", "WAYPOST_COORDINATION", "REDIS_URL", **PRODUCTION
    ) == ["'redis'", "'redis://127.0.0.1:1/0'"]


def ids(found) -> list[str]:
    return sorted(message.id for message in found)


def test_the_checks_refuse_process_memory_beside_a_shared_broker(monkeypatch):
    monkeypatch.delenv("WAYPOST_RATE_LIMITER", raising=False)
    with override_settings(WAYPOST_COORDINATION="memory", CELERY_BROKER_URL="redis://h/0"):
        assert ids(checks.coordination_check()) == ["waypost.E002"]
    with override_settings(WAYPOST_COORDINATION="memory", CELERY_BROKER_URL="amqp://h//"):
        assert ids(checks.coordination_check()) == ["waypost.E002"]
    with override_settings(WAYPOST_COORDINATION="memory", CELERY_BROKER_URL="memory://"):
        assert checks.coordination_check() == []
    with override_settings(
        WAYPOST_COORDINATION="redis", REDIS_URL="", CELERY_BROKER_URL="amqp://h//"
    ):
        assert ids(checks.coordination_check()) == ["waypost.E003"]
    with override_settings(WAYPOST_COORDINATION="local"):
        assert ids(checks.coordination_check()) == ["waypost.E001"]
    # A countdown Redis would redeliver before it is due (a test worker's 4 s visibility).
    redis = {"CELERY_BROKER_URL": "redis://h/0", "WAYPOST_COORDINATION": "redis"}
    with override_settings(**redis, CELERY_BROKER_TRANSPORT_OPTIONS={"visibility_timeout": 4}):
        assert ids(checks.coordination_check()) == ["waypost.E006"]
        with override_settings(WAYPOST_COUNTDOWN_MAX=3.0):
            assert checks.coordination_check() == []
    # The queues: a hash needs at least one lane; a worker consumes all of them or the express.
    with override_settings(WAYPOST_SEND_QUEUES=0):
        assert ids(checks.coordination_check()) == ["waypost.E007"]
    with override_settings(WAYPOST_BULK_QUEUES=0, WORKER_LANES="bulk"):
        assert ids(checks.coordination_check()) == ["waypost.E007", "waypost.E007"]
    # The development settings beside a real broker: a stack on debug settings, refused.
    with override_settings(WAYPOST_DEPLOYMENT="development", CELERY_BROKER_URL="redis://h/0"):
        assert ids(checks.coordination_check()) == ["waypost.E005"]
    with override_settings(
        WAYPOST_DEPLOYMENT="development",
        CELERY_BROKER_URL="memory://",
        WAYPOST_COORDINATION="memory",
    ):
        assert checks.coordination_check() == []  # the embedded demo
    monkeypatch.setenv("WAYPOST_RATE_LIMITER", "redis")
    assert ids(checks.coordination_check()) == ["waypost.E004"]


PRODUCTION_SETTINGS = {
    "WAYPOST_DEPLOYMENT": "production",
    "SECRET_KEY": PRODUCTION["SECRET_KEY"],
    "WHATSAPP_APP_SECRET": "s",
    "WHATSAPP_VERIFY_TOKEN": "t",
    "CELERY_BROKER_URL": "redis://h/0",
    "DEBUG": False,
    "WAYPOST_SANDBOX_PROVIDER": False,
    "WAYPOST_METRICS_TOKEN": "m",
    "WAYPOST_METRICS_ALLOW": [],
    "WAYPOST_CALLBACK_REQUIRE_HTTPS": True,
    "WAYPOST_CALLBACK_ALLOW_PRIVATE": False,
}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        ({"SECRET_KEY": ""}, ["waypost.E010"]),
        (
            {"SECRET_KEY": "insecure-local-development-key-do-not-use-in-production"},
            ["waypost.E010"],
        ),
        ({"WHATSAPP_APP_SECRET": ""}, ["waypost.E011"]),
        ({"CELERY_BROKER_URL": "memory://"}, ["waypost.E012"]),
        ({"DEBUG": True}, ["waypost.E013"]),
        ({"WAYPOST_SANDBOX_PROVIDER": True}, ["waypost.E015"]),
        ({"WAYPOST_METRICS_TOKEN": ""}, ["waypost.E016"]),
        ({"WAYPOST_METRICS_TOKEN": "", "WAYPOST_METRICS_ALLOW": ["10.0.0.0/8"]}, []),
        # The old default list is no opt-out: behind a same-host proxy loopback is everyone.
        (
            {"WAYPOST_METRICS_TOKEN": "", "WAYPOST_METRICS_ALLOW": ["127.0.0.1/32"]},
            ["waypost.E016"],
        ),
        ({"WAYPOST_METRICS_TOKEN": "", "WAYPOST_METRICS_ALLOW": ["::1/128"]}, ["waypost.E016"]),
        ({"WAYPOST_METRICS_TOKEN": "", "WAYPOST_METRICS_ALLOW": ["0.0.0.0/0"]}, ["waypost.E016"]),
        ({"WAYPOST_CALLBACK_REQUIRE_HTTPS": False}, ["waypost.W003"]),
        ({"WAYPOST_CALLBACK_ALLOW_PRIVATE": True}, ["waypost.W003"]),
    ],
)
def test_the_production_rules(change, expected, monkeypatch):
    monkeypatch.delenv("WAYPOST_SANDBOX_PROVIDER", raising=False)
    monkeypatch.setattr(checks, "PRODUCTION_FORBIDDEN_APPS", ())  # the suite runs devtools
    with override_settings(**(PRODUCTION_SETTINGS | change)):
        assert ids(checks.production_check()) == expected


def test_production_refuses_developer_apps_and_only_warns_of_an_explicit_sandbox(monkeypatch):
    with override_settings(**PRODUCTION_SETTINGS, INSTALLED_APPS=["core", "devtools"]):
        assert "waypost.E014" in ids(checks.production_check())
    monkeypatch.setenv("WAYPOST_SANDBOX_PROVIDER", "true")
    monkeypatch.setattr(checks, "PRODUCTION_FORBIDDEN_APPS", ())
    with override_settings(**PRODUCTION_SETTINGS | {"WAYPOST_SANDBOX_PROVIDER": True}):
        assert ids(checks.production_check()) == ["waypost.W001"]


def test_production_has_no_developer_tools_and_no_sandbox_provider():
    installed, sandbox, metrics_allow = settings_of(
        "config.settings.production",
        "INSTALLED_APPS",
        "WAYPOST_SANDBOX_PROVIDER",
        "WAYPOST_METRICS_ALLOW",
        **PRODUCTION,
    )
    assert "devtools" not in installed and "sandbox" not in installed
    assert sandbox == "False"
    assert metrics_allow == "[]"  # /metrics: the token, not the caller's address


def test_production_refuses_sqlite():
    result = run(
        [sys.executable, "manage.py", "check"], PRODUCTION | {"DATABASE_URL": "sqlite:////tmp/x"}
    )
    assert result.returncode != 0 and "waypost.E017" in result.stderr, result.stderr


def test_check_deploy_passes_on_the_production_settings():
    result = run([sys.executable, "manage.py", "check", "--deploy"], PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO"],
        ["celery", "-A", "config", "beat", "--loglevel", "INFO"],
        [sys.executable, "manage.py", "deliver_callbacks"],
    ],
    ids=["worker", "beat", "callbacks"],
)
def test_every_process_refuses_to_start_on_an_inconsistent_deployment(command, tmp_path):
    if command[0] == "celery":
        command = [str(Path(sys.executable).parent / "celery"), *command[1:]]
    result = run(
        command,
        PRODUCTION | {"WAYPOST_COORDINATION": "memory", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "waypost.E002" in output and "WAYPOST_COORDINATION" in output, output[-2000:]


# --- the production stack has no sandbox in it -------------------------------------------------


def test_the_production_procfile_runs_production_processes_only():
    production = procfile_entries("Procfile")
    assert list(production) == ["web", "worker", "express", "beat", "callbacks"]
    assert not [c for c in production.values() if "sandbox" in c]
    # The sandbox stack: the same processes, word for word, and the sandbox.
    sandbox = procfile_entries("Procfile.sandbox")
    assert {k: v for k, v in sandbox.items() if k != "sandbox"} == production
    assert "python -m sandbox" in sandbox["sandbox"]
