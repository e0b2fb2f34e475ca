"""The provider upload (``whatsapp.media``) against recorded answers (``tests/media/recorded``):
the request each provider gets — its URL, its credential header, the multipart fields — and
what each answer means: the media id, or one ``ProviderError`` with the provider's code and the
HTTP status (None when no answer came back). No network: a recorded transport answers."""

import pytest
import requests

from whatsapp import ErrorClass, ProviderError
from whatsapp.dialog360 import Dialog360Provider
from whatsapp.media import (
    HEADER_MEDIA,
    MEDIA_ID_LIFETIME,
    header_media_for,
    media_request,
    upload_media,
)
from whatsapp.meta import CURRENT_GRAPH_VERSION, MetaCloudProvider

from .recorded import Recorded, answer

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
GRAPH = "https://graph.example"
D360 = "https://waba.example"


def meta(*answers) -> tuple[MetaCloudProvider, Recorded]:
    provider = MetaCloudProvider(base_url=GRAPH, graph_version=CURRENT_GRAPH_VERSION)
    transport = Recorded(list(answers))
    provider.session.mount(GRAPH, transport)
    return provider, transport


def dialog360(*answers) -> tuple[Dialog360Provider, Recorded]:
    provider = Dialog360Provider(base_url=D360)
    transport = Recorded(list(answers))
    provider.session.mount(D360, transport)
    return provider, transport


def upload(provider, **kw):
    values = {
        "credential": "EAAG-token",
        "phone_number_id": "106540352242922",
        "content": PNG,
        "filename": "sale.png",
        "content_type": "image/png",
    }
    return upload_media(provider, **(values | kw))


def test_meta_gets_the_file_its_type_and_the_product_at_the_numbers_media_endpoint():
    provider, transport = meta("upload_success")
    assert upload(provider) == answer("upload_success")[1]["id"]
    [sent] = transport.sent
    assert sent.method == "POST"
    assert sent.url == f"{GRAPH}/{CURRENT_GRAPH_VERSION}/106540352242922/media"
    assert sent.headers["Authorization"] == "Bearer EAAG-token"
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert sent.field("messaging_product") == b"whatsapp"
    assert sent.field("type") == b"image/png"
    assert sent.field("file") == PNG
    head = sent.part_headers("file")
    assert b'filename="sale.png"' in head and b"Content-Type: image/png" in head


def test_360dialog_gets_it_at_its_media_endpoint_with_its_key_header():
    provider, transport = dialog360("upload_success")
    assert upload(provider, credential="d360-key") == "1339522734477770"
    [sent] = transport.sent
    assert sent.url == f"{D360}/media"
    assert sent.headers["D360-API-KEY"] == "d360-key"
    assert "Authorization" not in sent.headers
    assert sent.field("file") == PNG


def test_the_media_endpoint_is_the_messages_endpoints_sibling():
    provider = MetaCloudProvider(base_url=GRAPH, graph_version="v21.0")
    url, headers = media_request(provider, credential="t", phone_number_id="42")
    assert url == f"{GRAPH}/v21.0/42/media" and headers == {"Authorization": "Bearer t"}


def test_a_refused_file_is_the_providers_code_and_details():
    provider, _ = meta("upload_error_131053")
    with pytest.raises(ProviderError) as refused:
        upload(provider)
    assert (refused.value.code, refused.value.status) == (131053, 400)
    assert "could not be processed" in str(refused.value)
    assert provider.classify(refused.value.code, refused.value.status).error_class == (
        ErrorClass.NEVER_RETRY
    )


def test_an_expired_token_is_an_alert_for_the_operator():
    provider, _ = meta("upload_error_190")
    with pytest.raises(ProviderError) as refused:
        upload(provider)
    assert (refused.value.code, refused.value.status) == (190, 401)
    assert provider.classify(190, 401).error_class == ErrorClass.ALERT_TENANT


def test_360dialogs_own_error_shape_is_read_too():
    provider, _ = dialog360("upload_error_360dialog")
    with pytest.raises(ProviderError) as refused:
        upload(provider)
    assert (refused.value.code, refused.value.status) == (None, 401)
    assert str(refused.value) == "Invalid api key"


def test_a_server_error_page_is_the_status_without_a_code():
    provider, _ = meta((502, "<html>Bad Gateway</html>"))
    with pytest.raises(ProviderError) as failed:
        upload(provider)
    assert (failed.value.code, failed.value.status) == (None, 502)


@pytest.mark.parametrize("body", [{}, {"id": ""}, {"id": None}, {"id": True}, ["1"], "ok"])
def test_an_answer_without_a_media_id_is_a_failure_not_an_empty_id(body):
    provider, _ = meta((200, body))
    with pytest.raises(ProviderError, match="names no media id"):
        upload(provider)


def test_no_answer_is_a_failure_without_status_that_never_quotes_the_request():
    secret = "EAAG-secret-token"
    provider, _ = meta(requests.ConnectTimeout(f"timed out sending Bearer {secret}"))
    with pytest.raises(ProviderError) as failed:
        upload(provider, credential=secret)
    assert failed.value.status is None and failed.value.code is None
    assert "connecting to the provider timed out" in str(failed.value)
    assert secret not in str(failed.value)


def test_what_template_headers_take_and_for_how_long_an_id_lasts():
    assert MEDIA_ID_LIFETIME.days == 30
    assert {k: m.max_bytes // (1024 * 1024) for k, m in HEADER_MEDIA.items()} == {
        "image": 5,
        "video": 16,
        "document": 100,
    }
    assert header_media_for("image/jpeg").format == "IMAGE"
    assert header_media_for("video/3gpp").format == "VIDEO"
    assert header_media_for("application/pdf").format == "DOCUMENT"
    for refused in ("image/webp", "audio/ogg", "image/gif", "application/zip", ""):
        assert header_media_for(refused) is None
