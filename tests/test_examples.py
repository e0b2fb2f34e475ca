"""Every example in the README and the documentation runs, as written, against `make demo`.

An example is a fenced ``sh`` block (``bash`` and ``shell`` too) that uses ``$WAYPOST``: it is
written for a reader who ran ``make demo`` and, in a second terminal, ``source var/demo.env``
(``WAYPOST``, the demo's base URL, and ``KEY``, a key of the demo tenant). The test does the
same — one demo on free ports with its ``var/`` in a temporary directory — and runs each example
with bash, in the order a reader meets them (the README, then the documentation site's
navigation), under ``set -euo pipefail`` and with ``curl`` failing on an HTTP error
(``--fail-with-body``): an example that no longer matches the API fails here, naming its file
and line.
"""

from __future__ import annotations

import os
import re
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from devtools.servers import ROOT

from .demo_process import DemoProcess

pytestmark = pytest.mark.system

FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)```+[ \t]*(?P<lang>sh|bash|shell)[ \t]*$")
FENCE_CLOSE = re.compile(r"^[ \t]*```+[ \t]*$")
PRELUDE = """set -euo pipefail
source {env_file}
curl() {{ command curl --fail-with-body -sS "$@"; }}
"""
TIMEOUT = 30  # seconds, per example


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _nav_pages(nav) -> list[str]:
    """The pages of an mkdocs ``nav``, in order."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for entry in nav for page in _nav_pages(entry)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def documents(root: Path = ROOT) -> list[Path]:
    """The README, then the documentation pages in the site's navigation order, then any page
    the navigation leaves out."""
    docs = root / "docs"
    config = root / "mkdocs.yml"
    nav = yaml.safe_load(config.read_text()).get("nav", []) if config.exists() else []
    ordered = [docs / page for page in _nav_pages(nav) if page.endswith(".md")]
    rest = sorted(p for p in docs.rglob("*.md") if p not in ordered) if docs.exists() else []
    readme = [root / "README.md"] if (root / "README.md").exists() else []
    return readme + [p for p in ordered if p.exists()] + rest


def examples_in(path: Path) -> list[Example]:
    found, lines, i = [], path.read_text().splitlines(), 0
    while i < len(lines):
        opened = FENCE_OPEN.match(lines[i])
        i += 1
        if not opened:
            continue
        fence, body = i, []
        while i < len(lines) and not FENCE_CLOSE.match(lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        code = textwrap.dedent("\n".join(body))
        if "$WAYPOST" in code or "${WAYPOST}" in code:
            found.append(Example(path, fence, code))
    return found


def examples() -> list[Example]:
    return [example for path in documents() for example in examples_in(path)]


def run(example: Example, env_file: Path, cwd: Path) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("WAYPOST", "KEY")}
    return subprocess.run(
        ["bash", "-c", PRELUDE.format(env_file=env_file) + example.code],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_the_examples_are_found_in_fenced_sh_blocks_that_use_waypost(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        'Text.\n\n```sh\ncurl "$WAYPOST/api/v1/tenant" -H "Authorization: Bearer $KEY"\n```\n'
        "\n```sh\nmake demo\n```\n\n```python\nprint('$WAYPOST')\n```\n\n"
        '1. In a list:\n\n    ```sh\n    curl "$WAYPOST/api/v1/inbound"\n    ```\n'
    )
    found = examples_in(page)
    assert [(e.line, e.code) for e in found] == [
        (3, 'curl "$WAYPOST/api/v1/tenant" -H "Authorization: Bearer $KEY"'),
        (17, 'curl "$WAYPOST/api/v1/inbound"'),
    ]


def test_the_readme_shows_a_first_request_against_the_demo():
    assert any(e.path.name == "README.md" for e in examples()), (
        "the README shows a first request against the demo (a ```sh block using $WAYPOST)"
    )


def test_every_example_runs_against_the_demo(tmp_path):
    found = examples()
    var_dir = tmp_path / "var"
    var_dir.mkdir()
    # The reader's working directory: a clone, where `var/demo.env` is the demo's.
    reader = tmp_path / "clone"
    reader.mkdir()
    (reader / "var").symlink_to(var_dir)
    demo = DemoProcess(var_dir)
    failures = []
    try:
        demo.wait_ready()
        for example in found:
            try:
                done = run(example, demo.env_file, reader)
            except subprocess.TimeoutExpired:
                failures.append(f"{example.where}: still running after {TIMEOUT} s")
                continue
            if done.returncode != 0:
                failures.append(
                    f"{example.where}: exit {done.returncode}\n"
                    f"{textwrap.indent(example.code, '  $ ')}\n"
                    f"{textwrap.indent((done.stdout + done.stderr)[-2000:], '  > ')}"
                )
    finally:
        demo.stop()
    assert not failures, f"{len(failures)} of {len(found)} examples failed:\n\n" + "\n\n".join(
        failures
    )
