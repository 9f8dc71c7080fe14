"""The one place that chooses how HTTP bytes move.

The client speaks httpx (``httpx.Request`` / ``httpx.Response`` and httpx's transport API, every
failure an ``httpx`` exception); the transport under it is one setting, ``PNCP_HTTP_TRANSPORT``:

- ``aiohttp`` (default): :class:`AiohttpGetter`, an aiohttp session used directly, with the
  error mapping of the ``httpx-aiohttp`` package (every failure an ``httpx`` exception). It
  builds no ``httpx.Request`` / ``httpx.Response``: httpx's URL parser and header model cost
  ~0.15 ms of CPU per request (cProfile of a details run), more than aiohttp itself; the answer
  is a :class:`Response` with what the client reads. Measured with ``bench/transport.py`` (the
  simulator at 0 ms, 32 in flight, 2-core machine): httpx's own transport costs ~2.3 ms of
  client CPU per request (httpcore's pool does O(connections) work per request, and without
  ``sniffio`` installed it retries a failing ``import sniffio`` on every request).
- ``httpx``: httpx's own transport (httpcore) under :class:`HttpGetter`, kept for comparison and
  as a fallback; its answers are ``httpx.Response`` objects, which the client reads the same way.

:class:`HttpGetter` sends GETs straight to the transport. ``httpx.AsyncClient`` would add, per
request, URL merging, cookie extraction, auth and event-hook plumbing this client never uses
(~0.1 ms of CPU per request, measured the same way); redirects and content-encoding, the parts
of it we want, are handled here and by ``httpx.Response``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin

import httpx

from ..config import USER_AGENT
from ._config import ClientConfig

TRANSPORTS = ("aiohttp", "httpx")
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpResponse(Protocol):
    """What the client reads of an answer (``httpx.Response`` is one, :class:`Response` another)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...  # case-insensitive names

    @property
    def content(self) -> bytes: ...  # the whole body, content-encoding decoded

    @property
    def url(self) -> Any: ...  # str() of it is the URL that answered

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


class HttpClient(Protocol):
    """What the client needs from HTTP: a GET whose response body is read, and closing."""

    async def get(self, url: str) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class Response:
    """An answer of :class:`AiohttpGetter`: status, headers (aiohttp's, case-insensitive), body, URL."""

    __slots__ = ("content", "headers", "status_code", "url")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes, url: str) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


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


def create_http_client(config: ClientConfig) -> HttpClient:
    """One connection pool per run, sized for both API families' ceilings."""
    pool = config.detail.concurrency + config.consulta.concurrency
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    timeout = httpx.Timeout(config.timeout, connect=min(10.0, config.timeout))
    headers = {"accept": "*/*", "accept-encoding": "gzip, deflate", "user-agent": USER_AGENT}
    if config.transport == "aiohttp":
        return AiohttpGetter(limits, timeout, headers, https=config.base_url.startswith("https:"))
    return HttpGetter(create_transport(config.transport, limits), timeout, headers)


class AiohttpGetter:
    """GET over one aiohttp session: headers, timeouts, redirects, gzip; the body is read whole.

    The session and its connector are made at the first request (inside the running event loop).
    Errors leave as httpx exceptions, mapped as by httpx-aiohttp (see ``_aiohttp_transport_class``).
    TLS: httpx's default context (certifi's CAs, as before) when the API is https; an http API
    pays nothing for it (building that context costs tens of ms at start)."""

    def __init__(self, limits: httpx.Limits, timeout: httpx.Timeout, headers: dict[str, str], *, https: bool) -> None:
        self._limits = limits
        self._timeout = timeout
        self._headers = headers
        self._https = https
        self._session: Any = None  # aiohttp.ClientSession, made by _open
        self._get: Any = None

    def _open(self) -> Any:
        import aiohttp
        from httpx_aiohttp.transport import map_aiohttp_exceptions

        t = self._timeout
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry,
            ssl=httpx.create_ssl_context() if self._https else True,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            trust_env=False,
            timeout=aiohttp.ClientTimeout(sock_connect=t.connect, sock_read=t.read, connect=t.pool),
        )
        session = self._session
        remap = _aiohttp_remap()

        async def get(url: str) -> tuple[int, Mapping[str, str], bytes]:
            try:
                with map_aiohttp_exceptions():
                    async with session.get(url, allow_redirects=False) as response:
                        return response.status, response.headers, await response.read()
            except httpx.TransportError as exc:
                raise remap(exc) from exc.__cause__

        self._get = get
        return get

    async def get(self, url: str) -> Response:
        get = self._get or self._open()
        for _ in range(MAX_REDIRECTS + 1):
            status, headers, body = await get(url)
            location = headers.get("location")
            if status not in _REDIRECTS or not location:
                return Response(status, headers, body, url)
            url = urljoin(url, location)
        raise httpx.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


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

    _remap = _aiohttp_remap()
    return AiohttpTransportEager


def _aiohttp_remap() -> Callable[[httpx.TransportError], httpx.TransportError]:
    """httpx-aiohttp maps every ``aiohttp.ClientConnectionError`` (a dropped connection, a server
    that closed it) to ``httpx.ConnectTimeout``: only real timeouts stay timeouts here, the rest
    become connection errors (``httpx.ConnectError`` / ``ReadError``)."""
    import aiohttp

    def remap(exc: httpx.TransportError) -> httpx.TransportError:
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

    return remap


_AIOHTTP_CLASS: type[httpx.AsyncBaseTransport] | None = None


def _AiohttpTransport(**kwargs: Any) -> httpx.AsyncBaseTransport:
    global _AIOHTTP_CLASS
    if _AIOHTTP_CLASS is None:
        _AIOHTTP_CLASS = _aiohttp_transport_class()
    return _AIOHTTP_CLASS(**kwargs)
