"""PgBouncer in front of a PostgreSQL server, for tests and benchmarks (Debian's ``pgbouncer``;
``scripts/with-services.sh`` installs it).

    with PgBouncer(postgres_url, pool_mode="transaction", pool_size=2) as bouncer:
        bouncer.url("waypost_test")   # postgres://postgres@127.0.0.1:<port>/waypost_test

Trust authentication on loopback, as the suite's PostgreSQL has; every database of the server
is reachable under its own name. As root it runs as the ``postgres`` user (PgBouncer refuses
root), like the suite's PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from devtools.servers import free_port


class PgBouncer:
    def __init__(self, postgres_url: str, *, pool_mode: str = "transaction", pool_size: int = 2):
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        server = urlsplit(postgres_url)
        self.user = server.username or "postgres"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="waypost-pgbouncer-"))
        (self.dir / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "\n".join(
                [
                    "[databases]",
                    f"* = host={server.hostname} port={server.port}",
                    "[pgbouncer]",
                    "listen_addr = 127.0.0.1",
                    f"listen_port = {self.port}",
                    f"unix_socket_dir = {self.dir}",
                    "auth_type = trust",
                    f"auth_file = {self.dir / 'users.txt'}",
                    f"pool_mode = {pool_mode}",
                    f"default_pool_size = {pool_size}",
                    "max_client_conn = 500",
                    # application_name is PgBouncer's own; psycopg sends no other parameter.
                    "ignore_startup_parameters = extra_float_digits,options",
                    f"logfile = {self.dir / 'pgbouncer.log'}",
                    f"pidfile = {self.dir / 'pgbouncer.pid'}",
                    *_without_prepared_statements(binary),
                    "",
                ]
            )
        )
        as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
        if as_user:
            shutil.chown(self.dir, "postgres")
            for path in self.dir.iterdir():
                shutil.chown(path, "postgres")
        self.proc = subprocess.Popen(
            [binary, *as_user, str(self.dir / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("pgbouncer did not start:\n" + self.log()) from None
                time.sleep(0.1)

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _without_prepared_statements(binary: str) -> list[str]:
    """PgBouncer 1.21 and newer can track protocol-level prepared statements (1.22 does by
    default); the tests are about a pooler that cannot — the common case, and the one a
    deployment must survive — so it is switched off where it exists."""
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    digits = version.split()[1] if len(version.split()) > 1 else "0"
    major_minor = tuple(int(part) for part in digits.split(".")[:2] if part.isdigit())
    return ["max_prepared_statements = 0"] if major_minor >= (1, 21) else []
