from django.urls import path

from webhooks import views

urlpatterns = [
    path("whatsapp", views.whatsapp, name="webhook-whatsapp"),
    path("360dialog/<str:token>", views.dialog360, name="webhook-360dialog"),
]
