from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.views import api_not_found, healthz
from operations.metrics import metrics_view

api_v1 = [
    path("", include("templates_registry.urls")),
    path("", include("messaging.urls")),
    path("", include("campaigns.urls")),
    path("", include("media.urls")),
    path("", include("operations.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("webhooks/", include("webhooks.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Last: any other path under /api/ is the API's JSON 404, also with DEBUG on.
    re_path(r"^api/", api_not_found, name="api-not-found"),
]

handler400 = "core.api.json_bad_request"
handler403 = "core.api.json_permission_denied"
handler404 = "core.api.json_not_found"
handler500 = "core.api.json_server_error"
