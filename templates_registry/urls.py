from django.urls import path

from templates_registry import apis

urlpatterns = [
    path("templates", apis.TemplateListCreateApi.as_view(), name="template-list"),
    path("templates/sync", apis.TemplateSyncApi.as_view(), name="template-sync"),
    path("templates/<uuid:template_id>", apis.TemplateDetailApi.as_view(), name="template-detail"),
    path(
        "templates/<uuid:template_id>/validate",
        apis.TemplateValidateApi.as_view(),
        name="template-validate",
    ),
]
