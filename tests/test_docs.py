"""The documentation site cannot drift: it builds strictly, and its tables of rules are the code's.

* ``mkdocs build --strict`` (``mkdocs.yml``) turns every warning into a failure: a link to a page
  or an anchor that does not exist, a page in ``docs/`` left out of the navigation. The first
  test builds the site; the second proves that such a mistake does fail the build (the
  ``validation`` settings that make an omitted page a warning are not MkDocs' defaults).
* The README is read outside the site: its links to files must lead somewhere.
* A table written from code sits in the Markdown between two markers — readable on GitHub as on
  the site — and must equal what the code renders now (:data:`GENERATED`). When a rule changes,
  rewrite the blocks with ``.venv/bin/python -m tests.test_docs --write``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
META_PAGES = "https://developers.facebook.com/documentation/business-messaging/whatsapp/"
BEGIN = "<!-- generated from {source}: .venv/bin/python -m tests.test_docs --write -->"
END = "<!-- end of generated -->"


def build(root: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        # Without Material's notice about its successor, which is not about these docs.
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )


# --- tables written from code ---------------------------------------------------------------


def _meta_sections() -> dict[str, str]:
    """``"5.2"`` → the anchor of ``docs/meta-api.md``'s section 5.2, as MkDocs makes it."""
    sections = {}
    for line in (DOCS / "meta-api.md").read_text().splitlines():
        match = re.match(r"#{2,4} (\d+(?:\.\d+)*)\.? (.+)", line)
        if match:
            sections[match[1]] = slugify(f"{match[1]} {match[2]}".replace("`", ""), "-")
    return sections


def _source(source: str, sections: dict[str, str]) -> str:
    """A rule's source as links: ``§5.2`` to our notes on Meta's API, ``Meta: <path>`` to Meta's
    page."""
    if source.startswith("Meta: "):
        path = source.removeprefix("Meta: ")
        page, _, note = path.partition(" ")
        return f"[Meta: {page}]({META_PAGES}{page}){' ' + note if note else ''}"

    def link(match: re.Match) -> str:
        anchor = sections.get(match[1]) or sections[match[1].split(".")[0]]
        return f"[§{match[1]}](../meta-api.md#{anchor})"

    return re.sub(r"§(\d+(?:\.\d+)?)", link, source)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def template_rules_markdown() -> str:
    """Every template rule (``templates_registry/rules/violations.py``): code, rule, source."""
    from templates_registry.rules.violations import DEFINITION_RULES, SEND_RULES

    sections = _meta_sections()

    def table(rules) -> str:
        rows = [
            f"| `{r.code}` | {_cell(r.summary)} | {_source(r.source, sections)} |" for r in rules
        ]
        return "\n".join(["| Code | Rule | Source |", "|---|---|---|", *rows])

    return (
        "### Definition rules\n\n"
        "A template being created (`POST /api/v1/templates`).\n\n"
        f"{table(DEFINITION_RULES)}\n\n"
        "### Send-time rules\n\n"
        "One message's parameters (`POST /api/v1/messages`, `/batch`, "
        "`/templates/{id}/validate`); where Meta has an error code for it, the source names "
        "the code the rule keeps a message from meeting.\n\n"
        f"{table(SEND_RULES)}\n"
    )


def reconciler_rules_markdown() -> str:
    """The reconciler's rules (``operations.reconciler.rules_markdown``) with every threshold at
    its default: rendered by a process on the development settings whose environment sets no
    ``WAYPOST_*`` variable and no service (the suite's settings, a chaos run, shorten some)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("WAYPOST_")
        and k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    code = (
        "import django; django.setup(); "
        "from operations.reconciler import rules_markdown; print(rules_markdown(), end='')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


#: page → (the code it is written from, its renderer)
GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "api/template-rules.md": (
        "templates_registry/rules/violations.py",
        template_rules_markdown,
    ),
    "concepts/reconciler.md": ("operations/reconciler.py", reconciler_rules_markdown),
}


def _block(source: str, body: str) -> str:
    return f"{BEGIN.format(source=source)}\n\n{body.strip()}\n\n{END}"


def _generated_block(text: str, source: str) -> re.Match | None:
    return re.search(re.escape(BEGIN.format(source=source)) + r".*?" + re.escape(END), text, re.S)


def write() -> None:
    for page, (source, render) in GENERATED.items():
        path = DOCS / page
        text = path.read_text()
        match = _generated_block(text, source)
        if match is None:
            raise SystemExit(f"{page} has no block generated from {source}")
        path.write_text(text[: match.start()] + _block(source, render()) + text[match.end() :])
        print(f"wrote {page}")


# --- tests ---------------------------------------------------------------------------------------


def test_the_documentation_builds_without_a_warning(tmp_path):
    result = build(ROOT, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    assert (tmp_path / "site" / "index.html").exists()


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


@pytest.mark.parametrize(
    "mistake, complaint",
    [
        (lambda docs: _append(docs / "index.md", "\n[Gone](no-such-page.md)\n"), "no-such-page"),
        (lambda docs: _append(docs / "index.md", "\n[Gone](api/index.md#nowhere)\n"), "nowhere"),
        (lambda docs: (docs / "forgotten.md").write_text("# Not in the nav\n"), "forgotten.md"),
    ],
    ids=["broken link", "broken anchor", "page missing from the nav"],
)
def test_a_broken_link_or_a_page_left_out_of_the_nav_fails_the_build(tmp_path, mistake, complaint):
    copy = tmp_path / "repo"
    copy.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copytree(DOCS, copy / "docs")
    mistake(copy / "docs")

    result = build(copy, tmp_path / "site")

    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_the_readme_links_only_to_files_that_exist():
    """The README is read on GitHub, outside the site: its relative links are checked here."""
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if "://" not in t]
    assert local, "the README links into docs/"
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


@pytest.mark.parametrize("page", sorted(GENERATED))
def test_a_table_written_from_code_is_what_the_code_says_now(page):
    source, render = GENERATED[page]
    match = _generated_block((DOCS / page).read_text(), source)
    assert match is not None, f"docs/{page} has no block generated from {source}"
    assert match[0] == _block(source, render()), (
        f"docs/{page} differs from {source}: run `.venv/bin/python -m tests.test_docs --write`"
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_docs --write")
    write()
