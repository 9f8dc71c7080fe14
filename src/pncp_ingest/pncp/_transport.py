"""The one place that chooses how HTTP bytes move.

The client speaks httpx (``httpx.Request`` / ``httpx.Response`` and httpx's transport API, every
failure an ``httpx`` exception); the transport under it is one setting, ``PNCP_HTTP_TRANSPORT``:

- ``aiohttp`` (default): the aiohttp transport of the ``httpx-aiohttp`` package (its session,
  connector and error mapping), reading each body in one call. Measured with
  ``bench/transport.py`` (the simulator at 0 ms, 32 in flight, 2-core machine): ~0.22 ms of
  client CPU per request, against ~2.3 ms for httpx's own transport (httpcore's pool does
  O(connections) work per request, and without ``sniffio`` installed it retries a failing
  ``import sniffio`` on every request); bare aiohttp is ~0.10 ms.
- ``httpx``: httpx's own transport (httpcore), kept for comparison and as a fallback.

:class:`HttpGetter` sends GETs straight to the transport. ``httpx.AsyncClient`` would add, per
request, URL merging, cookie extraction, auth and event-hook plumbing this client never uses
(~0.1 ms of CPU per request, measured the same way); redirects and content-encoding, the parts
of it we want, are handled here and by ``httpx.Response``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol
from urllib.parse import urljoin

import httpx

from ..config import USER_AGENT
from ._config import ClientConfig

TRANSPORTS = ("aiohttp", "httpx")
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpClient(Protocol):
    """What the client needs from HTTP: a GET whose response body is read, and closing."""

    async def get(self, url: str) -> httpx.Response: ...

    async def aclose(self) -> None: ...


class HttpGetter:
    """GET over one pooled httpx transport: headers, timeouts, redirects; the body is read."""

    def __init__(self, transport: httpx.AsyncBaseTransport, timeout: httpx.Timeout, headers: dict[str, str]) -> None:
        self.transport = transport
        self._extensions = {"timeout": timeout.as_dict()}
        self._headers = headers

    async def get(self, url: str) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            request = httpx.Request("GET", url, headers=self._headers, extensions=self._extensions)
            response = await self.transport.handle_async_request(request)
            response.request = request  # as AsyncClient does; httpx's own transport leaves it unset
            try:
                await response.aread()
            finally:
                await response.aclose()
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            url = urljoin(str(request.url), location)
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects", request=request)

    async def aclose(self) -> None:
        await self.transport.aclose()


def create_http_client(config: ClientConfig) -> HttpGetter:
    """One pooled transport per run, sized for both API families' ceilings."""
    pool = config.detail.concurrency + config.consulta.concurrency
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    timeout = httpx.Timeout(config.timeout, connect=min(10.0, config.timeout))
    headers = {"accept": "*/*", "accept-encoding": "gzip, deflate", "user-agent": USER_AGENT}
    return HttpGetter(create_transport(config.transport, limits), timeout, headers)


def create_transport(name: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if name == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, retries=0)
    if name == "aiohttp":
        return _AiohttpTransport(limits=limits, trust_env=False)
    raise ValueError(f"unknown HTTP transport {name!r}: use one of {', '.join(TRANSPORTS)}")


def _aiohttp_transport_class() -> type[httpx.AsyncBaseTransport]:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport
    from httpx_aiohttp.transport import map_aiohttp_exceptions

    class AiohttpTransportEager(AiohttpTransport):
        """httpx-aiohttp's transport (its session, connector and error mapping), reading each body
        at once and with aiohttp's errors told apart correctly.

        - The body is read in one call into an already-read ``httpx.Response`` (httpx still
          decodes any content-encoding), instead of streamed through two async iterators: every
          response here is read whole anyway, and this is about a fifth of the transport's CPU.
        - httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` (a dropped connection, a
          server that closed it) to ``httpx.ConnectTimeout``; here only real timeouts are
          timeouts, and the rest are connection errors (``httpx.ConnectError`` / ``ReadError``).
        """

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if not isinstance(self.client, aiohttp.ClientSession):
                self.client = self.get_client()
            timeout = request.extensions.get("timeout", {})
            try:
                with map_aiohttp_exceptions():
                    async with self.client.request(
                        method=request.method,
                        url=str(request.url),
                        headers=request.headers,
                        data=request.content or None,
                        allow_redirects=False,
                        auto_decompress=False,
                        compress=False,
                        timeout=aiohttp.ClientTimeout(
                            sock_connect=timeout.get("connect"),
                            sock_read=timeout.get("read"),
                            connect=timeout.get("pool"),
                        ),
                    ) as response:
                        body = await response.read()
            except httpx.TransportError as exc:
                raise _remap(exc) from exc.__cause__
            extensions = {"http_version": b"HTTP/1.1"}
            if response.reason:
                extensions["reason_phrase"] = response.reason.encode()
            return httpx.Response(
                status_code=response.status,
                headers=response.raw_headers,
                content=body,
                request=request,
                extensions=extensions,
            )

    def _remap(exc: httpx.TransportError) -> httpx.TransportError:
        cause = exc.__cause__
        if (
            isinstance(exc, httpx.TimeoutException)
            and cause is not None
            and not isinstance(cause, asyncio.TimeoutError)
        ):
            if isinstance(cause, aiohttp.ClientConnectorError):
                return httpx.ConnectError(str(exc) or type(cause).__name__)
            return httpx.ReadError(str(exc) or type(cause).__name__)
        return exc

    return AiohttpTransportEager


_AIOHTTP_CLASS: type[httpx.AsyncBaseTransport] | None = None


def _AiohttpTransport(**kwargs: Any) -> httpx.AsyncBaseTransport:
    global _AIOHTTP_CLASS
    if _AIOHTTP_CLASS is None:
        _AIOHTTP_CLASS = _aiohttp_transport_class()
    return _AIOHTTP_CLASS(**kwargs)
