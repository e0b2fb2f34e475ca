from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self) -> None:
        from campaigns import signals  # noqa: F401  (a changed limit wakes held campaigns)
