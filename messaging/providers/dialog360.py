"""360dialog's Cloud API: ``D360-API-KEY`` header, no version and no phone number id in the
path (360dialog adds them; docs/meta-api.md §7). Meta's errors pass through; 360dialog's own
errors use ``{"meta": {"httpCode", "developerMessage", "success"}}``."""

from typing import Any

from messaging.providers.base import ParsedResponse, Provider


class Dialog360Provider(Provider):
    slug = "360dialog"

    def message_request(self, *, credential: str, phone_number_id: str) -> tuple[str, dict]:
        return f"{self.base_url}/messages", {"D360-API-KEY": credential}

    def templates_request(self, *, credential: str, waba_id: str) -> tuple[str, dict]:
        return f"{self.base_url}/v1/configs/templates", {"D360-API-KEY": credential}

    def parse_error(self, http_status: int, body: Any) -> ParsedResponse:
        meta = body.get("meta") if isinstance(body, dict) else None
        if isinstance(meta, dict) and "error" not in body:
            # No Meta code: the classifier falls back on the HTTP status.
            message = str(meta.get("developerMessage", ""))
            return ParsedResponse(error_title=message, error_details=message, raw=body)
        return super().parse_error(http_status, body)

    def templates_page(self, body: dict) -> list[dict]:
        return list(body.get("waba_templates") or body.get("data") or [])

    def next_page(self, body: dict) -> str:
        return ""  # 360dialog pages with offset; one page of `limit` covers a WABA's templates
