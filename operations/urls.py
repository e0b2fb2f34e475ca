from django.urls import path

from operations import apis

urlpatterns = [
    path("tenant", apis.TenantSettingsApi.as_view(), name="tenant-settings"),
]
