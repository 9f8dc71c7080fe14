"""How a GET reaches PNCP: one ``httpx.AsyncClient`` per run, through its public API.

httpx does what the client needs of HTTP: a connection pool, redirects, content-encoding
(gzip), timeouts, and an exception for every failure, including a body that ends before its
``Content-Length`` or its last chunk (``httpx.RemoteProtocolError``). The client maps those
exceptions in one place (``PncpClient._attempt``).

httpcore, under httpx, asks ``sniffio`` which event loop it runs on every time it makes a lock,
an event or a cancellation shield (several per request); without ``sniffio`` installed each of
those is a failed ``import`` that searches ``sys.path`` again. ``sniffio`` is therefore a
dependency of this package (see ``docs/benchmarks.md``, "HTTP client CPU per request").
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

import httpx

from ..config import USER_AGENT
from ._config import ClientConfig

MAX_REDIRECTS = 5
CONNECT_TIMEOUT_MAX = 10.0
"""Seconds to open a connection, at most: a host that does not accept one in that long is down,
whatever the (much longer) time a slow PNCP answer is allowed."""


class HttpClient(Protocol):
    """What the client needs of HTTP: a streamed GET (its status and headers first, then its
    body), and closing. ``httpx.AsyncClient`` is one; tests and benchmarks may wrap it or stand
    in for it."""

    def stream(self, method: str, url: str) -> AbstractAsyncContextManager[httpx.Response]: ...

    async def aclose(self) -> None: ...


def create_http_client(config: ClientConfig) -> httpx.AsyncClient:
    """One connection pool per run, sized for both API families' ceilings (their limiters never
    let more requests fly, so no request waits for a connection)."""
    pool = config.detail.concurrency + config.consulta.concurrency
    return httpx.AsyncClient(
        headers={"user-agent": USER_AGENT},
        timeout=httpx.Timeout(config.timeout, connect=min(CONNECT_TIMEOUT_MAX, config.timeout)),
        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        # The run's settings say where PNCP is; proxy and certificate variables of the host's
        # environment are not consulted.
        trust_env=False,
    )
