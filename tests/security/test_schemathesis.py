"""Schema-driven fuzzing with schemathesis, over HTTP against the live server: thousands of
generated requests (valid and invalid, from ``/api/schema/``) with a valid tenant key. Every
answer must be a non-5xx that conforms to the schema (status code, content type, body).

The schema states the constraints the API enforces (``core.openapi``,
``templates_registry.formats``), so generated bodies reach the template lookup and the
parameter rules rather than stopping at the first field; what no schema can state — a message
names an approved template of the tenant and fits its placeholders; a template has one body —
is still refused, with its own code.

``WAYPOST_FUZZ_EXAMPLES`` sets the fuzzing phase's examples per operation: 60 in ``make test``
(about 2,700 cases with the coverage phase's, in three parts of the operations that test
processes run side by side); ``make chaos`` runs this test with 420
(over 5,000 cases, ~9 min) and publishes the count in docs/RELIABILITY.md. The run's own count
is checked, so a schema that shrinks cannot make the test pass on a handful of cases.
``WAYPOST_FUZZ_REPORT``: also add the counts and summaries of every part there."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_tenant_client

from ..factories import MessageTemplateFactory

pytestmark = [pytest.mark.system, pytest.mark.long]
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


# The operations in three parts, each a test of its own, so test processes fuzz side by side.
PARTS = {
    "campaigns and media": ["--include-path-regex", "^/api/v1/(campaigns|media)"],
    "messages": ["--include-path-regex", "^/api/v1/messages"],
    "the rest": ["--exclude-path-regex", "^/api/v1/(campaigns|media|messages)"],
}


@pytest.fixture
def provider_on_the_sandbox(sandbox, settings):
    """Template sync reaches a provider that answers; the tests after this one in its process
    get a provider of their own settings again."""
    from whatsapp import get_provider

    settings.SANDBOX_URL = sandbox.url
    get_provider.cache_clear()
    yield
    get_provider.cache_clear()


@pytest.mark.parametrize("part", list(PARTS))
def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    part, live_server, transactional_db, provider_on_the_sandbox, tmp_path, capsys
):
    fuzzer = make_tenant_client(slug="fuzz", api_requests_per_second=0)
    MessageTemplateFactory(tenant=fuzzer.tenant, name="order_update")
    examples = int(os.environ.get("WAYPOST_FUZZ_EXAMPLES", "60"))
    report = tmp_path / "report.ndjson"
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{live_server.url}/api/schema/",
            "--header",
            f"Authorization: Bearer {fuzzer.raw_key}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(examples),
            "--seed",
            "20261123",
            "--generation-database",
            "none",  # the same cases on every machine: none replayed from an earlier run
            "--no-shrink",
            "--continue-on-failure",
            "--request-timeout",
            "30",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
            *PARTS[part],
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        env=os.environ | {"NO_COLOR": "1"},
    )
    cases = count_cases(report)
    with capsys.disabled():
        print(f"\n[schemathesis] {cases:,} cases; exit {run.returncode}\n" + run.stdout[-1500:])
    if os.environ.get("WAYPOST_FUZZ_REPORT"):  # the parts add up in one report
        out = Path(os.environ["WAYPOST_FUZZ_REPORT"])
        so_far = json.loads(out.read_text()) if out.exists() else {"cases": 0, "exit": 0}
        out.write_text(
            json.dumps(
                {
                    "cases": so_far["cases"] + cases,
                    "exit": so_far["exit"] or run.returncode,
                    "summary": (so_far.get("summary", "") + f"\n[{part}]\n" + summary(run.stdout)),
                }
            )
        )
    assert run.returncode == 0, run.stdout[:8000]
    assert cases >= 5 * examples, cases  # per part: a schema that shrank would fall below


def count_cases(report: Path) -> int:
    """Test cases the run executed, from its NDJSON event stream."""
    total = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for name, data in event.items():
            if name == "ScenarioFinished":
                total += sum(len(c) for c in [data.get("recorder", {}).get("cases", {})])
    return total


def summary(output: str) -> str:
    """The CLI's closing summary (phases, failures, the case count)."""
    return output[output.rfind("SUMMARY") :].strip() if "SUMMARY" in output else output[-2000:]
