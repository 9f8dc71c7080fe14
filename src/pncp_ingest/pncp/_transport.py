"""The one place that chooses how HTTP bytes move.

The client API is always httpx; the transport under it is a single choice made here, so a
faster one (e.g. httpx-aiohttp) can be measured and swapped without touching the client.
"""

from __future__ import annotations

import httpx

from ..config import USER_AGENT, Settings


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """One pooled AsyncClient per run, sized for both API families' ceilings."""
    pool = settings.concurrency + settings.consulta_concurrency
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    timeout = httpx.Timeout(settings.timeout, connect=min(10.0, settings.timeout))
    transport = httpx.AsyncHTTPTransport(limits=limits, retries=0)
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        headers={"accept": "*/*", "user-agent": USER_AGENT},
        follow_redirects=True,
    )
