"""Raw webhook deliveries (filled in by the webhook-ingestion issue)."""
