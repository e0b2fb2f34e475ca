"""The settings reference, written from the code: ``.env.example`` and the tables of
``docs/operations/settings.md``.

* Every environment variable comes from its declaration in ``config/env.py``: group, type,
  default in each settings module, meaning.
* Every tenant setting comes from the ``Tenant`` model's fields (default, range, choices,
  help text) — each field is one, except :data:`TENANT_IDENTITY` — and whether the API may
  change it from ``operations.services.TENANT_FIELDS``.

``python -m config.reference --write`` rewrites both files (the page between its two
``generated`` markers only); ``--check`` lists the stale ones and exits 1. It loads the
development settings, which need no service and no secret, only to reach the models: what it
writes never depends on this process's environment. ``tests/test_settings.py`` fails when
either file differs from what this renders.
"""

from __future__ import annotations

import argparse
import os
import posixpath
import re
import sys
import textwrap
from typing import Any

from config.env import BASE_DIR, GROUPS, NOT_READ, REQUIRED, Derived, Group, Setting

ENV_EXAMPLE = BASE_DIR / ".env.example"
SETTINGS_PAGE = BASE_DIR / "docs" / "operations" / "settings.md"
PAGE_DIR = "operations"  # the page's folder under docs/, for relative links
COMMAND = ".venv/bin/python -m config.reference --write"
BEGIN = "<!-- generated from {source}: " + COMMAND + " -->"
END = "<!-- end of generated -->"
ENV_SOURCE = "config/env.py"
TENANT_SOURCE = "tenants/models.py"

# Tenant fields that say who the tenant is, not how it is served: every other field of the
# model is a setting, and appears in the table as soon as it exists.
TENANT_IDENTITY = ("id", "slug", "name", "active", "created_at")
SHOWN_MODULES = ("production", "local", "test")
WIDTH = 99


# --- values -------------------------------------------------------------------------------------


def _plain(value: Any) -> str:
    """A value as it is written in the environment; paths inside the project relative to it."""
    text = ",".join(value) if isinstance(value, list) else str(value)
    return text.replace(f"{BASE_DIR}/", "")


def _md(value: Any) -> str:
    if value is REQUIRED:
        return "**required**"
    if isinstance(value, Derived):
        return value.what
    text = _plain(value)
    return f"`{text}`" if text else "empty"


def _by_module(s: Setting, shown=SHOWN_MODULES) -> list[tuple[list[str], Any]]:
    """The modules that read ``s``, grouped by the default they give it, production's first.

    ``test`` only where it declares its own default: what the suite fixes (its secrets, the
    sandbox) it sets in ``config.settings.test`` without reading the environment."""
    groups: list[tuple[list[str], Any]] = []
    for module in shown:
        value = s.default_in(module)
        if value is NOT_READ or (module == "test" and not s.overrides("test")):
            continue
        for modules, seen in groups:
            if seen == value and type(seen) is type(value):
                modules.append(module)
                break
        else:
            groups.append(([module], value))
    return groups


def default_markdown(s: Setting) -> str:
    """The Default cell: one value, or production's and where the others differ."""
    if s.read_by:
        return _md(s.default) if s.default is not NOT_READ else "none"
    groups = _by_module(s)
    first, value = groups[0]
    text = _md(value)
    if len(groups) == 1 and first == ["production"]:
        return f"{text} (production only)"
    rest = [f"{_and(modules)}: {_md(v)}" for modules, v in groups[1:]]
    return "; ".join([text, *rest])


def _line_value(s: Setting) -> str:
    """The value shown after ``NAME=`` in ``.env.example``: production's default."""
    value = s.default if s.read_by else s.default_in("production")
    if value is REQUIRED:
        return s.example
    if isinstance(value, Derived) or value is NOT_READ:
        return ""
    return _plain(value)


def _default_note(s: Setting) -> str:
    """What the ``NAME=value`` line of ``.env.example`` cannot say by itself, for the modules
    an operator runs (production, local)."""
    shown = ("production", "local")
    groups = [([], s.default)] if s.read_by else _by_module(s, shown)
    if len(groups) == 1:
        modules, value = groups[0]
        if isinstance(value, Derived):
            return f"Default: {_unmark(value.what)}."
        if value is REQUIRED:
            return "Required."
        return "Production only." if 0 < len(modules) < len(shown) else ""
    parts = []
    for modules, value in groups:
        if value is REQUIRED:
            text = "required"
        elif isinstance(value, Derived):
            text = f"default {_unmark(value.what)}"
        else:
            text = f"default {_plain(value) or 'empty'}"
        parts.append(f"{_and(modules).capitalize()}: {text}.")
    return " ".join(parts)


def _and(words: list[str]) -> str:
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _unmark(text: str) -> str:
    """Markdown's backticks and links left out, for a comment in ``.env.example``."""
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    return text.replace("`", "")


# --- .env.example ---------------------------------------------------------------------------


ENV_HEADER = """\
Waypost's environment variables, written from config/env.py by `python -m config.reference
--write` (change them there, not here). Copy this file to .env (never commit that) or set real
environment variables, which win over the file; every process of the stack reads the same file.
Each variable is shown commented out with its default in production: uncomment what you change.
Production refuses to start without those marked required. Comments stay on their own lines:
django-environ keeps an inline comment in the value. Every variable explained, with the tenant
settings: docs/operations/settings.md."""


def _comment(text: str) -> list[str]:
    lines = textwrap.wrap(_unmark(text), WIDTH - 2, break_on_hyphens=False)
    return [f"# {line}" for line in lines]


def env_example() -> str:
    lines = [*_comment(ENV_HEADER)]
    for group in GROUPS:
        lines += ["", "", f"# === {group.title} ===", *_comment(group.intro)]
        for s in group.settings:
            doc = " ".join(filter(None, [s.doc, _default_note(s)]))
            assignment = s.example if s.is_pattern else f"{s.name}={_line_value(s)}"
            lines += ["", *_comment(doc), f"# {assignment}"]
    return "\n".join(lines) + "\n"


# --- the documentation page -----------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _see(group: Group) -> str:
    if group.see is None:
        return ""
    title, path = group.see
    return f" See [{title}]({posixpath.relpath(path, PAGE_DIR)})."


def _meaning(s: Setting) -> str:
    read_by = f" Read by {s.read_by}." if s.read_by else ""
    return _cell(s.doc + read_by)


def settings_markdown() -> str:
    """One section per group: its intro, then a table of its variables."""
    sections = []
    for group in GROUPS:
        rows = [
            f"| `{s.name}` | {s.cast.__name__} | {_cell(default_markdown(s))} | {_meaning(s)} |"
            for s in group.settings
        ]
        sections.append(
            "\n".join(
                [
                    f"## {group.title}",
                    "",
                    group.intro + _see(group),
                    "",
                    "| Variable | Type | Default | Meaning |",
                    "|---|---|---|---|",
                    *rows,
                ]
            )
        )
    return "\n\n".join(sections)


def tenant_fields() -> list:
    """The ``Tenant`` fields that are settings, in the model's order."""
    from tenants.models import Tenant

    return [f for f in Tenant._meta.concrete_fields if f.name not in TENANT_IDENTITY]


def _tenant_value(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value != "" else "empty"


def _tenant_meaning(field) -> str:
    from django.core.validators import MaxValueValidator, MinValueValidator

    parts = [str(field.help_text)] if field.help_text else []
    parts += [f"`{value}`: {label}." for value, label in field.choices or ()]
    # The model's own validators only (``_validators``): ``validators`` adds the database
    # column's range, which differs between PostgreSQL and SQLite.
    low = [v.limit_value for v in field._validators if isinstance(v, MinValueValidator)]
    high = [v.limit_value for v in field._validators if isinstance(v, MaxValueValidator)]
    if low and high:
        parts.append(f"{max(low)} to {min(high)}.")
    elif low:
        parts.append(f"At least {max(low)}.")
    return _cell(" ".join(parts))


def tenant_markdown() -> str:
    """One row per tenant setting: its default, who changes it, what it does."""
    from operations.services import TENANT_FIELDS

    rows = [
        f"| `{f.name}` | {_tenant_value(f.default)} | "
        f"{'API, admin' if f.name in TENANT_FIELDS else 'admin'} | {_tenant_meaning(f)} |"
        for f in tenant_fields()
    ]
    return "\n".join(["| Field | Default | Changed by | Meaning |", "|---|---|---|---|", *rows])


#: source named in the page's markers → its renderer
BLOCKS = {ENV_SOURCE: settings_markdown, TENANT_SOURCE: tenant_markdown}


def _block(source: str, body: str) -> str:
    return f"{BEGIN.format(source=source)}\n\n{body.strip()}\n\n{END}"


def settings_page(text: str) -> str:
    """``text`` (the page) with each generated block rewritten."""
    for source, render in BLOCKS.items():
        pattern = re.escape(BEGIN.format(source=source)) + r".*?" + re.escape(END)
        match = re.search(pattern, text, re.S)
        if match is None:
            raise ValueError(f"{SETTINGS_PAGE} has no block generated from {source}")
        text = text[: match.start()] + _block(source, render()) + text[match.end() :]
    return text


# --- the command -----------------------------------------------------------------------------


def rendered() -> dict:
    """Each file written from the code → what it must hold."""
    return {
        ENV_EXAMPLE: env_example(),
        SETTINGS_PAGE: settings_page(SETTINGS_PAGE.read_text()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m config.reference",
        description="Write .env.example and the settings page's tables from the code.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="rewrite the files that differ")
    action.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)

    # Only to reach the models: the development settings need no service and no secret.
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    import django

    django.setup()

    files = rendered()
    stale = [path for path, text in files.items() if path.read_text() != text]
    for path in stale:
        name = path.relative_to(BASE_DIR)
        if args.write:
            path.write_text(files[path])
            print(f"wrote {name}")
        else:
            print(f"{name} is stale: run {COMMAND}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
