"""The media files' admin: scoped to the user's tenants (list, page, filter), read-only, the
provider id's state as a badge, an image previewed on its page, no file's bytes read for the
list."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from media.admin import expiry
from media.models import MediaAsset
from tenants.models import StaffScope

from .conftest import PDF, PNG

pytestmark = pytest.mark.django_db
LIST = "/admin/media/mediaasset/"


def staff(client, tenant, *codenames: str):
    user = User.objects.create_user(f"staff{User.objects.count()}", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    StaffScope.objects.create(user=user).tenants.add(tenant)
    client.force_login(user)
    return client


def media_of(tenant, *, name="sale.png", content=PNG, content_type="image/png", expires_in=None):
    now = timezone.now()
    uploaded = {}
    if expires_in is not None:
        uploaded = {
            "provider_media_id": "1339522734477770",
            "uploaded_at": now + expires_in - timedelta(days=30),
            "expires_at": now + expires_in,
        }
    return MediaAsset.objects.create(
        tenant=tenant,
        sender=tenant.senders.get(),
        file=content,
        filename=name,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content + name.encode()).hexdigest(),
        **uploaded,
    )


def test_staff_see_their_tenants_files_only(client, tenant_a, tenant_b):
    mine = media_of(tenant_a.tenant, name="mine.png", expires_in=timedelta(days=20))
    theirs = media_of(tenant_b.tenant, name="theirs.png", expires_in=timedelta(days=20))
    scoped = staff(client, tenant_a.tenant, "view_mediaasset")
    listing = scoped.get(LIST).content.decode()
    assert "mine.png" in listing and "theirs.png" not in listing
    assert tenant_b.tenant.slug not in listing  # nor in the tenant or sender filters
    assert scoped.get(f"{LIST}{mine.pk}/change/").status_code == 200
    assert scoped.get(f"{LIST}{theirs.pk}/change/").status_code == 302
    searched = scoped.get(LIST, {"q": "theirs"})  # not a UUID: the id lookup is skipped
    assert searched.status_code == 200 and "theirs.png" not in searched.content.decode()
    assert "mine.png" in scoped.get(LIST, {"q": str(mine.pk)}).content.decode()


def test_a_view_only_user_sees_the_page_but_nothing_can_be_added_or_changed(client, tenant_a):
    asset = media_of(tenant_a.tenant, expires_in=timedelta(days=20))
    viewer = staff(client, tenant_a.tenant, "view_mediaasset")
    page = viewer.get(f"{LIST}{asset.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert viewer.get(f"{LIST}add/").status_code == 403
    assert viewer.post(f"{LIST}{asset.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MediaAsset.objects.filter(pk=asset.pk).exists()


def test_without_a_permission_the_admin_shows_nothing(client, tenant_a):
    media_of(tenant_a.tenant)
    assert staff(client, tenant_a.tenant).get(LIST).status_code == 403


def test_deleting_needs_the_delete_permission(client, tenant_a):
    asset = media_of(tenant_a.tenant)
    deleter = staff(client, tenant_a.tenant, "view_mediaasset", "delete_mediaasset")
    assert deleter.post(f"{LIST}{asset.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not MediaAsset.objects.filter(pk=asset.pk).exists()


@pytest.mark.parametrize(
    ("expires_in", "label"),
    [
        (timedelta(days=20, hours=1), "valid · 20 d"),
        (timedelta(hours=5), "renews at next send"),  # within WAYPOST_MEDIA_REFRESH_MARGIN
        (timedelta(days=-1), "expired"),
        (None, "not uploaded"),
    ],
)
def test_the_badge_says_whether_the_provider_id_is_still_good(client, tenant_a, expires_in, label):
    asset = media_of(tenant_a.tenant, expires_in=expires_in)
    assert expiry(asset)[0] == label
    page = staff(client, tenant_a.tenant, "view_mediaasset").get(LIST).content.decode()
    assert label in page


def test_an_image_is_previewed_on_its_page_and_a_document_is_not(client, tenant_a):
    image = media_of(tenant_a.tenant)
    document = media_of(
        tenant_a.tenant, name="invoice.pdf", content=PDF, content_type="application/pdf"
    )
    viewer = staff(client, tenant_a.tenant, "view_mediaasset")
    assert 'src="data:image/png;base64,' in viewer.get(f"{LIST}{image.pk}/change/").content.decode()
    assert "data:application/pdf" not in viewer.get(f"{LIST}{document.pk}/change/").content.decode()


def test_the_list_reads_no_files_bytes(client, tenant_a):
    media_of(tenant_a.tenant)
    viewer = staff(client, tenant_a.tenant, "view_mediaasset")
    with CaptureQueriesContext(connection) as queries:
        assert viewer.get(LIST).status_code == 200
    selected = [q["sql"] for q in queries if '"media_mediaasset"' in q["sql"]]
    assert selected and not any('"media_mediaasset"."file"' in sql for sql in selected)
