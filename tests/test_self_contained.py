"""The repository stands on its own: no tracked file refers to files beside it, and Meta's
example payloads the tests use are the project's own fixtures, each naming its Meta page."""

import subprocess

import pytest

from devtools.servers import ROOT

from .fixtures import meta

CHECK = ROOT / "scripts" / "check-self-contained.sh"


def run_check(repo) -> subprocess.CompletedProcess:
    return subprocess.run([CHECK, str(repo)], capture_output=True, text=True, check=False)


def test_this_repository_passes_the_check():
    result = run_check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "line",
    [
        "facts: ../" + "sha" + "red/meta-cloud-" + "api.md §4",
        "see " + "sha" + "red/STYLE.md",
        "# from perf-" + "notes.md",
    ],
)
def test_the_check_fails_on_a_reference_outside_the_repository(tmp_path, line):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "clean.py").write_text("x = 1  # a shared_task, shared by workers\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "clean.py"], check=True)
    assert run_check(tmp_path).returncode == 0
    (tmp_path / "notes.md").write_text(line + "\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "notes.md"], check=True)
    result = run_check(tmp_path)
    assert result.returncode == 1 and "notes.md:1:" in result.stderr


@pytest.mark.parametrize("name", meta.names())
def test_every_meta_fixture_names_its_documentation_page(name):
    assert meta.source(name).startswith("https://developers.facebook.com/"), name
    assert meta.payload(name)
