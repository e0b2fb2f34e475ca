"""A hot standby of a PostgreSQL server, for tests (``DATABASE_REPLICA_URL``).

    with Standby(os.environ["DATABASE_URL"]) as standby:
        standby.url("waypost_x")      # the same database, read-only, on the standby's port
        standby.pause()               # replay stops: the standby shows the past
        standby.resume()
        standby.wait_caught_up()

Made as a real one is: ``pg_basebackup -R`` from the primary (streaming replication; the suite's
PostgreSQL trusts loopback, and ``wal_level = replica`` is PostgreSQL's default), started with
the same server binaries on a free port. As root it runs as the ``postgres`` user, like the
suite's PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from devtools.servers import free_port, wait_until


def _bindir() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_basebackup").exists():
            return candidate
    found = shutil.which("pg_basebackup")
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are not installed")
    return Path(found).parent


class Standby:
    def __init__(self, primary_url: str) -> None:
        server = urlsplit(primary_url)
        self.primary = f"{server.scheme}://{server.netloc}"
        self.user = server.username or "postgres"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="waypost-standby-"))
        self.data = self.dir / "data"
        self.bin = _bindir()
        as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if as_pg:
            shutil.chown(self.dir, "postgres")
        self.as_pg = as_pg
        self._run(
            "pg_basebackup",
            f"--host={server.hostname}",
            f"--port={server.port}",
            f"--username={self.user}",
            f"--pgdata={self.data}",
            "--write-recovery-conf",  # standby.signal and primary_conninfo: a streaming standby
            "--wal-method=stream",
            "--checkpoint=fast",
        )
        with psycopg.connect(f"{self.primary}/postgres", autocommit=True) as conn:
            connections = conn.execute("SHOW max_connections").fetchone()[
                0
            ]  # at least the primary's
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c hot_standby=on "
            f"-c max_connections={connections}"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        wait_until(self._in_recovery, "the standby accepting reads", timeout=30)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_pg, str(self.bin / tool), *args], check=True, capture_output=True)

    def _in_recovery(self) -> bool:
        try:
            return bool(self.query("postgres", "SELECT pg_is_in_recovery()"))
        except psycopg.OperationalError:
            return False

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def query(self, database: str, sql: str):
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=3) as conn:
            return conn.execute(sql).fetchone()[0]

    def pause(self) -> None:
        self.query("postgres", "SELECT pg_wal_replay_pause()")
        wait_until(
            lambda: self.query("postgres", "SELECT pg_get_wal_replay_pause_state()") == "paused",
            "replay paused",
        )

    def resume(self) -> None:
        self.query("postgres", "SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 30) -> None:
        with psycopg.connect(f"{self.primary}/postgres", autocommit=True) as conn:
            target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        wait_until(
            lambda: self.query(
                "postgres", f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            ),
            "the standby caught up with the primary",
            timeout=timeout,
        )

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_pg,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Standby:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
