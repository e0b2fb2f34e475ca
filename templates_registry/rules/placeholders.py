"""Placeholders in template text: ``{{1}}`` (positional) or ``{{first_name}}`` (named)."""

from __future__ import annotations

from collections import Counter

from templates_registry.rules.limits import (
    ADJACENT_PLACEHOLDERS,
    NAMED_NAME,
    PLACEHOLDER,
    POSITIONAL_NAME,
)
from templates_registry.rules.violations import Violation, violation


def placeholders(text: str) -> list[str]:
    """The placeholder names in ``text`` in order of appearance (``"1"``, ``"first_name"``)."""
    return [m.strip() for m in PLACEHOLDER.findall(text or "")]


def check_placeholders(text: str, *, component: str, parameter_format: str) -> list[Violation]:
    found = placeholders(text)
    positional = parameter_format == "POSITIONAL"
    pattern = POSITIONAL_NAME if positional else NAMED_NAME
    kind = "numbered like {{1}}" if positional else "named like {{first_name}}"
    out = [
        violation("placeholder_malformed", component, raw, variant="text", raw=raw, kind=kind)
        for raw in PLACEHOLDER.findall(text or "")
        if raw != raw.strip() or not pattern.match(raw)
    ]
    if out:
        return out
    if ADJACENT_PLACEHOLDERS.search(text or ""):
        out.append(violation("placeholder_adjacent", component))
    if positional:
        numbers = sorted({int(n) for n in found})
        if numbers and numbers != list(range(1, len(numbers) + 1)):
            listed = ", ".join(f"{{{{{n}}}}}" for n in numbers)
            out.append(violation("placeholder_sequence", component, found=listed))
    else:
        out += [
            violation("placeholder_name_duplicate", component, name, name=name, count=count)
            for name, count in Counter(found).items()
            if count > 1
        ]
    return out
