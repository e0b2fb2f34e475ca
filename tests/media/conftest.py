"""Media tests' helpers: small files of each kind, an upload through the API, and a provider
whose media endpoint answers recorded answers (``tests/media/recorded``) for one sender."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from media import services
from whatsapp import get_provider
from whatsapp.media import media_request

from .recorded import Recorded

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64))
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(64)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


def upload(client, content: bytes = PNG, name="sale.png", content_type="image/png", **fields):
    """``POST /api/v1/media`` with ``content`` as the multipart ``file`` (and ``fields``)."""
    data = {"file": SimpleUploadedFile(name, content, content_type=content_type), **fields}
    return client.post("/api/v1/media", data, format="multipart")


@pytest.fixture
def uploads():
    """``uploads(sender, *answers)``: the sender's media endpoint answers ``answers`` in turn
    (recorded answers' names, ``(status, body)`` pairs or exceptions) — or ``transport``, a
    :class:`Recorded` of the test's own; returns the transport, which keeps what was sent.
    Unmounted after the test."""
    mounted = []

    def mount(sender, *answers, transport: Recorded | None = None) -> Recorded:
        # As stored (a str): a factory's sender holds the enum, a different cache key.
        provider = get_provider(str(sender.provider))
        url, _ = media_request(provider, credential="x", phone_number_id=sender.phone_number_id)
        transport = transport or Recorded(list(answers))
        provider.session.mount(url, transport)
        mounted.append((provider, url))
        return transport

    yield mount
    for provider, url in mounted:
        provider.session.adapters.pop(url, None)


@pytest.fixture(autouse=True)
def _forget_resolved_ids():
    """Each test starts with no provider id remembered by this process."""
    services._RESOLVED.clear()
    yield
    services._RESOLVED.clear()
