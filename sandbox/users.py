"""The sandbox's WhatsApp users, as Meta identifies them since 2026 (docs/meta-api.md §11.1).

Every user has a business-scoped user id (BSUID, ``US.13491208655302741918``) per business,
derived here from the phone number, the business (WABA) and the seed, so it is stable for a run
and can be computed again; a share of users (``username_rate``) have a username, and then arrive
without a phone number. BSUIDs the sandbox issued resolve back to their number, so a send to a
BSUID reaches the right user.
"""

from __future__ import annotations

import hashlib

import phonenumbers


class Directory:
    def __init__(self, config) -> None:
        self.config = config  # read live: /_sandbox/config may change the knobs
        self.numbers: dict[str, str] = {}  # BSUID -> wa_id

    def _digest(self, *parts: str) -> str:
        raw = ":".join((str(self.config.seed or 0), *parts)).encode()
        return str(int(hashlib.sha256(raw).hexdigest(), 16))[:20]

    @staticmethod
    def region(wa_id: str) -> str:
        try:
            return phonenumbers.region_code_for_number(phonenumbers.parse(f"+{wa_id}")) or "US"
        except phonenumbers.NumberParseException:
            return "US"

    def user_id(self, waba_id: str, wa_id: str) -> str:
        user_id = f"{self.region(wa_id)}.{self._digest('user', waba_id, wa_id)}"
        self.numbers[user_id] = wa_id
        return user_id

    def parent_user_id(self, wa_id: str) -> str:
        if not self.config.parent_user_ids:
            return ""
        return f"{self.region(wa_id)}.ENT.{self._digest('parent', wa_id)}"

    def has_username(self, wa_id: str) -> bool:
        rate = self.config.username_rate
        if rate <= 0:
            return False
        return int(self._digest("username", wa_id)) % 10_000 < rate * 10_000

    def username(self, wa_id: str) -> str:
        return f"@user{self._digest('name', wa_id)[:6]}" if self.has_username(wa_id) else ""

    def wa_id_for(self, user_id: str) -> str:
        """The number behind a BSUID the sandbox issued ("" for one it never issued)."""
        return self.numbers.get(user_id, "")

    def contact(
        self, waba_id: str, wa_id: str, *, name: str = "", show_number: bool, with_username: bool
    ) -> dict:
        """A ``contacts[]`` entry: the BSUID always, the number when Meta would show it, the
        username where the user has one and the webhook carries it."""
        profile = {"name": name or "Sandbox User"}
        if with_username and self.has_username(wa_id):
            profile["username"] = self.username(wa_id)
        entry: dict = {"profile": profile}
        if show_number:
            entry["wa_id"] = wa_id
        entry["user_id"] = self.user_id(waba_id, wa_id)
        if parent := self.parent_user_id(wa_id):
            entry["parent_user_id"] = parent
        return entry
