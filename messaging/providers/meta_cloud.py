"""Meta's Cloud API (Graph API): ``Authorization: Bearer``, the version in the path."""

from messaging.providers.base import Provider


class MetaCloudProvider(Provider):
    slug = "meta"

    def message_request(self, *, credential: str, phone_number_id: str) -> tuple[str, dict]:
        url = f"{self.base_url}/{self.graph_version}/{phone_number_id}/messages"
        return url, {"Authorization": f"Bearer {credential}"}

    def templates_request(self, *, credential: str, waba_id: str) -> tuple[str, dict]:
        url = f"{self.base_url}/{self.graph_version}/{waba_id}/message_templates"
        return url, {"Authorization": f"Bearer {credential}"}

    def template_request(self, *, credential: str, template_id: str) -> tuple[str, dict]:
        url = f"{self.base_url}/{self.graph_version}/{template_id}"
        return url, {"Authorization": f"Bearer {credential}"}
