"""The PNCP HTTP client: both API families, their limits, retries and the API's traps.

- consulta (``{base}/consulta/v1``): enveloped pages, ``tamanhoPagina`` 10–50, 204 = empty,
  429 with an HTML body and no Retry-After, a spurious 365-day 422 on valid windows;
- detail (``{base}/pncp/v1``): bare arrays, ``/itens`` silently returns 10 items unless asked
  for pages, 404 = compra gone.

Every failure leaves as an :class:`~pncp_ingest.errors.ApiError`; no httpx error escapes.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx

from ..config import Settings
from ..errors import ApiError, ApiUnreachableError, NotFoundError
from ._limits import FamilyLimiter, FamilyStats, Signal
from ._records import Arquivo, Item, bronze_rows_json
from ._transport import HttpGetter, create_http_client

CONSULTA_PAGE_SIZE = 50  # the contratações endpoints' maximum (400 above it)
DETAIL_PAGE_SIZE = 500


class _Retryable(Exception):
    """An attempt failed in a way another attempt may not (429, 5xx, timeout, bad JSON)."""

    def __init__(
        self, reason: str, *, status: int | None = None, transport: bool = False, throttled: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.transport = transport
        self.throttled = throttled


@dataclass
class ClientStats:
    """What the client did, for the summary. Counts every attempt, not just every call."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    # Per API family ("consulta", "detail"), live: limit, min_limit, ceiling, paused_s, max_in_flight, ...
    families: dict[str, FamilyStats] = field(default_factory=dict)

    def limits(self) -> dict[str, dict[str, Any]]:
        """The families' limits as plain values (for ``--json``)."""
        return {name: f.to_json() for name, f in self.families.items()}


@dataclass(frozen=True)
class RetryNotice:
    """One failed attempt that will be retried: what, why, and how long until the next attempt."""

    family: str
    path: str
    reason: str
    attempt: int  # the attempt that failed, from 1
    attempts: int  # how many attempts a request gets in all
    wait_s: float  # until the next attempt (a 429's family pause included)


@dataclass(frozen=True)
class ConsultaPage:
    records: list[dict[str, Any]]
    total_paginas: int
    total_registros: int


class PncpClient:
    """One per run; use as ``async with PncpClient(settings) as client``."""

    def __init__(self, settings: Settings, http: HttpGetter | None = None) -> None:
        self.settings = settings
        self.stats = ClientStats()
        self._http = http or create_http_client(settings)
        adaptive = settings.adaptive
        self._families = {
            "consulta": FamilyLimiter(
                "consulta", settings.consulta_concurrency, settings.consulta_rate, adaptive=adaptive
            ),
            "detail": FamilyLimiter("detail", settings.concurrency, settings.rate, adaptive=adaptive),
        }
        self.stats.families = {name: limiter.stats for name, limiter in self._families.items()}
        # Told of every retry before its wait, so a run against a dead API is not silent.
        self.on_retry: Callable[[RetryNotice], None] | None = None

    async def __aenter__(self) -> PncpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def in_flight(self, family: str) -> int:
        return self._families[family].in_flight

    def paused_for(self, family: str) -> float:
        """Seconds until the family's 429 pause ends (0 when it is not paused)."""
        return self._families[family].paused_for

    # -- endpoints ---------------------------------------------------------------------------

    async def modalidades(self) -> list[int]:
        """Active modalidade codes, as PNCP serves them (new codes appear over time)."""
        body = await self._get_json("detail", "/pncp/v1/modalidades", {"statusAtivo": "true"})
        codes = [int(m["id"]) for m in body or [] if m.get("statusAtivo", True)]
        return sorted(codes)

    async def contratacoes_page(self, day: date, modalidade: int, pagina: int) -> ConsultaPage:
        """One page of the contratações published on ``day`` for one modalidade."""
        params = {
            "dataInicial": day.strftime("%Y%m%d"),
            "dataFinal": day.strftime("%Y%m%d"),
            "codigoModalidadeContratacao": modalidade,
            "pagina": pagina,
            "tamanhoPagina": CONSULTA_PAGE_SIZE,
        }
        body = await self._get_json("consulta", "/consulta/v1/contratacoes/publicacao", params)
        if not body:  # 204: no contratações (or past the last page)
            return ConsultaPage([], 0, 0)
        return ConsultaPage(
            records=list(body.get("data") or []),
            total_paginas=int(body.get("totalPaginas") or 0),
            total_registros=int(body.get("totalRegistros") or 0),
        )

    async def itens(self, cnpj: str, ano: int, sequencial: int) -> list[dict[str, Any]]:
        """Every item of a compra, as the API sends them. Always pages explicitly: without paging the API returns only 10."""
        return await self._detail_pages(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/itens", json.loads)

    async def arquivos(self, cnpj: str, ano: int, sequencial: int) -> list[dict[str, Any]]:
        """Every document of a compra, as the API sends them (204 → [])."""
        return await self._detail_pages(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/arquivos", json.loads)

    async def itens_rows(self, cnpj: str, ano: int, sequencial: int) -> list[dict[str, Any]]:
        """:meth:`itens` as bronze rows (``bronze_row(Item, ...)``), decoded and validated in one pass."""
        return await self._detail_pages(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/itens", _ITEM_ROWS)

    async def arquivos_rows(self, cnpj: str, ano: int, sequencial: int) -> list[dict[str, Any]]:
        """:meth:`arquivos` as bronze rows (``bronze_row(Arquivo, ...)``)."""
        return await self._detail_pages(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/arquivos", _ARQUIVO_ROWS)

    async def _detail_pages(self, path: str, decode: Callable[[bytes], Any]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        pagina = 1
        while True:
            body = await self._get_json("detail", path, {"pagina": pagina, "tamanhoPagina": DETAIL_PAGE_SIZE}, decode)
            page = list(body or [])
            records.extend(page)
            if len(page) < DETAIL_PAGE_SIZE:
                return records
            pagina += 1

    # -- one request, with retries -------------------------------------------------------------

    async def _get_json(
        self, family: str, path: str, params: dict[str, Any], decode: Callable[[bytes], Any] = json.loads
    ) -> Any:
        """GET and decode JSON (``decode`` raises ValueError on a bad body); None for 204.

        Retries what may pass on another attempt."""
        url = f"{self.settings.base_url}{path}"
        attempts = self.settings.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(family, url, params, decode)
            except _Retryable as exc:
                if attempt == attempts:
                    if exc.transport and self.stats.ok == 0:
                        raise ApiUnreachableError(
                            f"the PNCP API at {self.settings.base_url} is unreachable after {attempts} attempts, "
                            f"{exc}: check --base-url / PNCP_BASE_URL and the network"
                        ) from None
                    raise ApiError(
                        f"GET {path} failed after {attempts} attempts: {exc}", status=exc.status, url=url
                    ) from None
                self.stats.retries += 1
                # A 429's family pause already holds this worker and every other.
                wait = self.paused_for(family) if exc.throttled else self._backoff(attempt)
                if self.on_retry is not None:
                    self.on_retry(RetryNotice(family, path, str(exc), attempt, attempts, wait))
                if not exc.throttled:
                    await anyio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff: uniform in [0, min(max, initial * 2^(attempt-1))]."""
        high = min(self.settings.backoff_max, self.settings.backoff_initial * 2 ** (attempt - 1))
        return random.uniform(0, high)

    async def _attempt(self, family: str, url: str, params: dict[str, Any], decode: Callable[[bytes], Any]) -> Any:
        limiter = self._families[family]
        full_url = f"{url}?{urlencode(params)}"
        async with limiter.slot() as ticket:
            self.stats.requests += 1
            try:
                response = await self._http.get(full_url)
            except httpx.TimeoutException as exc:
                self.stats.statuses["timeout"] += 1
                limiter.feedback(ticket, "overloaded")
                raise _Retryable(f"timed out ({type(exc).__name__})", transport=True) from None
            except httpx.TransportError as exc:
                self.stats.statuses["connection"] += 1
                limiter.feedback(ticket, "overloaded")
                raise _Retryable(f"connection failed ({type(exc).__name__})", transport=True) from None
        status = response.status_code
        self.stats.statuses[str(status)] += 1
        limiter.feedback(ticket, _signal(status))
        if status == 200:
            try:
                body = decode(response.content)
            except ValueError:
                raise _Retryable("the response was not valid JSON (truncated?)", status=200) from None
            self.stats.ok += 1
            return body
        if status == 204:
            self.stats.ok += 1
            return None
        if status == 429:
            self.stats.throttled += 1
            limiter.pause(_retry_after(response) or self.settings.throttle_pause)
            raise _Retryable("429 Too Many Requests", status=429, throttled=True)
        if status >= 500:
            retry_after = _retry_after(response)
            if retry_after:
                limiter.pause(retry_after)
            raise _Retryable(f"HTTP {status}", status=status)
        message = _error_message(response)
        if status == 404:
            raise NotFoundError(f"404 {message}", url=str(response.url))
        if status == 422 and "365" in message and params.get("dataInicial") == params.get("dataFinal"):
            # PNCP sometimes rejects a one-day window as "over 365 days"; the same query passes later.
            raise _Retryable(f"spurious 422 {message}", status=422)
        raise ApiError(
            f"HTTP {status} {message} for {response.url}", status=status, url=str(response.url), retryable=False
        )


_ITEM_ROWS = partial(bronze_rows_json, Item)
_ARQUIVO_ROWS = partial(bronze_rows_json, Arquivo)


def _signal(status: int) -> Signal:
    """What an answer says about the server's load, for the family's adaptive limit."""
    if status == 429:
        return "throttled"
    if status >= 500:
        return "overloaded"
    return "ok"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or "")[:200]
    except ValueError:
        return response.text[:200].strip()
