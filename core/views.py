"""Liveness: answers without touching the database or the broker (for load balancers and
the webhook benchmark's baseline)."""

from django.http import HttpResponse


def healthz(request) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
