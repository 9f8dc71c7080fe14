"""A fault-injecting HTTP proxy in front of a real S3 server, for tests and benchmarks.

For a seeded share of requests it answers ``503 SlowDown`` (S3's XML error) without forwarding,
or forwards the request, lets S3 carry it out, and drops the connection before any response
byte: the client cannot know whether its write happened. Every other request is relayed as is
(the ``Host`` header is kept, so SigV4 signatures still verify upstream)::

    with S3FaultProxy("http://127.0.0.1:8333", slowdown=0.1, drop=0.1, seed=1) as proxy:
        store = open_store("s3://bucket/bronze", s3_endpoint=proxy.url)
        ...
        proxy.stats  # {"forwarded": ..., "slowdown": ..., "dropped": ...}

It runs its own event loop in a daemon thread, so a synchronous test can point a CLI
subprocess at ``proxy.url`` while it is up. Faults can be changed at any time (``set_faults``).
"""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import threading
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

__all__ = ["S3FaultProxy"]

# Hop-by-hop headers, and the ones aiohttp recomputes for the body it sends.
_SKIP_REQUEST = {"connection", "keep-alive", "transfer-encoding", "expect", "content-length", "te", "upgrade"}
_SKIP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}

SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>fault-proxy</RequestId></Error>"
)


class S3FaultProxy:
    """``slowdown`` and ``drop`` are shares of requests (0..1, their sum at most 1), drawn from ``seed``."""

    def __init__(
        self,
        upstream: str,
        *,
        slowdown: float = 0.0,
        drop: float = 0.0,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.host, self.port = host, port
        self.url = ""
        self.stats = {"forwarded": 0, "slowdown": 0, "dropped": 0}
        self._rng = random.Random(seed)
        self._slowdown = self._drop = 0.0
        self._aimed: list[tuple[str, str | None, str]] = []
        self.set_faults(slowdown=slowdown, drop=drop)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    def fail_next(self, fate: str, *, method: str | None = None, path_contains: str = "") -> None:
        """Give ``fate`` (``"slowdown"`` or ``"dropped"``) to the next request with this method
        whose path holds ``path_contains``, whatever the shares say (for a test to aim at one step)."""
        if fate not in ("slowdown", "dropped"):
            raise ValueError(f"unknown fate {fate!r}: use 'slowdown' or 'dropped'")
        self._aimed.append((fate, method, path_contains))

    def set_faults(self, *, slowdown: float = 0.0, drop: float = 0.0) -> None:
        """Change the fault shares for the requests that arrive from now on."""
        if slowdown < 0 or drop < 0 or slowdown + drop > 1:
            raise ValueError(f"fault shares must be >= 0 and sum to at most 1 (slowdown={slowdown}, drop={drop})")
        self._slowdown, self._drop = slowdown, drop

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> S3FaultProxy:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve(ready))
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
                ready.set()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="s3-fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10) or failure:
            raise RuntimeError(f"the S3 fault proxy did not start: {failure[0] if failure else 'timed out'}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
        self._loop = self._thread = self._stopped = None

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the proxy -------------------------------------------------------------------------

    async def _serve(self, ready: threading.Event) -> None:
        self._stopped = asyncio.Event()
        # No decompression, no cookies: relay bytes as they are.
        async with aiohttp.ClientSession(auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()) as session:
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/{tail:.*}", functools.partial(self._handle, session))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            listener = socket.create_server((self.host, self.port))
            self.port = listener.getsockname()[1]
            await web.SockSite(runner, listener).start()
            self.url = f"http://{self.host}:{self.port}"
            ready.set()
            try:
                await self._stopped.wait()
            finally:
                await runner.cleanup()

    def _draw(self, request: web.Request) -> str:
        for aimed in self._aimed:
            fate, method, path = aimed
            if method in (None, request.method) and path in request.path:
                self._aimed.remove(aimed)
                return fate
        roll = self._rng.random()
        if roll < self._slowdown:
            return "slowdown"
        if roll < self._slowdown + self._drop:
            return "dropped"
        return "forwarded"

    async def _handle(self, session: aiohttp.ClientSession, request: web.Request) -> web.StreamResponse:
        fate = self._draw(request)
        self.stats[fate] += 1
        body = await request.read()
        if fate == "slowdown":
            return web.Response(status=503, body=SLOWDOWN_BODY, content_type="application/xml")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_REQUEST}
        async with session.request(
            request.method,
            URL(self.upstream + request.raw_path, encoded=True),
            headers=headers,
            data=body if body or request.method in ("PUT", "POST") else None,
            allow_redirects=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        ) as upstream:
            payload = await upstream.read()
            status, upstream_headers = upstream.status, upstream.headers
        if fate == "dropped":
            # S3 carried the request out; its answer never reaches the client.
            if request.transport is not None:
                request.transport.abort()
            return web.Response()  # goes nowhere: the connection is gone
        response = web.StreamResponse(status=status)
        for name, value in upstream_headers.items():
            if name.lower() not in _SKIP_RESPONSE:
                response.headers.add(name, value)
        response.content_length = len(payload) if request.method != "HEAD" else _length(upstream_headers)
        await response.prepare(request)
        if request.method != "HEAD":
            await response.write(payload)
        await response.write_eof()
        return response


def _length(headers: Any) -> int | None:
    value = headers.get("Content-Length")
    return int(value) if value is not None else None
