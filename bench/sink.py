"""A lean webhook receiver for benchmarks: answers 200 and counts status events.

python -m bench.sink --port 8026        GET /count -> {"posts", "events", "first", "last"}
"""

import argparse
import json
import time

from aiohttp import web

counts = {"posts": 0, "events": 0, "first": None, "last": None}


async def receive(request: web.Request) -> web.Response:
    body = await request.read()
    now = time.monotonic()
    counts["posts"] += 1
    counts["events"] += body.count(b'"status":')
    counts["first"] = counts["first"] or now
    counts["last"] = now
    return web.Response(text="ok")


async def count(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps(counts), content_type="application/json")


async def reset(request: web.Request) -> web.Response:
    counts.update(posts=0, events=0, first=None, last=None)
    return web.Response(text=json.dumps(counts), content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8026)
    args = parser.parse_args()
    app = web.Application()
    app.add_routes(
        [web.post("/hook", receive), web.get("/count", count), web.post("/reset", reset)]
    )
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
