"""What the provider reports back, in Waypost's terms: one status of one sent message, one
inbound message. Pure data (no Django), so the webhook parser can build these directly and
``messaging.inbound`` can apply them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StatusReport:
    phone_number_id: str
    wamid: str
    status: str
    occurred_at: datetime
    recipient_id: str = ""
    biz_opaque_callback_data: str = ""
    errors: tuple = ()
    raw: dict = field(default_factory=dict, compare=False)

    @property
    def dedupe_key(self) -> str:
        return f"status:{self.wamid}:{self.status}:{int(self.occurred_at.timestamp())}"

    def as_json(self) -> dict[str, Any]:
        return {
            "phone_number_id": self.phone_number_id,
            "wamid": self.wamid,
            "status": self.status,
            "occurred_at": self.occurred_at.isoformat(),
            "recipient_id": self.recipient_id,
            "biz_opaque_callback_data": self.biz_opaque_callback_data,
            "errors": list(self.errors),
            "raw": self.raw,
        }

    @classmethod
    def from_json(cls, data: dict) -> StatusReport:
        return cls(
            **{
                **data,
                "occurred_at": datetime.fromisoformat(data["occurred_at"]),
                "errors": tuple(data.get("errors") or ()),
            }
        )


@dataclass(frozen=True)
class InboundReport:
    phone_number_id: str
    wamid: str
    wa_id: str
    type: str
    occurred_at: datetime
    text: str = ""
    payload: str = ""
    context_wamid: str = ""
    profile_name: str = ""
    raw: dict = field(default_factory=dict, compare=False)
