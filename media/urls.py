from django.urls import path

from media import apis

urlpatterns = [
    path("media", apis.MediaCreateApi.as_view(), name="media-upload"),
    path("media/<uuid:media_id>", apis.MediaDetailApi.as_view(), name="media-detail"),
]
