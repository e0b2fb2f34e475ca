from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from messaging import signals  # noqa: F401  (connects the worker start-up handler)
