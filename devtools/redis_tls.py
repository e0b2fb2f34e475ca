"""Redis that speaks TLS only, for tests: Debian's ``redis-server`` (built with TLS) on a free
port of 127.0.0.1 with ``--port 0``, its certificate signed by a throw-away CA that ``openssl``
makes in a temporary directory (gone when it stops).

    with TlsRedis() as redis_tls:
        redis_tls.url      # rediss://127.0.0.1:<port>/0?ssl_cert_reqs=required&ssl_ca_certs=<ca>
        redis_tls.port     # a plain redis:// client there gets no answer
        redis_tls.ca_cert  # the CA that signed the server's certificate

The URL is the form a deployment writes: one URL for ``CELERY_BROKER_URL`` and ``REDIS_URL``,
read alike by kombu (the broker) and redis-py (``core.coordination``). The certificate names
``127.0.0.1`` (and ``localhost``), so hostname checking stays on; clients are not asked for a
certificate (``--tls-auth-clients no``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

import redis

from devtools.servers import free_port, wait_until

HOST = "127.0.0.1"


class TlsRedis:
    def __init__(self, db: int = 0) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="waypost-redis-tls-"))
        self.port = free_port()
        self.db = db
        self.ca_cert = self.dir / "ca.crt"
        self.proc: subprocess.Popen | None = None
        try:
            self._certificates()
            self._start()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        ca = quote(str(self.ca_cert), safe="/")
        return f"rediss://{HOST}:{self.port}/{self.db}?ssl_cert_reqs=required&ssl_ca_certs={ca}"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TlsRedis:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def _certificates(self) -> None:
        """A CA, and a server certificate for 127.0.0.1 that it signed (EC keys: quick)."""
        d, ec = self.dir, ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            "req", "-x509", *ec, "-keyout", d / "ca.key", "-out", self.ca_cert, "-days", "2",
            "-subj", "/CN=Waypost test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        _openssl(
            "req", *ec, "-keyout", d / "server.key", "-out", d / "server.csr",
            "-subj", f"/CN={HOST}",
        )  # fmt: skip
        (d / "server.ext").write_text(
            "\n".join(
                [
                    f"subjectAltName = IP:{HOST}, DNS:localhost",
                    "basicConstraints = critical, CA:FALSE",
                    "keyUsage = critical, digitalSignature, keyEncipherment",
                    "extendedKeyUsage = serverAuth",
                    "subjectKeyIdentifier = hash",
                    "authorityKeyIdentifier = keyid",
                    "",
                ]
            )
        )
        _openssl(
            "x509", "-req", "-in", d / "server.csr", "-CA", self.ca_cert, "-CAkey", d / "ca.key",
            "-CAcreateserial", "-out", d / "server.crt", "-days", "2",
            "-extfile", d / "server.ext",
        )  # fmt: skip

    def _start(self) -> None:
        d = self.dir
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind", HOST,
             "--tls-cert-file", str(d / "server.crt"), "--tls-key-file", str(d / "server.key"),
             "--tls-ca-cert-file", str(self.ca_cert), "--tls-auth-clients", "no",
             "--save", "", "--appendonly", "no", "--dir", str(d),
             "--logfile", str(d / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = self.client()

        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server (TLS) exited:\n" + self.log())
            try:
                return client.ping()
            except redis.RedisError:
                return False

        try:
            wait_until(answers, "redis-server to answer on TLS")
        finally:
            client.close()


def _openssl(*args) -> None:
    done = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"openssl {args[0]} failed:\n{done.stderr}")
