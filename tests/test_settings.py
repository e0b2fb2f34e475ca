"""Configuration: every variable declared once (config/env.py), and everything written from the
declarations — .env.example, the settings page — is what they say now; embedded defaults with
no environment; production refuses to start without its secrets."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import reference
from config.env import NOT_READ, REQUIRED, SETTINGS, Derived, SettingsEnv

ROOT = Path(__file__).resolve().parent.parent
CLEAN_ENV = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
PRODUCTION = {
    "SECRET_KEY": "x" * 50,
    "DATABASE_URL": "postgres://u@127.0.0.1:1/db",
    "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "WHATSAPP_APP_SECRET": "s",
    "WHATSAPP_VERIFY_TOKEN": "t",
    "WAYPOST_METRICS_TOKEN": "m",
}
# The packages that make up the product (not the sandbox, the developer tools or the tests).
PRODUCT = ("config", "core", "tenants", "callbacks", "templates_registry", "messaging")
PRODUCT += ("webhooks", "operations", "whatsapp")
# Variables the code reads that are not settings.
NOT_SETTINGS = {
    "PYTEST_XDIST_WORKER": "set by pytest-xdist for each of its processes",
    "WAYPOST_RATE_LIMITER": "an old name: core.checks refuses it (E004), naming the new one",
}
SETTINGS_MODULES = ("base", "local", "production", "test")


def run_check(settings_module, **env):
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=CLEAN_ENV | {"DJANGO_SETTINGS_MODULE": settings_module} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- one declaration per variable -----------------------------------------------------------------


def _settings_reads(path: Path) -> set[str]:
    """The names a settings module reads: ``env("X")``, ``env.db("X")`` and the like — and,
    where it calls a function of ``base`` with its ``env`` (``database(env)``), what that
    function reads with it."""
    tree = ast.parse(path.read_text())
    names = _env_reads(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and [getattr(a, "id", None) for a in node.args] == ["env"]
        ):
            names |= _base_readers().get(node.func.id, set())
    return names


def _env_reads(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        target = func.value if isinstance(func, ast.Attribute) else func
        first = node.args[0]
        if (
            isinstance(target, ast.Name)
            and target.id == "env"
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
        ):
            names.add(first.value)
    return names


def _base_readers() -> dict[str, set[str]]:
    """``base``'s functions that take ``env`` first, and what each reads with it: its own
    ``env(...)`` calls, the variable names its parameters default to (``var="DATABASE_URL"``)
    or that it passes to another such function, and what those read."""
    tree = ast.parse((ROOT / "config" / "settings" / "base.py").read_text())
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.args.args and node.args.args[0].arg == "env"
    }
    own = {}
    for name, node in functions.items():
        defaults = {d.value for d in node.args.defaults if isinstance(d, ast.Constant)}
        own[name] = _env_reads(node) | {d for d in defaults if isinstance(d, str) and d.isupper()}
    readers = {}
    for name, node in functions.items():
        names = set(own[name])
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) in functions:
                names |= own[call.func.id]
                names |= {a.value for a in call.args if isinstance(a, ast.Constant)}
        readers[name] = names
    return readers


def _environ_reads(path: Path) -> set[str]:
    """The names code reads from ``os.environ`` directly (``get``, ``[...]``, ``in``,
    ``getenv``, ``setdefault``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        key = None
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "os.getenv", "os.environ.setdefault", "environ.get"):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        elif isinstance(node, ast.Compare) and any(
            ast.unparse(c) == "os.environ" for c in node.comparators
        ):
            key = node.left
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.add(key.value)
    return names


def _product_files():
    for package in PRODUCT:
        yield from (ROOT / package).rglob("*.py")


def test_every_variable_the_code_reads_is_declared_once():
    settings_files = {m: ROOT / "config" / "settings" / f"{m}.py" for m in SETTINGS_MODULES}
    for module, path in settings_files.items():
        for name in _settings_reads(path):
            assert name in SETTINGS and not SETTINGS[name].read_by, (
                f"config/settings/{module}.py reads {name}: declare it in config/env.py"
            )
            assert SETTINGS[name].default_in(module) is not NOT_READ, (module, name)
    undeclared = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _product_files()
        for name in _environ_reads(path)
        if name not in SETTINGS and name not in NOT_SETTINGS
    }
    assert not undeclared, f"declare these in config/env.py: {sorted(undeclared)}"
    for procfile in ("Procfile", "Procfile.sandbox"):
        for name, default in re.findall(r"\$\{(\w+):-([^}]*)\}", (ROOT / procfile).read_text()):
            s = SETTINGS.get(name)
            assert s is not None and procfile in s.read_by.split(", "), (procfile, name)
            assert reference._plain(s.default) == default, (procfile, name, default)


def test_each_settings_module_reads_again_every_variable_it_gives_its_own_default():
    reads = {m: _settings_reads(ROOT / "config" / "settings" / f"{m}.py") for m in SETTINGS_MODULES}
    django_settings = [s for s in SETTINGS.values() if not s.read_by]
    assert {s.name for s in django_settings if s.default is not NOT_READ} <= reads["base"]
    for module in ("local", "production", "test"):
        own = {s.name for s in django_settings if s.overrides(module)}
        required = {s.name for s in django_settings if s.default_in(module) is REQUIRED}
        assert own - required <= reads[module], f"config/settings/{module}.py"
        if required:
            source = (ROOT / "config" / "settings" / f"{module}.py").read_text()
            assert "env.missing_required()" in source, f"config/settings/{module}.py"
    assert {s.name for s in django_settings} <= set().union(*reads.values()), "never read"


def test_the_sandbox_variables_declared_are_the_sandbox_s():
    from sandbox.config import SandboxConfig

    fields = {f"SANDBOX_{name.upper()}" for name in SandboxConfig.__dataclass_fields__}
    declared = {n for n, s in SETTINGS.items() if s.read_by.startswith("the sandbox")}
    assert declared and declared <= fields


def test_the_settings_reader_refuses_what_would_let_the_list_drift(monkeypatch):
    env = SettingsEnv("local")
    with pytest.raises(ImproperlyConfigured, match=r"config/env\.py does not declare"):
        env("WAYPOST_SOMETHING_NEW")
    with pytest.raises(ImproperlyConfigured, match="does not declare as a setting"):
        env("WORKER_CONCURRENCY")  # read by the Procfile, not by the settings
    with pytest.raises(ImproperlyConfigured, match="declares no default for it there"):
        env("SECURE_SSL_REDIRECT")  # production's only
    with pytest.raises(ImproperlyConfigured, match=r"its default is declared in config/env\.py"):
        env("WAYPOST_BATCH_SIZE", default=10)
    with pytest.raises(ImproperlyConfigured, match="derived from other settings"):
        env("REDIS_URL")
    with pytest.raises(ImproperlyConfigured, match="declares bool"):
        env.int("DEBUG")

    monkeypatch.delenv("WAYPOST_BATCH_SIZE", raising=False)
    assert env("WAYPOST_BATCH_SIZE") == 100
    monkeypatch.setenv("WAYPOST_BATCH_SIZE", "7")
    assert env("WAYPOST_BATCH_SIZE") == 7
    monkeypatch.delenv("DEBUG", raising=False)
    assert env("DEBUG") is True and SettingsEnv("production")("DEBUG") is False
    # django-environ's proxy: a value `$NAME` is NAME's value, whatever that name is.
    monkeypatch.setenv("SECRET_KEY", "$SOME_VAULT_VARIABLE")
    monkeypatch.setenv("SOME_VAULT_VARIABLE", "from-the-vault")
    assert env("SECRET_KEY") == "from-the-vault"


def test_production_names_every_variable_it_requires_in_declaration_order(monkeypatch):
    required = [n for n, s in SETTINGS.items() if s.default_in("production") is REQUIRED]
    assert required == [
        "SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    ]
    for name in required:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SECRET_KEY", "k")
    monkeypatch.setenv("CELERY_BROKER_URL", "")  # set but empty: missing
    assert SettingsEnv("production").missing_required() == [
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "WHATSAPP_APP_SECRET",
        "WHATSAPP_VERIFY_TOKEN",
    ]


# --- what is written from the declarations ------------------------------------------------------


@pytest.mark.parametrize(
    "path", [reference.ENV_EXAMPLE, reference.SETTINGS_PAGE], ids=lambda path: path.name
)
def test_the_files_written_from_the_code_are_what_it_says_now(path):
    assert path.read_text() == reference.rendered()[path], (
        f"{path.relative_to(ROOT)} differs from config/env.py or tenants/models.py: "
        f"run `{reference.COMMAND}`"
    )


def test_the_settings_page_has_every_variable_and_every_tenant_setting():
    page = reference.SETTINGS_PAGE.read_text()
    assert all(f"| `{name}` |" in page for name in SETTINGS)
    fields = reference.tenant_fields()
    assert {f.name for f in fields} >= {"max_attempts", "stall_sent_seconds", "param_policy"}
    for field in fields:
        assert field.help_text, f"Tenant.{field.name} needs a help_text: the page shows it"
        assert f"| `{field.name}` |" in page


def test_a_default_shown_is_how_the_docs_and_env_example_say_it():
    assert reference.default_markdown(SETTINGS["DEBUG"]) == "`False`; local: `True`"
    assert reference.default_markdown(SETTINGS["DATABASE_URL"]) == (
        "**required**; local: `sqlite:///var/waypost.sqlite3`"
    )
    assert reference.default_markdown(SETTINGS["SECURE_HSTS_SECONDS"]) == (
        "`31536000` (production only)"
    )
    assert reference.default_markdown(SETTINGS["SANDBOX_URL"]) == (
        "`http://127.0.0.1:8025`; test: `http://127.0.0.1:9`"
    )
    assert isinstance(SETTINGS["REDIS_URL"].default, Derived)
    example = reference.env_example()
    assert "\n# DATABASE_URL=postgres://waypost:pw@127.0.0.1:5432/waypost\n" in example
    comments = " ".join(line[2:] for line in example.splitlines() if line.startswith("# "))
    assert "Production: required. Local: default sqlite:///var/waypost.sqlite3." in comments
    assert "\n# WORKER_CONCURRENCY=2\n" in example
    assert str(ROOT) not in example


# --- the settings modules, started ---------------------------------------------------------------


@pytest.mark.system
def test_local_settings_run_with_no_environment_at_all():
    result = run_check("config.settings.local")
    assert result.returncode == 0, result.stderr


@pytest.mark.system
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


@pytest.mark.system
def test_production_refuses_to_start_without_secret_key():
    result = run_check("config.settings.production")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.system
def test_production_starts_with_its_environment():
    result = run_check("config.settings.production", **PRODUCTION)
    assert result.returncode == 0, result.stderr


def _production_settings(**env) -> dict:
    """Every production setting, with ``env`` set."""
    code = (
        "import json, config; from django.conf import settings as s; "
        "print(json.dumps({n: getattr(s, n) for n in dir(s) if n.isupper()}, default=repr))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=CLEAN_ENV | {"DJANGO_SETTINGS_MODULE": "config.settings.production"} | env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.system
def test_uncommenting_a_default_of_env_example_changes_nothing(tmp_path):
    """``cp .env.example .env`` and uncommenting any line with a value must give the setting
    that line shows: every default is written as the code reads it (and with no inline
    comment, which django-environ would keep in the value)."""
    uncommented = {}
    for line in reference.ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=(.+)", line)
        if match and match[1] in SETTINGS and not SETTINGS[match[1]].read_by:
            assert "#" not in match[2] and match[2] == match[2].strip(), line
            uncommented[match[1]] = match[2]
    assert {"WAYPOST_BATCH_SIZE", "CONN_HEALTH_CHECKS", "SECURE_HSTS_SECONDS"} <= set(uncommented)
    metrics = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}

    result = run_check("config.settings.production", **uncommented | PRODUCTION | metrics)
    assert result.returncode == 0, result.stderr
    # Paths are shown relative to the project (the defaults are absolute): not compared.
    paths = {"STATIC_ROOT"}
    before = _production_settings(**PRODUCTION | metrics)
    after = _production_settings(**uncommented | PRODUCTION | metrics)
    assert {n: v for n, v in after.items() if n not in paths} == {
        n: v for n, v in before.items() if n not in paths
    }


@pytest.mark.system
def test_sentry_switches_on_with_its_dsn():
    result = run_check("config.settings.local", SENTRY_DSN="https://public@o0.ingest.sentry.io/0")
    assert result.returncode == 0, result.stderr
