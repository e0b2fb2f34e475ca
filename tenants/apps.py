from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from tenants import checks  # noqa: F401  (registers the senders' database check)
        from tenants.models import ApiKey, Tenant
        from tenants.services import api_keys_forget

        # A key or tenant saved in this process: its cached keys go at once (core.lookups).
        for model in (ApiKey, Tenant):
            post_save.connect(api_keys_forget, sender=model, dispatch_uid=f"keys-{model.__name__}")
            post_delete.connect(
                api_keys_forget, sender=model, dispatch_uid=f"keys-del-{model.__name__}"
            )
