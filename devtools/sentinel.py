"""Redis with failover, for tests: a primary, a replica and a sentinel watching them
(Debian's ``redis-server`` and ``redis-sentinel``; ``scripts/with-services.sh`` installs them).

    with SentinelRedis() as redis_ha:
        redis_ha.url            # sentinel://127.0.0.1:<sentinel port>/0
        redis_ha.stop_primary() # the sentinel promotes the replica
        redis_ha.primary_port() # where the sentinels say the primary is now

One sentinel with a quorum of one and a one-second down-after: a failover takes a few seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from devtools.servers import free_port

MASTER = "mymaster"


class SentinelRedis:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="waypost-sentinel-"))
        self.ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
        self.procs: dict[str, subprocess.Popen] = {}
        primary, replica = self.ports["primary"], self.ports["replica"]
        self._server("primary", [])
        self._server("replica", ["--replicaof", "127.0.0.1", str(primary)])
        conf = self.dir / "sentinel.conf"  # the sentinel rewrites it: a file of its own
        conf.write_text(
            "\n".join(
                [
                    f"port {self.ports['sentinel']}",
                    "bind 127.0.0.1",
                    f"dir {self.dir}",
                    f"sentinel monitor {MASTER} 127.0.0.1 {primary} 1",
                    f"sentinel down-after-milliseconds {MASTER} 1000",
                    f"sentinel failover-timeout {MASTER} 5000",
                    "",
                ]
            )
        )
        binary = shutil.which("redis-sentinel")
        args = [binary, str(conf)] if binary else ["redis-server", str(conf), "--sentinel"]
        self.procs["sentinel"] = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait(lambda: self._replica_in_sync(replica), "the replica in sync")
        self._wait(lambda: self.primary_port() == primary, "the sentinel watching the primary")

    @property
    def url(self) -> str:
        return f"sentinel://127.0.0.1:{self.ports['sentinel']}/0"

    def primary_port(self) -> int | None:
        try:
            client = redis.Redis(port=self.ports["sentinel"], socket_timeout=1)
            found = client.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None

    def stop_primary(self) -> None:
        """SIGKILL the primary (no shutdown save: as a machine lost), and wait for the sentinel
        to name the replica primary."""
        self.procs.pop("primary").kill()
        replica = self.ports["replica"]
        self._wait(lambda: self.primary_port() == replica, "the failover to the replica", 30)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> SentinelRedis:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _server(self, name: str, extra: list[str]) -> None:
        port = self.ports[name]
        self.procs[name] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _replica_in_sync(self, port: int) -> bool:
        try:
            info = redis.Redis(port=port, socket_timeout=1).info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    @staticmethod
    def _wait(condition, what: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.2)
