"""Where a template send names Waypost media (pure: no database, no provider).

A media parameter names a file by the provider's ``id``, by a public ``link``, or — Waypost's
own — by ``media_id``, the id of a file uploaded with ``POST /api/v1/media``::

    {"type": "header", "parameters": [
        {"type": "image", "image": {"media_id": "5b0c…-uuid"}}]}

(also ``video`` and ``document``, in a template's header or a carousel card's). A message keeps
that form from the API to its ``payload_built`` event; at submit the provider's id replaces it
(:func:`substituted`), so what leaves is ``{"image": {"id": "<provider media id>"}}``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from whatsapp.media import HEADER_MEDIA

#: The key of a media object that names a Waypost media file.
MEDIA_ID = "media_id"
#: Where the provider's id goes instead.
PROVIDER_ID = "id"


@dataclass(frozen=True)
class Reference:
    """One parameter naming Waypost media: its type (``image``…), the id as given, and its
    path in the components (``[0].parameters[0].image``) for an error to name."""

    type: str
    media_id: str
    path: str

    @property
    def uuid(self) -> uuid.UUID | None:
        """The id as a UUID, or None when it is not one (it names nothing)."""
        try:
            return uuid.UUID(self.media_id)
        except (TypeError, ValueError, AttributeError):
            return None


def references(value: Any, path: str = "") -> Iterator[Reference]:
    """Every parameter of ``value`` (components, or a whole send payload) that names Waypost
    media, at any depth (carousel cards' headers included)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type")
            holder = item.get(kind) if isinstance(kind, str) and kind in HEADER_MEDIA else None
            if isinstance(holder, dict) and MEDIA_ID in holder:
                yield Reference(kind, str(holder[MEDIA_ID]), f"{where}.{kind}".lstrip("."))
                continue
            stack.extend(reversed([(v, f"{where}.{k}") for k, v in item.items()]))
        elif isinstance(item, list):
            stack.extend(reversed([(v, f"{where}[{i}]") for i, v in enumerate(item)]))


def substituted(value: Any, provider_ids: dict[str, str]) -> Any:
    """A copy of ``value`` in which each Waypost ``media_id`` is the provider's ``id`` from
    ``provider_ids`` (keyed by the id as given); the media object's other keys (a document's
    ``filename``) are kept."""
    result = copy.deepcopy(value)
    stack: list[Any] = [result]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            kind = item.get("type")
            holder = item.get(kind) if isinstance(kind, str) and kind in HEADER_MEDIA else None
            if isinstance(holder, dict) and MEDIA_ID in holder:
                named = str(holder.pop(MEDIA_ID))
                item[kind] = {PROVIDER_ID: provider_ids[named], **holder}
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return result
