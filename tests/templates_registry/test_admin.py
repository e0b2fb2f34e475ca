"""The template admin: rule violations beside their fields, status badge, read-only provider
fields, and saving through the services."""

import pytest

from templates_registry.models import MessageTemplate

from ..factories import MessageTemplateFactory, TenantFactory

ADD_URL = "/admin/templates_registry/messagetemplate/add/"


def form_data(tenant, **overrides):
    data = {
        "tenant": tenant.pk,
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "header_format": "TEXT",
        "header_text": "Order {{1}}",
        "body_text": "Hi {{1}}, your order {{2}} has shipped.",
        "footer_text": "Thanks",
        "buttons": '[{"type": "QUICK_REPLY", "text": "Stop"}]',
    }
    return data | overrides


@pytest.mark.django_db
def test_add_creates_a_pending_template(admin_client):
    tenant = TenantFactory()
    response = admin_client.post(ADD_URL, form_data(tenant))
    assert response.status_code == 302, response.context["adminform"].form.errors
    template = MessageTemplate.objects.get(tenant=tenant)
    assert template.status == "PENDING"
    assert template.components == [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped."},
        {"type": "FOOTER", "text": "Thanks"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]},
    ]


@pytest.mark.django_db
def test_violations_are_shown_beside_the_field_they_concern(admin_client):
    tenant = TenantFactory()
    response = admin_client.post(
        ADD_URL,
        form_data(
            tenant,
            name="Order Update",
            header_text="x" * 61,
            body_text="{{1}} is here",
            footer_text="Ref {{1}}",
            buttons='[{"type": "QUICK_REPLY", "text": "%s"}]' % ("y" * 26),
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"name", "header_text", "body_text", "footer_text", "buttons"}
    assert "60" in errors["header_text"][0]
    assert "button[0]" in errors["buttons"][0]
    page = response.content.decode()
    # Django renders each field's errors in that field's row.
    assert page.index("errorlist") < page.index('name="body_text"')
    assert not MessageTemplate.objects.exists()


@pytest.mark.django_db
def test_change_page_shows_badge_and_provider_fields_read_only(admin_client):
    template = MessageTemplateFactory(
        status="REJECTED",
        rejection_reason="INVALID_FORMAT",
        provider_template_id="1689556908129832",
    )
    url = f"/admin/templates_registry/messagetemplate/{template.pk}/change/"
    page = admin_client.get(url).content.decode()
    assert "border-radius" in page and "REJECTED" in page
    assert 'name="status"' not in page and 'name="provider_template_id"' not in page
    assert "1689556908129832" in page and "INVALID_FORMAT" in page

    response = admin_client.post(
        url,
        {
            "category": "MARKETING",
            "header_format": "TEXT",
            "header_text": "Order {{1}}",
            "body_text": "Hello {{1}}, order {{2}} is on its way.",
            "footer_text": "",
            "buttons": "",
            "status": "APPROVED",  # ignored: provider-managed
        },
    )
    # The edit goes to the provider first; this template has no sender to submit it through,
    # so the page says so and nothing changes (never a 500, never unreviewed components).
    assert response.status_code == 302
    shown = admin_client.get(response["Location"]).content.decode()
    assert "Not saved" in shown and "no sender" in shown
    template.refresh_from_db()
    assert (template.status, template.category) == ("REJECTED", "UTILITY")
    assert template.components[1]["text"] != "Hello {{1}}, order {{2}} is on its way."


@pytest.mark.django_db
def test_changelist_shows_status_badges(admin_client):
    MessageTemplateFactory(status="APPROVED")
    page = admin_client.get("/admin/templates_registry/messagetemplate/").content.decode()
    assert "APPROVED" in page and "#1e7e34" in page
