"""Views of no app: liveness, and the API's answer for a path it does not have."""

import uuid

from django.http import HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views.decorators.csrf import csrf_exempt

from core.errors import error_body


def healthz(request) -> HttpResponse:
    """Liveness: answers without touching the database or the broker (for load balancers and
    the webhook benchmark's baseline)."""
    return HttpResponse("ok", content_type="text/plain")


def _resolves(path: str):
    """The match for ``path`` if a real view (not this one) serves it, else None."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return None if match.func is api_not_found else match


@csrf_exempt  # the API authenticates by key, never by session: a POST gets its JSON 404 too
def api_not_found(request, *args, **kwargs) -> HttpResponse:
    """Every path under ``/api/`` that no endpoint serves — in every configuration, also with
    ``DEBUG`` on, where Django's own 404 would be its HTML page listing every URL pattern.

    A 404 in the API's error shape, and the likely mistake named:

    * a trailing slash (API paths have none): ``not_found``, naming the path without it;
    * an id that is not a UUID, where an endpoint takes one: the code an unknown id gets
      (``message_not_found``, ``template_not_found``), so clients handle both alike;
    * anything else: ``not_found``.

    The pages meant for people (``/api/docs/``, ``/api/schema/``) asked for without their
    slash are redirected to it, as Django does for every other page."""
    path = request.path
    if not path.endswith("/") and request.method in ("GET", "HEAD") and _resolves(path + "/"):
        query = request.META.get("QUERY_STRING", "")
        return HttpResponsePermanentRedirect(path + "/" + (f"?{query}" if query else ""))
    if path.endswith("/") and _resolves(path.rstrip("/")):
        return _not_found(
            "not_found",
            f"No such endpoint: API paths end without a slash ({path.rstrip('/')}).",
        )
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if not segment or index < 3:  # "", "api", "v1"
            continue
        candidate = "/".join([*segments[:index], str(uuid.UUID(int=0)), *segments[index + 1 :]])
        match = _resolves(candidate)
        if match and match.url_name:
            kind = match.url_name.split("-")[0]
            return _not_found(
                f"{kind}_not_found",
                f"No such {kind}: '{segment[:64]}' is not an id (ids are UUIDs, in lowercase).",
            )
    return _not_found("not_found", "No such endpoint; the API is described at /api/docs/.")


def _not_found(code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=404)
