from django.urls import path

from webhooks import views
from whatsapp.registry import PROVIDERS

urlpatterns = [
    path("whatsapp", views.whatsapp, name="webhook-whatsapp"),
    # A route per sender for each provider that delivers webhooks that way (360dialog).
    *(
        path(f"{slug}/<str:token>", views.sender_route, {"provider": slug}, name=f"webhook-{slug}")
        for slug, cls in PROVIDERS.items()
        if cls.per_sender_webhooks
    ),
]
