"""The quick subset of ``make chaos``, in ``make test``: every scenario at small sizes on its
own PostgreSQL and Redis (``scripts/with-services.sh`` again, so restarting them cannot touch
the suite's), the Procfile stack over HTTP, and the same targets: nothing lost, nothing
duplicated, no wrong final state, no callback lost or duplicated. In two groups, each its own
stack and services, so two test processes run them side by side (most of a scenario is waiting:
for a server to come back, a lease to end, a stall to be flagged)."""

import json
import subprocess
import sys

import pytest

from bench.chaos import SCENARIOS
from devtools.servers import ROOT

pytestmark = [pytest.mark.system, pytest.mark.long]

GROUPS = {
    "restarts": ["worker_kill", "redis", "redis_flaps", "postgres"],
    "faults": ["faults", "gunicorn", "callbacks", "host_kill"],
}


def test_the_groups_hold_every_scenario_once():
    together = [name for group in GROUPS.values() for name in group]
    assert sorted(together) == sorted(SCENARIOS)


@pytest.mark.parametrize("group", list(GROUPS))
def test_the_quick_chaos_run_meets_every_target(group, tmp_path, capsys):
    outcomes = tmp_path / "outcomes.json"
    run = subprocess.run(
        [
            str(ROOT / "scripts" / "with-services.sh"),
            sys.executable,
            "-m",
            "bench.chaos",
            "--quick",
            "--only",
            *GROUPS[group],
            "--out",
            str(tmp_path / "quick.md"),
            "--json",
            str(outcomes),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    with capsys.disabled():
        print("\n" + (tmp_path / "quick.md").read_text() if outcomes.exists() else run.stderr)
    assert outcomes.exists(), run.stderr[-3000:]
    results = json.loads(outcomes.read_text())
    assert [r["scenario"] for r in results] == GROUPS[group]
    for r in results:
        assert r["sent"] > 0, r
        assert (r["lost"], r["duplicated"], r["wrong"]) == (0, 0, 0), r
        assert not r["callbacks_lost"] and not r["callbacks_duplicated"], r
    assert run.returncode == 0, run.stderr[-3000:]
