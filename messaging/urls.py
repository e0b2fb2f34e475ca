from django.urls import path

from messaging import apis

urlpatterns = [
    path("messages", apis.MessageListCreateApi.as_view(), name="message-list"),
    path("messages/batch", apis.MessageBatchApi.as_view(), name="message-batch"),
    path("messages/<uuid:message_id>", apis.MessageDetailApi.as_view(), name="message-detail"),
    path("inbound", apis.InboundListApi.as_view(), name="inbound-list"),
    path("reports/pricing", apis.PricingReportApi.as_view(), name="pricing-report"),
    path(
        "messages/<uuid:message_id>/cancel", apis.MessageCancelApi.as_view(), name="message-cancel"
    ),
]
