"""``callbacks.transport`` against real sockets on 127.0.0.1: where it connects, how long it
waits, how much it reads. No database; name resolution is patched where a test needs a name to
answer something particular (a public address, a rebinding name)."""

import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import pytest

from callbacks.transport import (
    EXCERPT_BYTES,
    READ_CAP,
    DeliveryFailed,
    DestinationRefused,
    Transport,
    target_parse,
)

from .hostile import Hostile, bomb, gzip_bomb, head, ok, trickle_headers

PUBLIC = "93.184.216.34"  # a global address; the local receiver plays it


def post(url: str, *, transport: Transport | None = None, allow_private: bool = True):
    return (transport or Transport()).post(
        target_parse(url),
        body=b'{"type":"message.read"}',
        headers={"Content-Type": "application/json", "webhook-id": "msg_1"},
        allow_private=allow_private,
    )


def bounded(call, timeout: float = 20.0):
    """``call()``'s result, or what it raised — failing the test if it has neither within
    ``timeout`` (far beyond any deadline here): a transport that ignored its deadline would
    otherwise hang the run instead of failing it."""
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(call).result(timeout)
    except TimeoutError:
        raise AssertionError(f"still waiting after {timeout} s: the deadline did not cut") from None
    finally:
        pool.shutdown(wait=False)


@pytest.fixture
def server():
    servers = []

    def start(answer, **kw) -> Hostile:
        servers.append(Hostile(answer, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def resolving(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Names resolve to the next address list of ``answers[name]`` at each lookup (the last
    one repeats); other names resolve as usual. Returns the names looked up."""
    real, looked_up = socket.getaddrinfo, []

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        addresses = answers[host][min(looked_up.count(host), len(answers[host])) - 1]
        return [
            (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
            for a in addresses.split(",")
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def playing_public(monkeypatch) -> list[tuple]:
    """Connections to PUBLIC go to 127.0.0.1 (same port); returns every address connected to,
    as the transport asked for it."""
    real, connected = socket.socket.connect, []

    def connect(self, address):
        connected.append(address)
        if address[0] == PUBLIC:
            address = ("127.0.0.1", address[1])
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return connected


# --- the destination -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("https://example.com:99999/", "callback_url_invalid"),
        ("https://example.com:0/", "callback_url_invalid"),
        ("https://example.com:http/", "callback_url_invalid"),
        ("http://exa mple.com/hook", "callback_url_invalid"),
        ("http://example.com/a b", "callback_url_invalid"),
        ("http://[::1/hook", "callback_url_invalid"),
        ("ftp://example.com/", "callback_url_invalid"),
        ("//example.com/", "callback_url_invalid"),
        ("https://example.com:22/", "callback_url_port"),
        ("http://example.com:25/", "callback_url_port"),
        ("https://example.com:1023/", "callback_url_port"),
        ("https://example.com:1/", "callback_url_port"),
    ],
)
def test_urls_with_a_bad_form_or_port_are_refused_before_any_lookup(monkeypatch, url, code):
    looked_up = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: looked_up.append(a) or [])
    with pytest.raises(DestinationRefused) as refused:
        target_parse(url)
    assert refused.value.code == code and looked_up == []


def test_any_port_is_allowed_where_private_destinations_are():
    assert target_parse("http://127.0.0.1:9/hook", any_port=True).port == 9
    with pytest.raises(DestinationRefused):
        target_parse("http://127.0.0.1:99999/hook", any_port=True)


@pytest.mark.parametrize(
    ("url", "host", "port", "path", "host_header"),
    [
        ("https://example.com/hook", "example.com", 443, "/hook", "example.com"),
        ("http://example.com", "example.com", 80, "/", "example.com"),
        ("https://example.com:443/h?x=1", "example.com", 443, "/h?x=1", "example.com"),
        ("https://example.com:8443/h", "example.com", 8443, "/h", "example.com:8443"),
        ("http://example.com:1024/", "example.com", 1024, "/", "example.com:1024"),
        ("https://example.com:65535/", "example.com", 65535, "/", "example.com:65535"),
        ("https://[2001:db8::1]:8443/h", "2001:db8::1", 8443, "/h", "[2001:db8::1]:8443"),
        ("https://bücher.example/ü", "xn--bcher-kva.example", 443, "/%C3%BC", None),
    ],
)
def test_allowed_urls_parse_to_what_is_sent(url, host, port, path, host_header):
    target = target_parse(url)
    assert (target.host, target.port, target.path) == (host, port, path)
    assert target.host_header == (host_header or host)


def test_credentials_in_the_url_are_sent_as_basic_authentication(server):
    receiver = server(ok())
    post(f"http://user:p%40ss@127.0.0.1:{receiver.port}/hook")
    [request] = receiver.requests
    assert request.headers["authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"


def test_a_rebinding_name_is_connected_at_the_address_that_was_checked(server, monkeypatch):
    """The name answers a public address to the first lookup and 127.0.0.1 to any later one:
    a check and a connect that each resolve it would reach loopback."""
    receiver = server(ok())
    looked_up = resolving(monkeypatch, {"rebind.example": [PUBLIC, "127.0.0.1"]})
    connected = playing_public(monkeypatch)
    transport = Transport()
    url = f"http://rebind.example:{receiver.port}/hook"

    answer = post(url, transport=transport, allow_private=False)

    assert answer.status == 200 and answer.address == PUBLIC
    assert looked_up == ["rebind.example"]  # one lookup for the check and the connection
    assert connected == [(PUBLIC, receiver.port)]
    assert receiver.requests[0].headers["host"] == f"rebind.example:{receiver.port}"
    # The next attempt looks again, sees loopback and refuses — the kept-alive connection to
    # the public address is not used for a name that now points elsewhere.
    with pytest.raises(DestinationRefused) as refused:
        post(url, transport=transport, allow_private=False)
    assert refused.value.code == "callback_url_private"
    assert len(receiver.requests) == 1 and connected == [(PUBLIC, receiver.port)]


def test_every_address_of_a_name_is_checked_before_connecting(monkeypatch):
    resolving(monkeypatch, {"mixed.example": [f"{PUBLIC},10.0.0.7"]})
    connected = playing_public(monkeypatch)
    with pytest.raises(DestinationRefused) as refused:
        post("https://mixed.example/hook", allow_private=False)
    assert refused.value.code == "callback_url_private" and "10.0.0.7" in refused.value.message
    assert connected == []


def test_a_name_that_resolves_slowly_costs_the_deadline_at_most(monkeypatch):
    """The lookup never answers until released: the attempt gives up at its deadline, named."""
    release = threading.Event()
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: release.wait(60) and [])
    try:
        with pytest.raises(DeliveryFailed, match="did not resolve within"):
            bounded(
                lambda: post("https://slow-dns.example/hook", transport=Transport(deadline=0.5))
            )
    finally:
        release.set()


# --- bytes -------------------------------------------------------------------------------------


def test_a_gzip_bomb_costs_kilobytes(server):
    """About 1 MB on the wire, 1 GiB inflated: the transport reads at most READ_CAP of it and
    inflates EXCERPT_BYTES; the memory it allocates meanwhile stays under 1 MB."""
    gzip_bomb()  # built before measuring
    receiver = server(bomb())
    tracemalloc.start()
    try:
        answer = post(receiver.url())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 200 and not answer.complete
    assert answer.raw_bytes <= READ_CAP
    assert answer.excerpt == "\0" * EXCERPT_BYTES
    assert peak < 1024 * 1024, f"{peak} bytes allocated"


def test_a_body_is_read_to_its_end_within_the_cap_and_decoded_for_the_excerpt(server):
    text = "accepted, thanks — " * 10
    packed = gzip.compress(text.encode())
    headers = {
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Encoding": "gzip",
        "Content-Length": str(len(packed)),
    }
    receiver = server(lambda s, conn, r, i: conn.sendall(head("200 OK", headers) + packed) or 1)
    answer = post(receiver.url())
    assert answer.complete and answer.raw_bytes == len(packed) and answer.excerpt == text
    assert receiver.requests[0].headers["accept-encoding"] == "identity"


def test_an_encoding_it_does_not_read_is_named_not_decoded(server):
    answer = head("500 Oops", {"Content-Encoding": "br", "Content-Length": "4"}) + b"\x0b\x02\x80x"
    receiver = server(lambda s, conn, r, i: conn.sendall(answer))
    answer = post(receiver.url())
    assert (answer.status, answer.excerpt) == (500, "(br-encoded body, not decoded)")


# --- time --------------------------------------------------------------------------------------


def test_a_receiver_trickling_its_headers_is_cut_at_the_deadline(server):
    """A header byte every 50 ms, for ever: every read succeeds, only the deadline ends it."""
    stop = threading.Event()
    receiver = server(trickle_headers(0.05, stop))
    try:
        with pytest.raises(DeliveryFailed, match="no complete answer within 1 s"):
            bounded(lambda: post(receiver.url(), transport=Transport(deadline=1.0)))
    finally:
        stop.set()


def test_a_body_trickling_after_the_status_is_cut_at_the_deadline_and_the_status_stands(server):
    stop = threading.Event()

    def answer(s, conn, request, index):
        conn.sendall(head("200 OK", {"Content-Length": "1000"}) + b"{")
        while not stop.wait(0.05):
            conn.sendall(b" ")

    receiver = server(answer)
    try:
        answer = bounded(lambda: post(receiver.url(), transport=Transport(deadline=1.0)))
    finally:
        stop.set()
    # Cut (1,000 bytes promised at one per 50 ms would take 50 s); the status stands.
    assert answer.status == 200 and not answer.complete and answer.excerpt.startswith("{")


def test_a_tls_handshake_that_never_ends_is_cut_at_the_deadline():
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects (backlog), never answers
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/hook"
        with pytest.raises(DeliveryFailed, match="no complete answer within 1 s"):
            bounded(lambda: post(url, transport=Transport(deadline=1.0)))


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA and a certificate for ``callbacks.test`` it signed (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=Waypost test CA")  # fmt: skip
    run("req", *ec, "-keyout", "host.key", "-out", "host.csr", "-subj", "/CN=callbacks.test")
    (d / "san.ext").write_text("subjectAltName=DNS:callbacks.test\n")
    run("x509", "-req", "-in", "host.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "host.pem", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return d


def tls_server(server, certificates) -> Hostile:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates / "host.pem", certificates / "host.key")
    return server(ok(), tls=context)


def test_https_to_the_checked_address_verifies_the_name_and_sends_it_as_sni(
    server, certificates, monkeypatch
):
    receiver = tls_server(server, certificates)
    resolving(monkeypatch, {"callbacks.test": ["127.0.0.1"]})
    transport = Transport(ca_file=str(certificates / "ca.pem"))
    answer = post(receiver.url("callbacks.test"), transport=transport)
    assert answer.status == 200 and answer.address == "127.0.0.1"
    assert receiver.sni == ["callbacks.test"]
    assert receiver.requests[0].headers["host"] == f"callbacks.test:{receiver.port}"


def test_a_certificate_for_another_name_is_refused(server, certificates, monkeypatch):
    receiver = tls_server(server, certificates)
    resolving(monkeypatch, {"elsewhere.test": ["127.0.0.1"]})
    transport = Transport(ca_file=str(certificates / "ca.pem"))
    with pytest.raises(DeliveryFailed, match="TLS certificate not valid"):
        post(receiver.url("elsewhere.test"), transport=transport)
    assert receiver.requests == []


# --- redirects and connections -----------------------------------------------------------------


def test_a_redirect_is_an_answer_not_followed(server):
    inside = server(ok())
    location = {"Location": inside.url(), "Content-Length": "0"}
    outside = server(lambda s, conn, r, i: conn.sendall(head("302 Found", location)) or True)
    answer = post(outside.url())
    assert answer.status == 302 and answer.headers["Location"] == inside.url()
    assert inside.connections == 0


def test_a_connection_is_kept_alive_and_replaced_when_the_receiver_closed_it(server):
    kept = server(ok())
    transport = Transport()
    for _ in range(3):
        assert post(kept.url(), transport=transport).status == 200
    assert kept.connections == 1

    # Answers without "Connection: close", then hangs up: each attempt needs a new connection.
    closing = server(lambda s, conn, r, i: conn.sendall(head("204 No Content")) or False)
    for _ in range(3):
        assert post(closing.url(), transport=transport).status == 204
    assert closing.connections == 3 and len(closing.requests) == 3


def test_a_body_over_the_cap_closes_the_connection(server):
    big = b"x" * (READ_CAP + 1)
    receiver = server(ok(big))
    transport = Transport()
    first = post(receiver.url(), transport=transport)
    post(receiver.url(), transport=transport)
    assert not first.complete and first.raw_bytes == READ_CAP
    assert receiver.connections == 2
