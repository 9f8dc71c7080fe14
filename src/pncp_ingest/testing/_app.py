"""aiohttp application: the two PNCP API families, fault injection and ``/_sim`` control routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import random
import re
import signal
import socket
import stat
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._contratos import ATAS_PER_DAY, CONTRATOS_PER_DAY, SimulatedOutcomes
from ._data import MODALIDADES, GrowOrder, SimulatedPncp, as_date, dumps
from ._homologation import resultado_frags

__all__ = ["Faults", "make_app", "serve"]

Family = Literal["consulta", "detail"]
KINDS = (
    "modalidades",
    "contratacoes",
    "itens",
    "arquivos",
    "resultados",
    "contratos",
    "contratos_atualizacao",
    "atas",
    "atas_atualizacao",
    "other",
)

HTML_429 = "<html><body><h1>Limite de requisições excedido</h1></body></html>".encode()
HTML_502 = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
HTML_504 = b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
HIKARI = (
    "Failed to obtain JDBC Connection; nested exception is java.sql.SQLTransientConnectionException: "
    "HikariPool-1 - Connection is not available, request timed out after 30000ms."
)
MSG_WINDOW = "Período inicial e final maior que 365 dias"

_JSON = "application/json"
_BASE_HEADERS = {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Access-Control-Allow-Origin": "*"}
_CACHE_MAX_BYTES = 256 * 1024 * 1024
_YYYYMMDD = re.compile(r"^\d{8}$")
_BRT = dt.timezone(dt.timedelta(hours=-3))


class Faults(BaseModel):
    """Fault-injection settings; every kind is off by default. JSON-serialisable.

    Decision order per request of an affected family: the load-dependent answers (an ongoing or
    new ``block_*`` block: 429 at once; past ``overload_at`` in flight: 503 at once), then
    latency+jitter (× in_flight / ``knee`` past the knee), 429 (an ongoing burst,
    else ``rate_429`` starts a burst of ``burst_429`` consecutive 429s, this one included),
    ``rate_5xx``, ``rate_drop``, ``rate_timeout`` (hang ``hang_s`` then answer normally),
    then normal handling where ``rate_spurious_422`` (consulta, valid requests only),
    ``rate_truncate`` or ``rate_cut`` (200 JSON object/array bodies only) may apply, and
    ``empty_200`` may send a "no data" answer as an empty 200 instead of a 204. The
    ``repeat_*`` and ``grow_*`` keys change what a valid request is answered with, whatever
    ``families`` says.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(0.0, ge=0, description="added to every response, in milliseconds")
    jitter_ms: float = Field(0.0, ge=0, description="plus a uniform random 0..jitter_ms")
    rate_429: float = Field(0.0, ge=0, le=1, description="chance that a request starts a burst of 429s (HTML body)")
    burst_429: int = Field(5, ge=1, description="consecutive 429s in a burst")
    rate_5xx: float = Field(0.0, ge=0, le=1, description="chance of a 500 (Hikari JSON), 502/504 (HTML) or 503 (empty)")
    rate_timeout: float = Field(0.0, ge=0, le=1, description="chance that a request hangs hang_s, then answers")
    hang_s: float = Field(30.0, ge=0, description="how long a hang lasts, in seconds")
    rate_drop: float = Field(0.0, ge=0, le=1, description="chance that the connection is closed without an answer")
    rate_truncate: float = Field(
        0.0, ge=0, le=1, description="chance that a 200 JSON body is cut in half (a complete answer of half the JSON)"
    )
    rate_cut: float = Field(
        0.0,
        ge=0,
        le=1,
        description="chance that a 200 JSON body is cut off in transit: Content-Length announces it all, "
        "half is sent, the connection closes",
    )
    empty_200: float = Field(
        0.0,
        ge=0,
        le=1,
        description='share of "no data" answers (a listing past its end, a compra without arquivos) sent as a '
        "200 with an empty body instead of a 204, as PNCP does at times; they alternate between "
        "Content-Length: 0 and an empty chunked body",
    )
    rate_spurious_422: float = Field(
        0.0, ge=0, le=1, description="chance that a valid consulta request gets the 365-day 422"
    )
    families: list[Family] = Field(
        default_factory=lambda: list[Family](["consulta", "detail"]),
        description='the API families hit: "consulta", "detail"',
    )
    seed: int = Field(0, description="seed of the fault draws (and of the repeat_share choice)")
    repeat_ids: list[str] = Field(
        default_factory=list,
        description="numeroControlePNCP of compras whose /itens ignores pagina: every page is page 1, forever",
    )
    repeat_share: float = Field(
        0.0, ge=0, le=1, description="share of compras (chosen by seed) whose /itens ignores pagina the same way"
    )
    grow_every: int = Field(
        0,
        ge=0,
        description="every N /publicacao page requests for a one-day window, publish grow_by new "
        "contratações of the listed modalidade on that day (0 = off)",
    )
    grow_by: int = Field(1, ge=1, description="contratações published at each growth")
    grow_max: int = Field(20, ge=0, description="at most this many contratações grown per day by grow_every")
    grow_order: GrowOrder = Field(
        "front",
        description='where grown contratações are listed: "front" (first, newest first), "end" (last), '
        '"shuffle" (the day\'s listing order is re-drawn at every growth)',
    )
    resultados_404: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of items (chosen by seed) whose /resultados says 'no result' with a 404 instead of a 204",
    )
    retired: list[int] = Field(
        default_factory=list,
        description="modalidade codes PNCP has retired: /modalidades serves them with statusAtivo=false "
        "(and leaves them out when asked for statusAtivo=true); their contratações are still listed",
    )
    # Load-dependent behaviours (off by default), counted over the requests of the affected families
    # in flight at once: a server that saturates, and one that blocks a client that sends too much.
    knee: int = Field(
        0, ge=0, description="past this many requests in flight, latency_ms grows with them (× in_flight / knee)"
    )
    overload_at: int = Field(0, ge=0, description="past this many requests in flight, an immediate 503 (0 = off)")
    block_s: float = Field(
        0.0, ge=0, description="a block: every request gets the HTML 429 (no Retry-After) for this many seconds"
    )
    block_over: int = Field(0, ge=0, description="more than this many requests in flight start a block (0 = off)")
    block_rate: float = Field(
        0.0, ge=0, description="more than this many requests arriving within one second start a block (0 = off)"
    )
    # PNCP's pace: each call takes ~latency_ms (a lognormal around it), and a client with more
    # than block_over requests in flight is blocked for block_s (HTML 429s, no Retry-After). We do
    # not know whether PNCP counts each API family apart or both together (a per-IP limit would):
    # block_scope says which.
    latency_sigma: float = Field(
        0.0, ge=0, description="latency_ms is the median of a lognormal with this sigma (0 = always latency_ms)"
    )
    block_scope: Literal["family", "client"] = Field(
        "family",
        description='what block_over and block_rate count and a block stops: each API family apart ("family") '
        'or both together ("client", as a per-IP limit would)',
    )


def _now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _now_brt() -> str:
    return dt.datetime.now(_BRT).isoformat(timespec="milliseconds")


def _spring_path(path: str) -> str:
    if path.startswith("/api/consulta/"):
        return "/pncp-consulta/" + path[len("/api/consulta/") :]
    if path.startswith("/api/pncp/"):
        return "/pncp-api/" + path[len("/api/pncp/") :]
    return path


class _Reply(Exception):
    """Raised inside request handling to answer with (status, body, content type)."""

    def __init__(self, status: int, body: bytes = b"", ctype: str | None = _JSON) -> None:
        self.status, self.body, self.ctype = status, body, ctype


def _spring(status: int, error: str, message: str, path: str) -> _Reply:
    body = {"timestamp": _now_utc(), "status": status, "error": error, "message": message, "path": _spring_path(path)}
    return _Reply(status, dumps(body))


def _bad_request(message: str, path: str) -> _Reply:
    return _spring(400, "Bad Request", message, path)


def _unprocessable(message: str, path: str) -> _Reply:
    body = {
        "path": _spring_path(path),
        "message": message,
        "error": "422 UNPROCESSABLE_ENTITY",
        "timestamp": _now_brt(),
        "status": "422",
    }
    return _Reply(422, dumps(body))


def _not_found(message: str, path: str) -> _Reply:
    return _spring(404, "Not Found", message, path)


def _int_param(q: Any, name: str, java: str, path: str, *, required: bool, default: int | None = None) -> int | None:
    raw = q.get(name)
    if raw is None:
        if required:
            raise _bad_request(
                f"Required request parameter '{name}' for method parameter type {java} is not present", path
            )
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise _bad_request(
            f"Failed to convert value of type 'java.lang.String' to required type 'java.lang.{java}'; For input string: \"{raw}\"",
            path,
        ) from None


def _yyyymmdd(raw: str, message: str, path: str) -> dt.date:
    if not _YYYYMMDD.match(raw):
        raise _unprocessable(message, path)
    try:
        return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        raise _unprocessable(message, path) from None


def listing_params(
    q: Any, path: str, max_page: int, *, modalidade: bool = False
) -> tuple[dt.date, dt.date, int, int, int | None]:
    """A consulta listing's query as PNCP checks it, in PNCP's order: the dates are required (400),
    ``pagina`` ≥ 1 and ``tamanhoPagina`` within 10..``max_page`` (400), the modalidade where the
    endpoint requires one (400 missing, 422 unknown), then the dates' format, order and window
    (422). Returns (first day, last day, pagina, tamanhoPagina, modalidade or None)."""
    for name in ("dataInicial", "dataFinal"):
        if q.get(name) is None:
            raise _bad_request(
                f"Required request parameter '{name}' for method parameter type String is not present", path
            )
    mod = _int_param(q, "codigoModalidadeContratacao", "Long", path, required=True) if modalidade else None
    pagina = _int_param(q, "pagina", "Integer", path, required=True)
    size = _int_param(q, "tamanhoPagina", "Integer", path, required=False, default=50)
    assert pagina is not None and size is not None
    if pagina < 1:
        raise _bad_request("must be greater than or equal to 1", path)
    if size < 10:
        raise _bad_request("must be greater than or equal to 10", path)
    if size > max_page:
        raise _bad_request("Tamanho de pagina invalido", path)
    if mod is not None and not 1 <= mod <= 19:
        raise _unprocessable("Código da modalidade de contratação inválido.", path)
    d0 = _yyyymmdd(q["dataInicial"], "Data Inicial inválida", path)
    d1 = _yyyymmdd(q["dataFinal"], "Data Final inválida", path)
    if d0 > d1:
        raise _unprocessable("Data Inicial deve ser anterior ou igual à Data Final", path)
    if (d1 - d0).days > 365:
        raise _unprocessable(MSG_WINDOW, path)
    return d0, d1, pagina, size, mod


class SimState:
    """Everything the running server knows: data, faults, caches and counters."""

    def __init__(
        self,
        sim: SimulatedPncp,
        faults: Faults | None = None,
        page_cap: int | None = None,
        outcomes: SimulatedOutcomes | None = None,
    ) -> None:
        self.sim = sim
        self.outcomes = outcomes if outcomes is not None else SimulatedOutcomes(sim)
        self.page_cap = page_cap
        self.faults = Faults.model_validate({})
        self.rng = random.Random(0)
        self.burst: dict[str, int] = {}
        self.in_flight: Counter[str] = Counter()
        self.set_faults(faults or Faults.model_validate({}))
        self.reset_stats()
        self._cache: dict[tuple[Any, ...], bytes] = {}
        self._cache_bytes = 0
        self._windows: dict[tuple[Any, ...], list[Any]] = {}
        self._modalidades = dumps(MODALIDADES)

    # ------------------------------------------------------------------ bookkeeping

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.burst = {"consulta": 0, "detail": 0}
        self.blocked_until = {"consulta": 0.0, "detail": 0.0, "client": 0.0}
        self.arrivals: dict[str, deque[float]] = {"consulta": deque(), "detail": deque(), "client": deque()}
        self.day_requests: Counter[dt.date] = Counter()  # /publicacao page requests per day, for grow_every
        self.grown: Counter[dt.date] = Counter()
        self._repeat_share: dict[str, bool] = {}

    def reset_stats(self) -> None:
        self.requests: Counter[str] = Counter({k: 0 for k in KINDS})
        self.statuses: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()

    def stats(self) -> dict[str, Any]:
        out = {"requests": dict(self.requests), "statuses": dict(self.statuses), "faults": dict(self.fault_counts)}
        if self.max_in_flight:  # only counted while a load-dependent key is set
            out["max_in_flight"] = dict(self.max_in_flight)
        return out

    def _cached(self, key: tuple[Any, ...], make: Callable[[], bytes]) -> bytes:
        body = self._cache.get(key)
        if body is None:
            body = make()
            if self._cache_bytes + len(body) > _CACHE_MAX_BYTES:
                self._cache.clear()
                self._cache_bytes = 0
            self._cache[key] = body
            self._cache_bytes += len(body)
        return body

    def clear_listing_cache(self) -> None:
        self._windows.clear()
        self._cache = {k: v for k, v in self._cache.items() if k[0] != "consulta"}
        self._cache_bytes = sum(len(v) for v in self._cache.values())

    # ------------------------------------------------------------------ the PNCP endpoints

    def modalidades(self, request: web.Request, spurious: bool) -> tuple[int, bytes]:
        retired = set(self.faults.retired)
        if not retired:
            return 200, self._modalidades
        served = [{**m, "statusAtivo": m["id"] not in retired} for m in MODALIDADES]
        if request.query.get("statusAtivo") == "true":
            served = [m for m in served if m["statusAtivo"]]
        return 200, dumps(served)

    def consulta(self, request: web.Request, spurious: bool) -> tuple[int, bytes]:
        q, path = request.query, request.path
        d0, d1, pagina, size, mod = listing_params(q, path, 50, modalidade=True)
        assert mod is not None
        if spurious:
            self.fault_counts["spurious_422"] += 1
            raise _unprocessable(MSG_WINDOW, path)
        kind = "atualizacao" if path.endswith("/atualizacao") else "publicacao"
        if kind == "publicacao" and d0 == d1 and self.faults.grow_every:
            self._grow_while_listing(d0, mod)

        def make() -> bytes:
            compras = self._cached_window(kind, d0, d1, mod)
            total = len(compras)
            pages = math.ceil(total / size)
            if total == 0 or pagina > pages:
                return b""
            chunk = compras[(pagina - 1) * size : pagina * size]
            tail = {
                "totalRegistros": total,
                "totalPaginas": pages,
                "numeroPagina": pagina,
                "paginasRestantes": pages - pagina,
                "empty": False,
            }
            return b'{"data":[' + b",".join(c.frag for c in chunk) + b"]," + dumps(tail)[1:]

        body = self._cached(("consulta", kind, d0, d1, mod, pagina, size), make)
        return (200, body) if body else (204, b"")

    def _grow_while_listing(self, d: dt.date, mod: int) -> None:
        f = self.faults
        self.day_requests[d] += 1
        room = f.grow_max - self.grown[d]
        if self.day_requests[d] % f.grow_every or room <= 0:
            return
        n = min(f.grow_by, room)
        self.sim.grow(d, n, order=f.grow_order, modalidade=mod)
        self.grown[d] += n
        self.fault_counts["grow"] += n
        self.clear_listing_cache()

    def _cached_window(self, kind: str, d0: dt.date, d1: dt.date, mod: int) -> list[Any]:
        key = (kind, d0, d1, mod)
        win = self._windows.get(key)
        if win is None:
            if len(self._windows) > 5000:
                self._windows.clear()
            window = self.sim.atualizacao_window if kind == "atualizacao" else self.sim.window
            win = self._windows[key] = window(d0, d1, mod)
        return win

    def _compra(self, request: web.Request) -> Any:
        path, mi = request.path, request.match_info
        try:
            ano, seq = int(mi["ano"]), int(mi["seq"])
        except ValueError:
            raise _bad_request(
                "Failed to convert value of type 'java.lang.String' to required type 'java.lang.Integer'", path
            ) from None
        c = self.sim.find(mi["cnpj"], ano, seq)
        if c is None or self.sim.is_gone(c.id):
            raise _not_found("Contratação não cadastrada.", path)
        return c

    def detail(self, request: web.Request, spurious: bool) -> tuple[int, bytes]:
        c = self._compra(request)
        what = request.match_info["what"]
        q, path = request.query, request.path
        pagina = _int_param(q, "pagina", "Integer", path, required=False, default=1)
        size = _int_param(q, "tamanhoPagina", "Integer", path, required=False, default=10)
        assert pagina is not None and size is not None
        if pagina < 1 or size < 1:
            raise _bad_request("must be greater than or equal to 1", path)
        if what == "arquivos" and c.n_arquivos == 0:
            return 204, b""
        if self.page_cap is not None:
            size = min(size, self.page_cap)  # silently, as a server with a hidden maximum would
        if what == "itens" and pagina > 1 and self._repeats(c.id):
            self.fault_counts["repeat_page"] += 1
            pagina = 1

        def make() -> bytes:
            frags = self.sim.item_frags(c) if what == "itens" else self.sim.arquivo_frags(c)
            return b"[" + b",".join(frags[(pagina - 1) * size : pagina * size]) + b"]"

        return 200, self._cached(("detail", c.id, c.rev, what, pagina, size), make)

    def _repeats(self, cid: str) -> bool:
        f = self.faults
        if cid in f.repeat_ids:
            return True
        if not f.repeat_share:
            return False
        hit = self._repeat_share.get(cid)
        if hit is None:
            hit = self._repeat_share[cid] = random.Random(f"{f.seed}|repeat|{cid}").random() < f.repeat_share
        return hit

    def resultados(self, request: web.Request, spurious: bool) -> tuple[int, bytes]:
        """An item's results: a bare array; no result is a 204, or a 404 for the ``resultados_404`` share."""
        c = self._compra(request)
        raw = request.match_info["item"]
        try:
            k = int(raw)
        except ValueError:
            raise _bad_request(
                f"Failed to convert value of type 'java.lang.String' to required type 'java.lang.Integer'; For input string: \"{raw}\"",
                request.path,
            ) from None
        key = ("resultados", c.id, c.rev, k)
        body = self._cached(key, lambda: _array(resultado_frags(self.sim, c, k)))
        if body == b"null":
            raise _not_found("Item de contratação não encontrado.", request.path)
        if body == b"[]":
            share = self.faults.resultados_404
            if share and random.Random(f"{self.faults.seed}|404|{c.id}|{k}").random() < share:
                self.fault_counts["resultados_404"] += 1
                raise _not_found("Resultado não encontrado.", request.path)
            return 204, b""
        return 200, body

    def quantidade(self, request: web.Request, spurious: bool) -> tuple[int, bytes]:
        c = self._compra(request)
        n = c.n_itens if request.match_info["what"] == "itens" else c.n_arquivos
        return 200, str(n).encode()

    def unknown(self, request: web.Request, spurious: bool) -> tuple[int, bytes]:
        raise _not_found("No static resource " + _spring_path(request.path).lstrip("/") + ".", request.path)

    # ------------------------------------------------------------------ fault pipeline

    def route(
        self, kind: str, family: Family, fn: Callable[[web.Request, bool], tuple[int, bytes]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            self.requests[kind] += 1
            f = self.faults
            spurious = truncate = cut = False
            if family in f.families:
                rng = self.rng
                self.in_flight[family] += 1
                try:
                    in_flight = self._counted_in_flight(f, family)
                    if f.knee or f.overload_at or f.block_s:
                        self.max_in_flight[family] = max(self.max_in_flight[family], in_flight)
                    fault = self._load_fault(f, family, in_flight)
                    if fault is not None:
                        return fault
                    delay = f.latency_ms * (rng.lognormvariate(0.0, f.latency_sigma) if f.latency_sigma else 1.0)
                    delay += rng.uniform(0, f.jitter_ms) if f.jitter_ms else 0.0
                    if f.knee and in_flight > f.knee:
                        delay *= in_flight / f.knee
                    if delay > 0:
                        await asyncio.sleep(delay / 1000)
                    fault = self._early_fault(f, family, request)
                    if fault is not None:
                        return fault
                    if f.rate_timeout and rng.random() < f.rate_timeout:
                        self.fault_counts["timeout"] += 1
                        await asyncio.sleep(f.hang_s)
                finally:
                    self.in_flight[family] -= 1
                spurious = family == "consulta" and bool(f.rate_spurious_422) and rng.random() < f.rate_spurious_422
                truncate = bool(f.rate_truncate) and rng.random() < f.rate_truncate
                cut = bool(f.rate_cut) and rng.random() < f.rate_cut
            try:
                status, body = fn(request, spurious)
                ctype: str | None = _JSON
            except _Reply as r:
                status, body, ctype = r.status, r.body, r.ctype
            whole_json = status == 200 and body[:1] in (b"[", b"{") and len(body) >= 2
            if truncate and whole_json:
                self.fault_counts["truncate"] += 1
                body = body[: len(body) // 2]
            elif cut and whole_json:
                self.fault_counts["cut"] += 1
                return await self._cut(request, body)
            if status == 204 and family in f.families and f.empty_200 and self.rng.random() < f.empty_200:
                return await self._empty_200(request)
            return self._respond(status, body, ctype)

        return handler

    async def _cut(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """A 200 whose Content-Length announces ``body`` while half of it is sent before the
        connection closes: a transfer cut short, which a client can tell from the byte count."""
        self.statuses["200"] += 1
        response = web.StreamResponse(status=200, headers={**_BASE_HEADERS, "Content-Type": _JSON})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.close()  # after what was written is flushed
        return response

    async def _empty_200(self, request: web.Request) -> web.StreamResponse:
        """PNCP's other way of saying 204: a complete 200 with no body, alternately as
        Content-Length: 0 and as a chunked body of no chunk."""
        self.statuses["200"] += 1
        self.fault_counts["empty_200"] += 1
        headers = {**_BASE_HEADERS, "Content-Type": _JSON}
        if self.fault_counts["empty_200"] % 2:
            return web.Response(status=200, body=b"", headers=headers)
        response = web.StreamResponse(status=200, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write_eof()
        return response

    def _counted_in_flight(self, f: Faults, family: str) -> int:
        """The requests in flight a block counts: this family's, or with ``block_scope`` "client" every affected family's."""
        if f.block_scope == "client":
            return sum(self.in_flight[name] for name in f.families)
        return self.in_flight[family]

    def _load_fault(self, f: Faults, family: str, in_flight: int) -> web.StreamResponse | None:
        """The load-dependent answers: a block (too many in flight, or arriving too fast) and overload."""
        if f.block_s and (f.block_over or f.block_rate):
            now = asyncio.get_running_loop().time()
            family = "client" if f.block_scope == "client" else family
            arrivals = self.arrivals[family]
            arrivals.append(now)
            while arrivals and arrivals[0] <= now - 1.0:
                arrivals.popleft()
            if now >= self.blocked_until[family] and (
                (f.block_over and in_flight > f.block_over) or (f.block_rate and len(arrivals) > f.block_rate)
            ):
                self.blocked_until[family] = now + f.block_s
                self.fault_counts["block"] += 1
            if now < self.blocked_until[family]:
                self.fault_counts["429"] += 1
                self.fault_counts["blocked_429"] += 1
                return self._respond(429, HTML_429, "text/html;charset=UTF-8")
        if f.overload_at and in_flight > f.overload_at:
            self.fault_counts["overload_503"] += 1
            return self._respond(503, b"", None)
        return None

    def _early_fault(self, f: Faults, family: str, request: web.Request) -> web.StreamResponse | None:
        rng = self.rng
        if self.burst[family] > 0 or (f.rate_429 and rng.random() < f.rate_429):
            if self.burst[family] > 0:
                self.burst[family] -= 1
            else:
                self.burst[family] = f.burst_429 - 1
            self.fault_counts["429"] += 1
            return self._respond(429, HTML_429, "text/html;charset=UTF-8")
        if f.rate_5xx and rng.random() < f.rate_5xx:
            self.fault_counts["5xx"] += 1
            status = rng.choice((500, 502, 503, 504))
            if status == 500:
                return self._respond(
                    500,
                    dumps(
                        {
                            "timestamp": _now_utc(),
                            "status": 500,
                            "error": "Internal Server Error",
                            "message": HIKARI,
                            "path": _spring_path(request.path),
                        }
                    ),
                    _JSON,
                )
            if status == 503:
                return self._respond(503, b"", None)
            return self._respond(status, HTML_502 if status == 502 else HTML_504, "text/html")
        if f.rate_drop and rng.random() < f.rate_drop:
            self.fault_counts["drop"] += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        return None

    def _respond(self, status: int, body: bytes, ctype: str | None) -> web.Response:
        self.statuses[str(status)] += 1
        headers = dict(_BASE_HEADERS)
        if ctype:
            headers["Content-Type"] = ctype
        return web.Response(status=status, body=body if status != 204 else None, headers=headers)

    # ------------------------------------------------------------------ control routes

    async def ctl_truth(self, request: web.Request) -> web.Response:
        d = _ctl_date(request)
        details, versions = _flag(request, "details"), _flag(request, "versions")
        return web.Response(body=self.sim.truth_bytes(d, details=details, versions=versions), content_type=_JSON)

    async def ctl_truth_atualizacao(self, request: web.Request) -> web.Response:
        d = _ctl_date(request)
        details, versions = _flag(request, "details"), _flag(request, "versions")
        body = self.sim.truth_atualizacao_bytes(d, details=details, versions=versions)
        return web.Response(body=body, content_type=_JSON)

    async def ctl_update(self, request: web.Request) -> web.Response:
        d = _ctl_date(request)
        q = request.query
        try:
            first = q["first"]
            changed = self.sim.update(d, first, q.get("last"), float(q.get("share", "0.3")))
        except KeyError:
            raise _ctl_error(400, "query parameter first=YYYY-MM-DD (first publication day) is required") from None
        except ValueError as exc:
            raise _ctl_error(400, str(exc)) from None
        self.clear_listing_cache()
        return web.json_response({"updated": changed})

    async def ctl_homologate(self, request: web.Request) -> web.Response:
        d = _ctl_date(request)
        q = request.query
        try:
            first = q["first"]
            share, listed = float(q.get("share", "0.5")), float(q.get("listed", "0.5"))
            changed = self.sim.homologate(d, first, q.get("last"), share, listed)
        except KeyError:
            raise _ctl_error(400, "query parameter first=YYYY-MM-DD (first publication day) is required") from None
        except ValueError as exc:
            raise _ctl_error(400, str(exc)) from None
        self.clear_listing_cache()
        return web.json_response({"homologated": changed})

    async def ctl_homologations(self, request: web.Request) -> web.Response:
        return web.json_response(self.sim.homologated)

    async def ctl_grow(self, request: web.Request) -> web.Response:
        d = _ctl_date(request)
        try:
            n = int(request.query.get("n", "1"))
            ids = self.sim.grow(d, n)
        except ValueError as exc:
            raise _ctl_error(400, str(exc)) from None
        self.clear_listing_cache()
        return web.json_response({"added": ids})

    async def ctl_remove(self, request: web.Request) -> web.Response:
        cid = request.query.get("id", "")
        try:
            self.sim.remove(cid)
        except KeyError:
            raise _ctl_error(404, f"unknown contratação {cid!r}") from None
        return web.json_response({"removed": cid})

    async def ctl_get_faults(self, request: web.Request) -> web.Response:
        return web.Response(body=self.faults.model_dump_json().encode(), content_type=_JSON)

    async def ctl_put_faults(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            faults = Faults.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise _ctl_error(400, str(exc)) from None
        self.set_faults(faults)
        return web.Response(body=faults.model_dump_json().encode(), content_type=_JSON)

    async def ctl_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def ctl_reset_stats(self, request: web.Request) -> web.Response:
        self.reset_stats()
        return web.json_response(self.stats())

    async def ctl_health(self, request: web.Request) -> web.Response:
        s = self.sim
        return web.json_response(
            {
                "ok": True,
                "seed": s.seed,
                "per_day": s.per_day,
                "big_items": s.big_items,
                "exotic": s.exotic,
                "page_cap": self.page_cap,
                "contratos_per_day": self.outcomes.contratos_per_day,
                "atas_per_day": self.outcomes.atas_per_day,
            }
        )


def _array(frags: list[bytes] | None) -> bytes:
    """A bare JSON array of fragments (``null`` for None)."""
    return b"null" if frags is None else b"[" + b",".join(frags) + b"]"


def _ctl_error(status: int, message: str) -> _Reply:
    return _Reply(status, dumps({"error": message}))


def _ctl(fn: Callable[[web.Request], Awaitable[web.Response]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            return await fn(request)
        except _Reply as r:
            return web.Response(status=r.status, body=r.body, content_type=_JSON)

    return handler


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true", "yes")


def _ctl_date(request: web.Request) -> dt.date:
    try:
        return as_date(request.query["date"])
    except (KeyError, ValueError, TypeError):
        raise _ctl_error(400, "query parameter date=YYYY-MM-DD is required") from None


def make_app(
    sim: SimulatedPncp,
    faults: Faults | None = None,
    page_cap: int | None = None,
    outcomes: SimulatedOutcomes | None = None,
) -> web.Application:
    """The aiohttp application serving ``sim`` under ``/api`` plus the ``/_sim`` control routes.

    ``page_cap``: ``/itens`` and ``/arquivos`` silently serve at most that many records per page.
    ``outcomes``: the contratos and atas served (default: ``SimulatedOutcomes(sim)``).
    """
    from ._app_outcomes import add_outcome_routes  # built on this module's helpers

    st = SimState(sim, faults, page_cap, outcomes)
    app = web.Application()
    app["sim_state"] = st
    r = app.router
    r.add_get("/api/pncp/v1/modalidades", st.route("modalidades", "detail", st.modalidades))
    consulta = st.route("contratacoes", "consulta", st.consulta)
    r.add_get("/api/consulta/v1/contratacoes/publicacao", consulta)
    r.add_get("/api/consulta/v1/contratacoes/atualizacao", consulta)
    compra = "/api/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/{what:itens|arquivos}"
    r.add_get(compra, _by_what(st.route("itens", "detail", st.detail), st.route("arquivos", "detail", st.detail)))
    r.add_get(compra + "/quantidade", st.route("other", "detail", st.quantidade))
    resultados = "/api/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens/{item}/resultados"
    r.add_get(resultados, st.route("resultados", "detail", st.resultados))
    add_outcome_routes(app, st, st.outcomes)
    r.add_get("/_sim/truth", _ctl(st.ctl_truth))
    r.add_get("/_sim/truth/atualizacao", _ctl(st.ctl_truth_atualizacao))
    r.add_post("/_sim/update", _ctl(st.ctl_update))
    r.add_post("/_sim/homologate", _ctl(st.ctl_homologate))
    r.add_get("/_sim/homologations", _ctl(st.ctl_homologations))
    r.add_post("/_sim/grow", _ctl(st.ctl_grow))
    r.add_post("/_sim/remove", _ctl(st.ctl_remove))
    r.add_get("/_sim/faults", _ctl(st.ctl_get_faults))
    r.add_put("/_sim/faults", _ctl(st.ctl_put_faults))
    r.add_get("/_sim/stats", _ctl(st.ctl_stats))
    r.add_post("/_sim/stats/reset", _ctl(st.ctl_reset_stats))
    r.add_get("/_sim/health", _ctl(st.ctl_health))
    r.add_route("*", "/api/consulta/{tail:.*}", st.route("other", "consulta", st.unknown))
    r.add_route("*", "/api/{tail:.*}", st.route("other", "detail", st.unknown))
    return app


def _by_what(
    itens: Callable[[web.Request], Awaitable[web.StreamResponse]],
    arquivos: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await (itens if request.match_info["what"] == "itens" else arquivos)(request)

    return handler


class _EofProtocol(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        self.stop.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` when stdin reaches EOF (the parent closed the pipe or died)."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return  # no stdin at all: nothing to watch
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        await loop.connect_read_pipe(lambda: _EofProtocol(stop), os.fdopen(os.dup(0), "rb", buffering=0))
        return

    def watch() -> None:  # a file, tty or /dev/null: read it raw (never the buffered sys.stdin)
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="sim-stdin-watch", daemon=True).start()


async def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    seed: int = 42,
    per_day: int = 200,
    big_items: bool = True,
    exotic: float = 0.0,
    page_cap: int | None = None,
    faults: Faults | dict[str, Any] | None = None,
    contratos_per_day: int = CONTRATOS_PER_DAY,
    atas_per_day: int = ATAS_PER_DAY,
    on_ready: Callable[[str], None] | None = None,
    stop_event: asyncio.Event | None = None,
    exit_on_stdin_eof: bool = False,
) -> None:
    """Run the simulator until SIGTERM/SIGINT, ``stop_event`` or (optionally) EOF on stdin.

    Once bound, calls ``on_ready(base_url)``; by default prints ``listening <base_url>``
    (``base_url`` ends in ``/api``) on stdout and flushes.
    """
    if isinstance(faults, dict):
        faults = Faults.model_validate(faults)
    sim = SimulatedPncp(seed, per_day=per_day, big_items=big_items, exotic=exotic)
    app = make_app(sim, faults, page_cap, SimulatedOutcomes(sim, contratos_per_day, atas_per_day))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.create_server((host, port), backlog=2048)
    site = web.SockSite(runner, sock)
    await site.start()
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/api"

    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    if exit_on_stdin_eof:
        await _watch_stdin(loop, stop)
    if on_ready is None:
        print(f"listening {url}", flush=True)
    else:
        on_ready(url)
    try:
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
