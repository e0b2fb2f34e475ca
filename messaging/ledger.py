"""Writing to the ledger: events in bulk, then the state projection, in the caller's
transaction.

``record()`` inserts events with ``ON CONFLICT DO NOTHING`` on ``(message, dedupe_key)`` — the
same fact twice is one row — and moves each message's stored state to the highest-precedence
state among the new events with a conditional ``UPDATE ... WHERE state_rank < new_rank``.
Applying a duplicate again changes nothing, and no write can move a message backwards.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from messaging.models import Message, MessageEvent
from messaging.states import Fact, precedence


@dataclass
class NewEvent:
    message_id: Any
    type: str
    source: str
    round: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    dedupe_key: str = ""  # default: "<type>:<round>"


def record(events: list[NewEvent]) -> None:
    """Append ``events`` and project them onto their messages (call inside a transaction)."""
    if not events:
        return
    now = timezone.now()
    MessageEvent.objects.bulk_create(
        [
            MessageEvent(
                message_id=e.message_id,
                type=e.type,
                source=e.source,
                round=e.round,
                occurred_at=e.occurred_at or now,
                detail=e.detail,
                dedupe_key=e.dedupe_key or f"{e.type}:{e.round}",
            )
            for e in events
        ],
        ignore_conflicts=True,
    )
    best: dict[Any, tuple[int, str]] = {}
    for e in events:
        ranked = precedence(Fact(e.type, e.round))
        if ranked and ranked[0] > best.get(e.message_id, (-1, ""))[0]:
            best[e.message_id] = ranked
    by_rank: dict[tuple[int, str], list] = defaultdict(list)
    for message_id, ranked in best.items():
        by_rank[ranked].append(message_id)
    for (rank, state), ids in by_rank.items():
        Message.objects.filter(pk__in=ids, state_rank__lt=rank).update(
            state=state, state_rank=rank, state_changed_at=now
        )
