"""The layout's rules, enforced: the import directions (import-linter's contracts in
pyproject.toml) and that no module outside the provider package knows a provider's wire format.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.servers import ROOT

# Packages that are the product (the sandbox is a stand-in for the providers: it must speak
# their formats, written independently; the tests and docs quote them).
PRODUCT = ["config", "core", "tenants", "callbacks", "templates_registry", "messaging"]
PRODUCT += ["webhooks", "operations", "devtools"]
# Strings that only appear in code that reads or writes a provider's wire format.
WIRE_MARKERS = [
    "X-Hub-Signature-256",
    "X-360dialog-Signature",
    "D360-API-KEY",
    "messaging_product",
    "recipient_type",
    "hub.verify_token",
    "hub.challenge",
    "message_template_status_update",
    "error_data",
    "developerMessage",
]


def test_the_import_contracts_hold():
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.returncode == 0 and "BROKEN" not in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize("package", PRODUCT)
def test_no_wire_format_outside_the_provider_package(package):
    found = [
        f"{path.relative_to(ROOT)}: {marker}"
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
        for marker in WIRE_MARKERS
        if marker in path.read_text()
    ]
    assert found == []
