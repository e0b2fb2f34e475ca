"""One callback attempt over HTTP, bounded in destination, time and bytes.

A callback receiver belongs to a tenant, not to Waypost: anything it answers is hostile until
read. The rules, each with the attack it answers:

* **Destination.** A URL is http(s) with a host and a port in 1-65535 (``target_parse``); the
  port must be one of ``ALLOWED_PORTS`` — 80, 443 or 1024-65535, where web servers and
  application servers listen; the privileged ports between them are SSH, mail, DNS, LDAP and
  the like, which no webhook receiver uses (any port where private destinations are allowed,
  as on a developer's machine). The host is resolved **once** per attempt
  (``addresses_resolve``), every address must be public (global unicast, also for the IPv4
  address an IPv6 one carries) unless private destinations are allowed, and the connection goes
  to those checked addresses, in the resolver's order: no second resolution, so a name cannot
  answer a public address to the check and ``127.0.0.1`` to the connect (DNS rebinding). The
  ``Host`` header, TLS SNI and certificate verification (requests' CA bundle) use the name.
  Environment proxies are not used (a proxy would resolve the name again). Credentials in the
  URL (``https://user:pass@host/``) are sent as Basic authentication.
* **Time.** One ``DEADLINE`` (10 s) for the whole attempt: resolution, connecting (at most
  ``CONNECT_TIMEOUT`` per address), TLS, sending, the status line, the headers and the body.
  A watchdog thread shuts the socket down when it passes, so a receiver trickling a byte a second
  holds a deliverer thread no longer. No status and headers by the deadline: the attempt failed
  (``DeliveryFailed``, a network error: retried). Once the status arrived, the body is read
  until the deadline at most and the status stands.
* **Bytes.** The body is streamed, raw (``Accept-Encoding: identity`` is asked for, and a
  ``Content-Encoding`` the receiver sends anyway is not decoded while reading), and reading
  stops after ``READ_CAP`` (64 KiB). Only the first ``EXCERPT_BYTES`` (4 KiB) of the decoded body
  become the excerpt: gzip or deflate is inflated that far and no further, so a 1 MB gzip bomb
  that inflates to 1 GiB costs 64 KiB of reading and 4 KiB of inflating. Headers are bounded
  by ``http.client`` (100 lines of at most 64 KiB).
* **No redirects.** A 3xx is an answer like any other, with its ``Location``; what it means
  for the event is the caller's rule (``callbacks.services``).
* **Connections.** Kept alive per ``Transport`` (one per deliverer thread) only when the last
  answer was read to its end within the cap and the deadline, and reused only to an address the
  current attempt's check accepted again; anything else is closed after the attempt.
"""

from __future__ import annotations

import base64
import contextlib
import heapq
import http.client
import ipaddress
import itertools
import re
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass
from email.message import Message
from urllib.parse import quote, unquote, urlsplit

import requests.certs
from urllib3.util import wait_for_read

DEADLINE = 10.0
CONNECT_TIMEOUT = 3.0
READ_CAP = 64 * 1024
EXCERPT_BYTES = 4 * 1024
ALLOWED_PORTS = "80, 443 or 1024-65535"
KEEPALIVE_IDLE = 30.0  # a kept connection idle longer is closed, not reused
KEEPALIVE_MAX = 8  # connections kept per Transport (per deliverer thread)

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_BAD_PATH_CHARS = re.compile(r"[\x00-\x20\x7f]")
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"  # as requests' requote_uri: what a URL may hold stays
NAT64 = (ipaddress.ip_network("64:ff9b::/96"),)  # the well-known prefix: IPv4 in the low bits
IPV6_REFUSED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "::/96",  # IPv4-compatible (deprecated): ::7f00:1 is 127.0.0.1
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): a translator inside the network
        "fec0::/10",  # site-local (deprecated): a private network
    )
)


class DestinationRefused(Exception):
    """A URL Waypost must not call: ``code`` is the API's (``callback_url_invalid``,
    ``callback_url_port``, ``callback_url_private``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


class DeliveryFailed(Exception):
    """No answer: the name did not resolve, no connection, TLS, a broken or late answer. The
    message never quotes what Waypost sent (it holds no header)."""


# --- the destination -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII (IDNA), an IP address without brackets, or a DNS name
    port: int
    path: str  # path and query, as sent
    authorization: str | None = None

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def port_allowed(port: int) -> bool:
    return port in (80, 443) or 1024 <= port <= 65535


def target_parse(url: str, *, any_port: bool = False) -> Target:
    """Parse and check a callback URL without resolving it: scheme, host, port range, an
    allowed port (any, with ``any_port``: where private destinations are allowed too), a path
    ``http.client`` will send. Raises ``DestinationRefused``."""
    invalid = DestinationRefused(
        "The callback URL must be an http(s) URL with a host, and a port in 1-65535.",
        "callback_url_invalid",
    )
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:  # a port out of range or not a number, a broken [IPv6] literal
        raise invalid from None
    if parts.scheme not in ("http", "https") or not host or port == 0:
        raise invalid
    if _BAD_PATH_CHARS.search(url):
        raise invalid
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = _dns_name(host)
        if host is None:
            raise invalid from None
    port = port or (443 if parts.scheme == "https" else 80)
    if not any_port and not port_allowed(port):
        raise DestinationRefused(
            f"The callback URL's port must be {ALLOWED_PORTS}, not {port}.", "callback_url_port"
        )
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, quote(path, safe=_PATH_SAFE), authorization)


def _dns_name(host: str) -> str | None:
    """The name in ASCII when it is a syntactically valid DNS name (numeric spellings such as
    ``2130706433`` included: the resolver reads them as addresses, and the check sees those)."""
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return ascii_host


def address_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global unicast, and so is any IPv4 address it carries (IPv4-mapped, NAT64, 6to4,
    Teredo): ``64:ff9b::7f00:1`` counts as global
    to ``ipaddress`` but names 127.0.0.1. The prefixes of ``IPV6_REFUSED`` (IPv4-compatible,
    IPv4-translated, local-use NAT64, site-local) are refused outright."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        if any(address in net for net in IPV6_REFUSED):
            return False
        embedded = [address.ipv4_mapped, address.sixtofour]
        if address.teredo:
            embedded.append(address.teredo[1])
        if any(address in net for net in NAT64):
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(address_public(v4) for v4 in embedded if v4 is not None)
    return True


def addresses_resolve(target: Target, *, allow_private: bool, timeout: float) -> list[tuple]:
    """Resolve the host once and check every address; returns ``(family, sockaddr)`` pairs to
    connect to. ``DestinationRefused`` when any address is not public (unless
    ``allow_private``), ``DeliveryFailed`` when the name does not resolve within ``timeout``.

    The resolver runs in a thread of its own so that a slow DNS server (the tenant's) costs the
    caller ``timeout`` at most; the thread ends with the system resolver's own timeout."""
    done, box = threading.Event(), {}

    def resolve() -> None:
        try:
            box["infos"] = socket.getaddrinfo(
                target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except (OSError, UnicodeError) as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=resolve, name="callback-resolve", daemon=True).start()
    if not done.wait(max(0.0, timeout)):
        raise DeliveryFailed(f"{target.host} did not resolve within {timeout:.1f} s")
    if "error" in box:
        raise DeliveryFailed(f"{target.host} does not resolve")
    found = []
    for family, _type, _proto, _name, sockaddr in box["infos"]:
        address = ipaddress.ip_address(sockaddr[0].split("%", 1)[0])
        if not allow_private and not address_public(address):
            raise DestinationRefused(
                f"The callback URL resolves to {address}, a loopback, link-local, private or "
                "reserved address.",
                "callback_url_private",
            )
        if (family, sockaddr) not in found:
            found.append((family, sockaddr))
    if not found:
        raise DeliveryFailed(f"{target.host} does not resolve")
    return found


# --- the watchdog --------------------------------------------------------------------------------


class _Watch:
    __slots__ = ("deadline", "done", "fired", "sock")

    def __init__(self, deadline: float) -> None:
        self.deadline, self.sock, self.fired, self.done = deadline, None, False, False


class _Watchdog:
    """One thread for the process: at each watched deadline it shuts the attempt's socket down
    (``shutdown``, not ``close``: the owner's blocked read returns, and the owner closes it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: float) -> _Watch:
        watch = _Watch(deadline)
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="callback-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return watch

    def attach(self, watch: _Watch, sock: socket.socket) -> None:
        with self._cond:
            watch.sock = sock
            if watch.fired:
                _shut(sock)

    def release(self, watch: _Watch) -> None:
        with self._cond:
            watch.done, watch.sock = True, None

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                watch = heapq.heappop(self._heap)[2]
                watch.fired = True
                if watch.sock is not None:
                    _shut(watch.sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket's own shutdown, also for an SSLSocket: its TLS state stays the owner's.
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_watchdog = _Watchdog()


# --- the attempt ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    excerpt: str  # the decoded start of the body (at most EXCERPT_BYTES of it)
    raw_bytes: int  # bytes of body read, as received (at most READ_CAP)
    complete: bool  # the body was read to its end
    address: str  # the address connected to


class _Kept:
    __slots__ = ("conn", "sockaddr", "used_at")

    def __init__(self, sockaddr, conn: http.client.HTTPConnection) -> None:
        self.sockaddr, self.conn, self.used_at = sockaddr, conn, time.monotonic()


class _Stale(Exception):
    """A kept connection the receiver had closed meanwhile: the request never reached it."""


class Transport:
    """Posts callbacks under the rules above. Not thread-safe: one per deliverer thread.
    ``deadline`` overrides ``DEADLINE`` (tests)."""

    def __init__(self, *, ca_file: str | None = None, deadline: float | None = None) -> None:
        self.deadline = deadline if deadline is not None else DEADLINE
        self._tls = ssl.create_default_context(cafile=ca_file or requests.certs.where())
        self._kept: dict[tuple, _Kept] = {}

    def post(
        self, target: Target, *, body: bytes, headers: dict[str, str], allow_private: bool
    ) -> Answer:
        """One attempt to ``target`` (from ``target_parse``). Raises ``DestinationRefused``
        (never call it) or ``DeliveryFailed`` (no answer; worth retrying)."""
        deadline = time.monotonic() + self.deadline
        addresses = addresses_resolve(
            target, allow_private=allow_private, timeout=deadline - time.monotonic()
        )
        headers = {
            **headers,
            "Host": target.host_header,
            "Accept-Encoding": "identity",
            "Content-Length": str(len(body)),
        }
        if target.authorization:
            headers["Authorization"] = target.authorization
        key = (target.scheme, target.host, target.port)
        watch = _watchdog.watch(deadline)
        try:
            kept = self._kept.pop(key, None)
            if kept is not None and self._reusable(kept, addresses):
                try:
                    return self._exchange(
                        target, key, kept.conn, kept.sockaddr, body, headers, watch, reused=True
                    )
                except _Stale:
                    pass  # once more, on a new connection
            elif kept is not None:
                kept.conn.close()
            conn, sockaddr = self._connect(target, addresses, watch)
            return self._exchange(target, key, conn, sockaddr, body, headers, watch, reused=False)
        finally:
            _watchdog.release(watch)

    @staticmethod
    def _reusable(kept: _Kept, addresses: list[tuple]) -> bool:
        sock = kept.conn.sock
        return (
            sock is not None
            and kept.sockaddr in [sockaddr for _, sockaddr in addresses]
            and time.monotonic() - kept.used_at < KEEPALIVE_IDLE
            and not wait_for_read(sock, timeout=0.0)  # readable while idle: closed, or garbage
        )

    def _connect(self, target: Target, addresses: list[tuple], watch: _Watch):
        """A connection to the first of the checked addresses that answers, TLS included."""
        errors = []
        for family, sockaddr in addresses:
            remaining = watch.deadline - time.monotonic()
            if remaining <= 0:
                break
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            try:
                sock.settimeout(min(CONNECT_TIMEOUT, remaining))
                sock.connect(sockaddr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if target.scheme == "https":
                    sock = self._tls.wrap_socket(
                        sock, server_hostname=target.host, do_handshake_on_connect=False
                    )
                _watchdog.attach(watch, sock)  # the handshake is inside the deadline too
                sock.settimeout(max(0.001, watch.deadline - time.monotonic()))
                if target.scheme == "https":
                    sock.do_handshake()
            except OSError as exc:
                sock.close()
                if watch.fired:
                    raise DeliveryFailed(self._late()) from None
                errors.append(f"{sockaddr[0]}: {_describe(exc)}")
                continue
            conn = http.client.HTTPConnection(target.host, target.port)
            conn.auto_open = 0  # never connects by itself: that would resolve the name again
            conn.sock = sock
            return conn, sockaddr
        if watch.fired or not errors:
            raise DeliveryFailed(self._late())
        raise DeliveryFailed("no connection: " + "; ".join(errors)[:400])

    def _exchange(self, target, key, conn, sockaddr, body, headers, watch, *, reused) -> Answer:
        """Send, read the status and headers, then the body within the caps."""
        _watchdog.attach(watch, conn.sock)
        try:
            conn.sock.settimeout(max(0.001, watch.deadline - time.monotonic()))
            conn.request("POST", target.path, body=body, headers=headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            conn.close()
            if reused and isinstance(exc, ConnectionError) and not watch.fired:
                raise _Stale from exc
            raise DeliveryFailed(self._late() if watch.fired else _describe(exc)) from None
        if watch.fired:  # the shutdown reads as the end of the headers: they were cut
            conn.close()
            raise DeliveryFailed(self._late())
        raw, complete = self._read_body(response)
        complete = complete and not watch.fired
        if complete and not response.will_close and conn.sock is not None:
            self._keep(key, sockaddr, conn)
        else:
            response.close()
            conn.close()
        return Answer(
            status=response.status,
            headers=response.msg,
            excerpt=_excerpt(raw, response.msg),
            raw_bytes=len(raw),
            complete=complete,
            address=sockaddr[0],
        )

    @staticmethod
    def _read_body(response: http.client.HTTPResponse) -> tuple[bytes, bool]:
        """At most READ_CAP bytes, as received, and whether that was the whole body. A broken
        or late body ends the reading; the status stands."""
        raw = bytearray()
        try:
            chunk = b"-"
            while chunk and len(raw) < READ_CAP:
                chunk = response.read1(min(16 * 1024, READ_CAP - len(raw)))
                raw += chunk
            if chunk:
                return bytes(raw), False  # more than the cap: closed unread
            response.read()  # the end: closes the response; the connection may be kept
        except (OSError, http.client.HTTPException, ValueError):
            return bytes(raw), False
        return bytes(raw), response.length in (None, 0)

    def _keep(self, key, sockaddr, conn) -> None:
        if len(self._kept) >= KEEPALIVE_MAX:
            oldest = min(self._kept, key=lambda k: self._kept[k].used_at)
            self._kept.pop(oldest).conn.close()
        self._kept[key] = _Kept(sockaddr, conn)

    def _late(self) -> str:
        return f"no complete answer within {self.deadline:g} s"


def _describe(exc: BaseException) -> str:
    """An error for the attempt's record. Never the text of a ValueError: http.client quotes
    the offending header value in it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not valid: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ValueError):
        return f"{type(exc).__name__}: the request could not be sent"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def _excerpt(raw: bytes, headers: Message) -> str:
    """The body's start for people to read: decoded as far as EXCERPT_BYTES, never further."""
    encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding in ("identity", ""):
        data = raw[:EXCERPT_BYTES]
    elif encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        try:
            data = zlib.decompressobj(wbits).decompress(raw, EXCERPT_BYTES)
        except zlib.error:
            return f"({encoding} body that does not decompress)"
    else:
        return f"({encoding}-encoded body, not decoded)"
    charset = headers.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")
