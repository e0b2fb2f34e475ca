"""The admin at 3 a.m., page by page: the operations page's top errors carry their titles and
lead to the messages they count; no page shows Markdown's backticks."""

import html
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from callbacks.models import CallbackAttempt, CallbackEndpoint, CallbackEvent
from callbacks.services import Item, callbacks_enqueue
from core.ids import short
from messaging.models import Message, Suppression
from messaging.track.contacts import contact_resolve
from whatsapp import error_info

from ..factories import MessageTemplateFactory
from ..messaging.helpers import body
from ..webhooks.helpers import envelope, post, status

pytestmark = pytest.mark.django_db
OPERATIONS = "/admin/operations/"


def words(text: str) -> str:
    """A page as a reader sees it: no scripts, styles, comments or tags; whitespace collapsed."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<!--.*?-->", " ", text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", text)).split())


def messages(tenant_client, count: int, *, code: str, error_class: str, key: str) -> list:
    template = MessageTemplateFactory(tenant=tenant_client.tenant)
    ids = [
        tenant_client.client.post(
            "/api/v1/messages",
            body(template, to=f"+49151123456{i:02d}"),
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"{key}-{i}",
        ).json()["id"]
        for i in range(count)
    ]
    Message.objects.filter(pk__in=ids).update(error_code=code, error_class=error_class)
    return ids


def test_the_top_errors_carry_their_titles_and_lead_to_their_messages(admin_client, tenant_a):
    undeliverable = messages(tenant_a, 2, code="131026", error_class="never_retry", key="u")
    unavailable = messages(tenant_a, 1, code="131016", error_class="retry_backoff", key="s")
    page = admin_client.get(OPERATIONS, {"tenant": tenant_a.tenant.slug}).content.decode()
    box = page[page.index("Top error codes") : page.index("<h2>Webhooks")]
    info = error_info("131026")
    assert f"131026 {info.title} {info.who_acts.label} · Never retry 2" in words(box)
    assert f"131016 {error_info('131016').title}" in words(box)

    link = html.unescape(re.search(r'href="([^"]*error_code=131026[^"]*)"', box).group(1))
    query = parse_qs(urlparse(link).query)
    assert query["error_code"] == ["131026"] and query["error_class__exact"] == ["never_retry"]
    assert query["age"] == ["24h"] and query["tenant__id__exact"] == [str(tenant_a.tenant.pk)]
    listed = admin_client.get(link)
    assert listed.status_code == 200
    text = listed.content.decode()
    assert all(short(pk) in text for pk in undeliverable)
    assert short(unavailable[0]) not in text


def every_admin_page(client) -> dict[str, str]:
    """Each registered model's list, an object's page and the add page (where allowed), with
    the index and the operations page."""
    pages = {}
    for url in ("/admin/", OPERATIONS):
        pages[url] = client.get(url).content.decode()
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls = [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
        obj = model._default_manager.first()
        if obj is not None:
            urls.append(reverse(f"{name}_change", args=[obj.pk]))
        for url in urls:
            answer = client.get(url)
            if answer.status_code == 200:
                pages[url] = answer.content.decode()
    return pages


def test_no_admin_page_shows_markdown_backticks(admin_client, client, tenant_a):
    """Help texts written with `code` (the tenant's retention setting, for one) are shown as
    code, not with their backticks — on every page the admin has, with one of each object."""
    [message_id] = messages(tenant_a, 1, code="131026", error_class="never_retry", key="b")
    contact_resolve(tenant=tenant_a.tenant, wa_id="4915112345600", user_id="DE.1234567890")
    Suppression.objects.create(tenant=tenant_a.tenant, recipient="+4915112345699")
    endpoint, _ = CallbackEndpoint.objects.get_or_create(tenant=tenant_a.tenant)
    endpoint.url, endpoint.event_types = "https://hooks.example.com/w", ["message.read"]
    endpoint.save()
    callbacks_enqueue(tenant_id=tenant_a.tenant.pk, items=[Item("message.read", {"n": 1})])
    event = CallbackEvent.objects.get()
    CallbackAttempt.objects.create(event=event, url=endpoint.url, status_code=204)
    number = tenant_a.tenant.senders.get().phone_number_id
    post(client, envelope(number, statuses=[status("wamid.page", "sent", 1_750_030_000)]))
    post(client, {"object": "forged"}, signature="sha256=00")  # a rejected call
    Message.objects.filter(pk=message_id).update(stalled_at=timezone.now())

    pages = every_admin_page(admin_client)
    assert "/admin/tenants/tenant/add/" in pages and len(pages) > 30
    tenant_page = pages[f"/admin/tenants/tenant/{tenant_a.tenant.pk}/change/"]
    assert "<code>manage.py retention</code>" in tenant_page  # shown as code
    shown = {url: words(page) for url, page in pages.items()}
    with_backticks = {
        url: text[max(0, text.index("`") - 60) : text.index("`") + 60]
        for url, text in shown.items()
        if "`" in text
    }
    assert not with_backticks
