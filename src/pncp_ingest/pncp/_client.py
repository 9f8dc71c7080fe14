"""The PNCP HTTP client: both API families, their limits, retries and the API's traps.

- consulta (``{base}/consulta/v1``): enveloped pages, ``tamanhoPagina`` 10–50, "no data" past
  the last page, 429 with an HTML body and no Retry-After, a spurious 365-day 422 on valid windows;
- detail (``{base}/pncp/v1``): bare arrays, ``/itens`` silently returns 10 items unless asked
  for pages, 404 = compra gone (except on an item's ``/resultados``: no result, see :meth:`PncpClient.resultados`).

"No data" comes as a 204 or as a 200 with an empty body, on every endpoint (see
:data:`NO_DATA` and :meth:`PncpClient._attempt`); an endpoint where PNCP also says it with
another status declares that status in its call's ``no_data``.

What is retried, and how, is the :class:`RetryPolicy` of the client's :class:`ClientConfig`, run by
tenacity. Every failure leaves as an :class:`~pncp_ingest.errors.ApiError`; no httpx error escapes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt
from tenacity.wait import wait_random_exponential

from ..errors import ApiError, ApiUnreachableError, NotFoundError
from ..records import DETAIL_KINDS, DETAIL_MODELS, DetailKind, bronze_rows_json, loads
from ._config import ClientConfig, Family, FamilyLimits, RetryNotice
from ._limits import RETRY_COST, TIMEOUT_RETRY_COST, FamilyLimiter, FamilyStats, SharedBudget, Signal
from ._transport import HttpClient, create_http_client

CONSULTA_PAGE_SIZE = 50  # the contratações endpoints' maximum (400 above it)
DETAIL_PAGE_SIZE = 500

Decode = Callable[[bytes], Any]

NO_DATA: frozenset[int] = frozenset({204})
"""Statuses that mean "nothing here" on every endpoint (so does a 200 whose body is empty).
An endpoint where PNCP uses another status for it passes ``no_data=NO_DATA | {that status}``."""


class _Retryable(Exception):
    """An attempt failed in a way another attempt may not (429, 5xx, timeout, bad JSON)."""

    def __init__(
        self, reason: str, *, status: int | None = None, transport: bool = False, throttled: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.transport = transport
        self.throttled = throttled
        self.budget_spent = False  # not retried because the family's retry budget is spent


@dataclass
class ClientStats:
    """What the client did, for the summary. ``requests`` counts every attempt, ``retries`` the
    attempts that were followed by another, ``throttled`` the 429 answers."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    ok: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    # Per API family ("consulta", "detail"), live: limit, min_limit, ceiling, paused_s, max_in_flight, ...
    families: dict[Family, FamilyStats] = field(default_factory=dict)

    def limits(self) -> dict[str, dict[str, Any]]:
        """The families' limits as plain values (for ``--json``)."""
        return {name: f.to_json() for name, f in self.families.items()}


@dataclass(frozen=True)
class ConsultaPage:
    records: list[dict[str, Any]]
    total_paginas: int
    total_registros: int


class PncpClient:
    """One per run; use as ``async with PncpClient(config) as client`` (see :func:`client_config`)."""

    def __init__(self, config: ClientConfig, http: HttpClient | None = None) -> None:
        self.config = config
        self.stats = ClientStats()
        self._http = http or create_http_client(config)
        policy = config.retry
        by_family: tuple[tuple[Family, FamilyLimits], ...] = (("consulta", config.consulta), ("detail", config.detail))
        shared = SharedBudget()
        self._families: dict[Family, FamilyLimiter] = {
            name: FamilyLimiter(name, limits, policy, adaptive=config.adaptive, shared=shared)
            for name, limits in by_family
        }
        self.stats.families = {name: limiter.stats for name, limiter in self._families.items()}
        self._backoff = wait_random_exponential(multiplier=policy.backoff_initial, max=policy.backoff_max)
        # One instance serves every concurrent request: calling it keeps each call's state in its
        # own RetryCallState, and its shared per-attempt scratch state is only touched inside
        # tenacity's iter(), which never yields to the event loop while every callback is a plain
        # function (they are: see RetryCallback). A copy per request, as tenacity's decorator
        # makes, would add ~15 µs per request to its ~35 µs (bench/client_overhead.py).
        self._retrying = AsyncRetrying(
            sleep=anyio.sleep,
            stop=stop_after_attempt(policy.attempts),
            wait=self._wait,
            retry=self._should_retry,
            after=self._after_failure,
            before_sleep=self._before_retry,
            reraise=True,
        )

    async def __aenter__(self) -> PncpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def in_flight(self, family: Family) -> int:
        return self._families[family].in_flight

    def paused_for(self, family: Family) -> float:
        """Seconds until the family's 429 pause ends (0 when it is not paused)."""
        return self._families[family].pause_remaining

    # -- endpoints ---------------------------------------------------------------------------

    async def modalidades(self) -> list[int]:
        """Every modalidade code PNCP serves, active or retired (new codes appear over time).

        Retired ones too: a backfill of an older day must list the contratações of a modalidade
        PNCP has since retired (a day without any costs one 204)."""
        body = await self._get_json("detail", "/pncp/v1/modalidades", {})
        if not body:
            # Unlike a listing, this list is never empty: taking "none" for an answer would list
            # no contratação at all and call the day complete.
            raise ApiError("GET /pncp/v1/modalidades answered no modalidades; a later run tries again")
        return sorted(int(m["id"]) for m in body)

    async def contratacoes_page(self, day: date, modalidade: int, pagina: int) -> ConsultaPage:
        """One page of the contratações published on ``day`` for one modalidade."""
        return await self.listing_page(
            "/consulta/v1/contratacoes/publicacao", day, pagina, page_size=CONSULTA_PAGE_SIZE, modalidade=modalidade
        )

    async def listing_page(
        self, path: str, day: date, pagina: int, *, page_size: int, modalidade: int | None = None
    ) -> ConsultaPage:
        """One page of a consulta listing for one day (``dataInicial`` = ``dataFinal`` = ``day``).

        ``page_size`` must be within the endpoint's limits (10–50 for contratações, 10–500 for
        contratos and atas); ``modalidade`` is required by the contratações endpoints only."""
        params: dict[str, Any] = {"dataInicial": day.strftime("%Y%m%d"), "dataFinal": day.strftime("%Y%m%d")}
        if modalidade is not None:
            params["codigoModalidadeContratacao"] = modalidade
        params |= {"pagina": pagina, "tamanhoPagina": page_size}
        # Money decoded from the JSON text, never through a float (records.loads).
        body = await self._get_json("consulta", path, params, loads)
        if body is None:  # no data: nothing that day (or past the last page)
            return ConsultaPage([], 0, 0)
        return ConsultaPage(
            records=list(body.get("data") or []),
            total_paginas=int(body.get("totalPaginas") or 0),
            total_registros=int(body.get("totalRegistros") or 0),
        )

    async def detail(self, kind: DetailKind, cnpj: str, ano: int, sequencial: int) -> Detail:
        """Every record of one kind (itens, arquivos) of a compra as bronze rows
        (``bronze_row(Item | Arquivo, ...)``, decoded and validated in one pass), with the count
        PNCP reported when it had to be asked (see :meth:`_detail_pages`). No data is ``[]``.

        Resultados are per item, not per compra: :meth:`resultados`."""
        if kind == "resultados":
            raise ValueError("resultados are listed per item: use PncpClient.resultados")
        return await self._detail_pages(_detail_path(kind, cnpj, ano, sequencial), _ROWS[kind])

    async def resultados(self, cnpj: str, ano: int, sequencial: int, numero_item: int) -> list[dict[str, Any]]:
        """Every result of one item as bronze rows (a bare array, no paging), each with its ``numeroItem``.

        "No result" comes as 204, as an empty 200 and, for some items, as 404: call this only for
        an item the compra's ``/itens`` just listed, so the compra exists and a 404 here means
        that item has no result (``[]``), not a gone compra. The compra's own 404 (on ``/itens``)
        keeps its meaning: gone. Any other failure raises, never an empty list.
        """
        path = f"{_detail_path('itens', cnpj, ano, sequencial)}/{numero_item}/resultados"
        body = await self._get_json("detail", path, {}, _ROWS["resultados"], no_data=NO_DATA | {404})
        rows: list[dict[str, Any]] = body or []
        for row in rows:
            if row.get("numeroItem") is None:
                row["numeroItem"] = numero_item
        return rows

    async def quantidade(self, path: str) -> int:
        """How many records PNCP counts at ``{path}/quantidade`` (a bare JSON integer; no data is 0)."""
        body = await self._get_json("detail", f"{path}/quantidade", {})
        if body is None:
            return 0
        if isinstance(body, bool) or not isinstance(body, int):
            raise ApiError(f"GET {path}/quantidade answered {str(body)[:60]!r}, not a count")
        return int(body)

    async def _detail_pages(self, path: str, decode: Decode) -> Detail:
        """Every page of a detail list, never cut short by a server's silent page cap.

        A page shorter than asked ends the list only when it is obviously the end: shorter than
        a size the server already served in full, or not a round size a server could cap at.
        Otherwise ``/quantidade`` says how many there are, and paging goes on at the size the
        server actually used. A page that repeats an earlier one, or a count never reached, is
        an :class:`ApiError` (the compra is recorded as failed), never a loop or a truncation.
        """
        records: list[dict[str, Any]] = []
        size, pagina = DETAIL_PAGE_SIZE, 1
        reported: int | None = None
        seen: set[tuple[int, str, str]] = set()
        first: list[dict[str, Any]] = []  # marked only once a second page comes: most lists have one
        while True:
            body = await self._get_json("detail", path, {"pagina": pagina, "tamanhoPagina": size}, decode)
            page = list(body or [])  # no data: an empty page, the end of the list
            if first and page:
                seen.add(_mark(first))
                first = []
            if page and not seen and not records:
                first = page
            elif page:
                mark = _mark(page)
                if mark in seen:
                    raise ApiError(f"GET {path}: page {pagina} repeats an earlier page; PNCP ignores `pagina` here")
                seen.add(mark)
            records.extend(page)
            if reported is not None and len(records) >= reported:
                break
            if len(page) < size:
                if reported is not None or not _could_be_a_cap(len(page), pagina):
                    break
                reported = await self.quantidade(path)
                if len(records) >= reported:
                    break
                size = len(page)  # the server's real page size: page N at this size is unambiguous
                pagina = len(records) // size
            pagina += 1
            if reported is not None and pagina > reported // size + 2:
                break
        if reported is not None and len(records) != reported:
            raise ApiError(f"GET {path}: got {len(records)} records but PNCP counts {reported} at /quantidade")
        return Detail(records, reported)

    # -- one request, with retries -------------------------------------------------------------

    async def _get_json(
        self,
        family: Family,
        path: str,
        params: dict[str, Any],
        decode: Decode = json.loads,
        no_data: frozenset[int] = NO_DATA,
    ) -> Any:
        """GET and decode JSON (``decode`` raises ValueError on a bad body); None when the answer
        says there is no data (a status in ``no_data``, or a 200 with an empty body).

        Retries what may pass on another attempt, as :class:`RetryPolicy` says."""
        url = f"{self.config.base_url}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            try:
                # The first attempt outside tenacity: its loop costs ~0.1 ms of CPU per request
                # (it wraps and inspects every callback on every attempt), and most requests
                # need no second attempt.
                return await self._attempt(family, url, params, decode, no_data)
            except _Retryable as first:
                # Tenacity then runs as if it had made that attempt: it is handed the failure as
                # attempt 1 (counted, judged and waited on exactly as before), then retries.
                return await self._retrying(self._attempt_again, family, url, params, decode, no_data, [first])
        except _Retryable as exc:
            attempts = self.config.retry.attempts
            if exc.transport and self.stats.ok == 0:
                raise ApiUnreachableError(
                    f"the PNCP API at {self.config.base_url} is unreachable after {attempts} attempts, "
                    f"{exc}: check --base-url / PNCP_BASE_URL and the network"
                ) from None
            if exc.budget_spent:
                raise ApiError(
                    f"GET {path} failed: {exc}; not retried, the {family} API's retry budget is spent "
                    "(most requests fail: PNCP is down or overloaded; a later run resumes)",
                    status=exc.status,
                    url=url,
                ) from None
            raise ApiError(f"GET {path} failed after {attempts} attempts: {exc}", status=exc.status, url=url) from None

    def _should_retry(self, state: RetryCallState) -> bool:
        """Retry what may pass on another attempt, while the family's retry budget lasts (a 429
        costs nothing: the family's pause governs those)."""
        exc = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(exc, _Retryable):
            return False
        if exc.throttled or state.attempt_number >= self.config.retry.attempts:
            return True  # a last attempt is stopped by `stop`, without spending the budget
        family: Family = state.args[0]
        if self._families[family].allow_retry(TIMEOUT_RETRY_COST if exc.transport else RETRY_COST):
            return True
        exc.budget_spent = True
        return False

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter exponential backoff; none after a 429, whose family pause holds every worker."""
        if _failure(state).throttled:
            return 0.0
        return self._backoff(state)

    def _after_failure(self, state: RetryCallState) -> None:
        if _failure(state).throttled:
            self.stats.throttled += 1

    def _before_retry(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        on_retry = self.config.on_retry
        if on_retry is None:
            return
        family: Family = state.args[0]
        exc = _failure(state)
        wait = state.upcoming_sleep
        if exc.throttled:
            wait = max(wait, self._families[family].pause_remaining)
        notice = RetryNotice(
            family=family,
            url=state.args[1],
            failed_attempt=state.attempt_number,
            attempts=self.config.retry.attempts,
            wait_s=wait,
            reason=str(exc),
        )
        on_retry(notice)

    async def _attempt_again(
        self,
        family: Family,
        url: str,
        params: dict[str, Any],
        decode: Decode,
        no_data: frozenset[int],
        failed: list[_Retryable],
    ) -> Any:
        """:meth:`_attempt` under tenacity, whose first attempt is the failure already in ``failed``."""
        if failed:
            raise failed.pop()
        return await self._attempt(family, url, params, decode, no_data)

    async def _attempt(
        self, family: Family, url: str, params: dict[str, Any], decode: Decode, no_data: frozenset[int]
    ) -> Any:
        """One GET, and what its answer means: a body, no data (None), or a failure.

        Every httpx failure is mapped here, once. The answer is read in two steps, so that what
        failed is known from the transport, not guessed from the bytes: before the status line
        and headers came, a failure is a connection that failed (or timed out); once they came,
        a failure while reading the body (fewer bytes than its ``Content-Length``, a chunked
        body without its last chunk, a connection dropped mid-body, a gzip stream that does not
        decode) is a body cut short. Both are retried. A body read to its end is complete."""
        limiter = self._families[family]
        async with limiter.slot() as ticket:
            self.stats.requests += 1
            try:
                async with self._http.stream("GET", url) as response:
                    try:
                        content = await response.aread()
                    except httpx.TimeoutException:
                        raise
                    except (httpx.TransportError, httpx.DecodingError) as exc:
                        self.stats.statuses["cut"] += 1
                        limiter.feedback(ticket, "overloaded")
                        status = response.status_code
                        raise _Retryable(f"the body was cut short ({type(exc).__name__})", status=status) from None
            except httpx.TimeoutException as exc:
                self.stats.statuses["timeout"] += 1
                limiter.feedback(ticket, "overloaded")
                raise _Retryable(f"timed out ({type(exc).__name__})", transport=True) from None
            except httpx.TransportError as exc:  # refused, reset, closed before answering
                self.stats.statuses["connection"] += 1
                limiter.feedback(ticket, "overloaded")
                raise _Retryable(f"connection failed ({type(exc).__name__})", transport=True) from None
            except httpx.TooManyRedirects as exc:
                raise ApiError(f"GET {url}: {exc}", url=url, retryable=False) from None
        status = response.status_code
        self.stats.statuses[str(status)] += 1
        if status == 429:
            limiter.throttled(ticket, _retry_after(response))
            raise _Retryable("429 Too Many Requests", status=429, throttled=True)
        limiter.feedback(ticket, _signal(status))
        if status in no_data or (status == 200 and not content):
            # No data. PNCP says it with a 204, or with a 200 whose body is empty: Content-Length
            # 0, or a chunked body that ends at once. Read to its end (above), an empty body is
            # what the server sent, not what a dropped connection left.
            self.stats.ok += 1
            return None
        if status == 200:
            try:
                body = decode(content)
            except ValueError:
                # A complete body that is not JSON: it came through whole, yet another attempt
                # may still be answered well (a proxy's error page, a half-written cache entry).
                raise _Retryable("the response was not valid JSON (truncated?)", status=200) from None
            self.stats.ok += 1
            return body
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


def _failure(state: RetryCallState) -> _Retryable:
    """The retryable failure of the attempt that just ended (tenacity calls back only for those)."""
    exc = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(exc, _Retryable)
    return exc


@dataclass(frozen=True)
class Detail:
    """One compra's records of one kind, and PNCP's own count when it was asked (``/quantidade``)."""

    rows: list[dict[str, Any]]
    reported: int | None = None


def _mark(page: list[Any]) -> tuple[int, str, str]:
    """What tells a page from another: its length and its first and last records."""
    return (len(page), repr(page[0]), repr(page[-1]))


# Sizes a server plausibly caps a page at (10 is what /itens serves without paging parameters).
_ROUND_SIZES = frozenset({10, 20, 25, 30, 40, 50, 100, 150, 200, 250, 300, 400})


def _could_be_a_cap(length: int, pagina: int) -> bool:
    """A short first page of a round size may be a silent cap rather than the whole list."""
    return pagina == 1 and length in _ROUND_SIZES


def _detail_path(kind: DetailKind, cnpj: str, ano: int, sequencial: int) -> str:
    return f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{sequencial}/{kind}"


_ROWS: dict[DetailKind, Decode] = {kind: partial(bronze_rows_json, DETAIL_MODELS[kind]) for kind in DETAIL_KINDS}


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
