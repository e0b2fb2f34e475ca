from django.urls import path

from campaigns import apis

urlpatterns = [
    path("campaigns", apis.CampaignListCreateApi.as_view(), name="campaign-list"),
    path("campaigns/<uuid:campaign_id>", apis.CampaignDetailApi.as_view(), name="campaign-detail"),
    path(
        "campaigns/<uuid:campaign_id>/report",
        apis.CampaignReportApi.as_view(),
        name="campaign-report",
    ),
    path(
        "campaigns/<uuid:campaign_id>/invalid-rows.csv",
        apis.CampaignInvalidRowsCsvApi.as_view(),
        name="campaign-invalid-rows",
    ),
    path(
        "campaigns/<uuid:campaign_id>/start",
        apis.CampaignStartApi.as_view(),
        name="campaign-start",
    ),
    path(
        "campaigns/<uuid:campaign_id>/pause",
        apis.CampaignPauseApi.as_view(),
        name="campaign-pause",
    ),
    path(
        "campaigns/<uuid:campaign_id>/resume",
        apis.CampaignResumeApi.as_view(),
        name="campaign-resume",
    ),
    path(
        "campaigns/<uuid:campaign_id>/cancel",
        apis.CampaignCancelApi.as_view(),
        name="campaign-cancel",
    ),
]
