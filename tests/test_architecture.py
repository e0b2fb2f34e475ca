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
PRODUCT += ["media", "campaigns", "webhooks", "operations", "devtools"]
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


PRODUCT = [
    "config", "core", "tenants", "callbacks", "templates_registry", "media", "messaging",
    "campaigns", "webhooks", "operations", "whatsapp",
]  # fmt: skip


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_module_of_the_product_is_part_of_an_import_cycle():
    """Imports inside functions count too (grimp, import-linter's graph): a cycle hidden in a
    function is still two modules that cannot be read, or changed, one without the other."""
    import grimp

    graph = grimp.build_graph(*PRODUCT)
    modules = {m for m in graph.modules if ".migrations" not in m}
    edges = {m: graph.find_modules_directly_imported_by(m) & modules for m in modules}
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]  # the check can fail
    assert _cycles(edges) == []
