"""The webhook routes, one view per provider's route (``webhooks.views``). Their paths are what
Meta's app and each 360dialog number are configured with: they never change."""

from django.urls import path

from webhooks import views

urlpatterns = [
    path("whatsapp", views.MetaWebhookView.as_view(), name="webhook-whatsapp"),
    path("360dialog/<slug:token>", views.Dialog360WebhookView.as_view(), name="webhook-360dialog"),
]
