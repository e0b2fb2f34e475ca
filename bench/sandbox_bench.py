"""Sandbox throughput: send requests/s and webhooks/s, with a ratio to a baseline.

    .venv/bin/python bench/sandbox_bench.py [--duration 10] [--connections 32]

Starts, on free loopback ports: the sandbox (``python -m sandbox``) and a lean webhook sink
(``bench/sink.py``). Then, in the same session:

1. baseline: wrk against ``GET /_sandbox/ping`` (the same server doing no work);
2. sends: wrk posting Meta-shaped template sends (``bench/send.lua``), every one accepted and
   each producing sent/delivered/read webhooks to the sink;
3. webhooks: status events the sink received per second, from first to last.

Goal (issue 3): >= 3,000 send requests/s and webhooks at the same rate, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, token: str = "bench") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def wait_up(url: str) -> None:
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "wrk"],
            check=True,
            env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
        )
        return shutil.which("wrk") or "wrk"
    raise SystemExit("wrk is needed: sudo apt-get install wrk")


def run_wrk(
    wrk: str, url: str, duration: int, connections: int, script: str | None = None
) -> float:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        print(f"  warning: {non2xx.group(1)} non-2xx responses")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--webhook-batch-max",
        type=int,
        default=50,
        help="statuses per webhook POST at most (1 = never batch)",
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    sb_port, sink_port = free_port(), free_port()
    sb, sink = f"http://127.0.0.1:{sb_port}", f"http://127.0.0.1:{sink_port}"
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "config.settings.local"}
    procs = [
        subprocess.Popen([PY, "-m", "bench.sink", "--port", str(sink_port)], cwd=ROOT, env=env),
        subprocess.Popen(
            [
                PY,
                "-m",
                "sandbox",
                "--open-control",
                "--port",
                str(sb_port),
                "--webhook-url",
                f"{sink}/hook",
                "--app-secret",
                "bench-secret",
                "--approve-after",
                "0",
                "--default-mps",
                "0",
                "--seed",
                "1",
                "--webhook-batch-max",
                str(args.webhook_batch_max),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        ),
    ]
    try:
        wait_up(f"{sb}/_sandbox/ping")
        wait_up(f"{sink}/count")
        http(
            "POST",
            f"{sb}/v23.0/bench-waba/message_templates",
            {
                "name": "order_update",
                "language": "en_US",
                "category": "UTILITY",
                "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped."}],
            },
        )
        http(
            "POST",
            f"{sb}/_sandbox/numbers",
            {"phone_number_id": "bench-phone", "waba_id": "bench-waba", "mps": 0},
        )
        print(
            f"sandbox bench: {args.duration}s per run, {args.connections} connections, "
            f"{os.cpu_count()} cores, webhook batches of <= {args.webhook_batch_max}"
        )
        baseline = run_wrk(wrk, f"{sb}/_sandbox/ping", args.duration, args.connections)
        print(f"  baseline GET /_sandbox/ping      {baseline:9.0f} req/s")
        http("POST", f"{sb}/_sandbox/reset")
        http("POST", f"{sink}/reset")
        sends = run_wrk(
            wrk,
            f"{sb}/v23.0/bench-phone/messages",
            args.duration,
            args.connections,
            str(ROOT / "bench" / "send.lua"),
        )
        for _ in range(600):  # let the webhook backlog drain
            stats = http("GET", f"{sb}/_sandbox/stats")
            if stats["webhooks"]["pending"] == 0:
                break
            time.sleep(0.1)
        counts = http("GET", f"{sink}/count")
        span = max(counts["last"] - counts["first"], 1e-9)
        hooks = counts["events"] / span
        print(
            f"  POST /{{version}}/{{id}}/messages   {sends:9.0f} req/s   "
            f"(ratio to baseline {sends / baseline:.2f}; accepted {stats['accepted']}, "
            f"rejected {sum(stats['rejected'].values())})"
        )
        print(
            f"  status webhooks emitted         {hooks:9.0f} events/s "
            f"({counts['events']} events in {counts['posts']} signed POSTs over {span:.1f}s; "
            f"{counts['events'] / max(stats['accepted'], 1):.2f} per message)"
        )
        ok = sends >= 3000 and hooks >= 3000
        print(f"  goal >= 3,000 req/s and >= 3,000 webhooks/s: {'met' if ok else 'NOT met'}")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
