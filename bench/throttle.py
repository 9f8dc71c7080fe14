"""The PNCP simulator behind a load-dependent throttle, for the 429 scenarios of ``make bench``.

The simulator's own ``rate_429`` bursts strike at random, whatever the client does, so no client
can get fewer of them. PNCP's consulta API behaves differently: a client that sends more than it
tolerates gets 429s (HTML, no Retry-After) for everything it sends for a while. This models that
for the detail API: at most ``capacity`` requests in flight; a request arriving when ``capacity``
are already in flight starts a block of ``block_s`` seconds during which every detail request
gets a 429. The server counts what it saw: blocks, seconds blocked, 429s, the most requests that
were in flight at once.

    python bench/throttle.py --per-day 500 --capacity 24 --block-s 1     # prints "listening URL"

``ThrottledSimulator`` runs it like ``SimulatorProcess`` (same control routes, plus ``throttle()``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from pncp_ingest.testing import SimulatorProcess
from pncp_ingest.testing._app import HTML_429, make_app
from pncp_ingest.testing._data import SimulatedPncp

DETAIL_PREFIX = "/api/pncp/v1/orgaos/"


class Throttle:
    def __init__(self, capacity: int, block_s: float) -> None:
        self.capacity, self.block_s = capacity, block_s
        self.in_flight = 0
        self.max_in_flight = 0
        self.blocked_until = 0.0
        self.blocks = 0
        self.rejected = 0

    def stats(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "block_s": self.block_s,
            "blocks": self.blocks,
            "blocked_s": round(self.blocks * self.block_s, 3),
            "rejected_429": self.rejected,
            "max_in_flight": self.max_in_flight,
        }

    def middleware(self) -> Any:
        @web.middleware
        async def throttle(request: web.Request, handler: Any) -> web.StreamResponse:
            if not request.path.startswith(DETAIL_PREFIX):
                return await handler(request)
            now = asyncio.get_running_loop().time()
            self.max_in_flight = max(self.max_in_flight, self.in_flight + 1)
            if now >= self.blocked_until and self.in_flight >= self.capacity:
                self.blocked_until = now + self.block_s
                self.blocks += 1
            if now < self.blocked_until:
                self.rejected += 1
                return web.Response(status=429, body=HTML_429, content_type="text/html", charset="utf-8")
            self.in_flight += 1
            try:
                return await handler(request)
            finally:
                self.in_flight -= 1

        return throttle


async def _serve(args: argparse.Namespace) -> None:
    throttle = Throttle(args.capacity, args.block_s)
    app = make_app(SimulatedPncp(args.seed, per_day=args.per_day, big_items=args.big_items))
    app.middlewares.append(throttle.middleware())
    app.router.add_get("/_bench/throttle", lambda request: web.json_response(throttle.stats()))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"listening http://127.0.0.1:{port}/api", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    await loop.connect_read_pipe(lambda: _Eof(stop), sys.stdin)  # the parent closing stdin stops us
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


class _Eof(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def eof_received(self) -> bool:
        self.stop.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


class ThrottledSimulator(SimulatorProcess):
    """``SimulatorProcess`` serving through :class:`Throttle` (bench only)."""

    def __init__(self, *, capacity: int, block_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.capacity, self.block_s = capacity, block_s

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--seed",
            str(self.seed),
            "--per-day",
            str(self.per_day),
            "--capacity",
            str(self.capacity),
            "--block-s",
            str(self.block_s),
        ]
        return cmd + (["--big-items"] if self.big_items else [])

    def throttle(self) -> dict[str, Any]:
        return self._call("GET", "/_bench/throttle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-day", type=int, default=500)
    parser.add_argument("--big-items", action="store_true")
    parser.add_argument("--capacity", type=int, default=24)
    parser.add_argument("--block-s", type=float, default=1.0)
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
