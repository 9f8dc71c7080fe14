"""The PNCP client over real HTTP to the simulator: the API's rules and traps, retries and what
they report, and the adaptive per-family limit (never above its ceiling, down on 429/5xx/timeouts,
back up when the faults stop). In-flight is counted on the client side, around every request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import anyio
import httpx
import pytest

from pncp_ingest.config import USER_AGENT, load_settings
from pncp_ingest.errors import ApiError, ApiUnreachableError, NotFoundError
from pncp_ingest.pncp import (
    ClientConfig,
    FamilyLimits,
    PncpClient,
    RetryNotice,
    RetryPolicy,
    client_config,
    create_http_client,
)
from pncp_ingest.records import DetailKind, Item, bronze_row
from pncp_ingest.testing import MODALIDADES

DAY = date(2025, 10, 22)


class Counting:
    """The run's HTTP client, recording for every detail request how many were in flight and the limit."""

    def __init__(self, inner: httpx.AsyncClient) -> None:
        self.inner = inner
        self.family: Any = None  # the detail family's FamilyStats, live
        self.in_flight = 0
        self.max_in_flight = 0
        self.limits_seen: list[int] = []
        self.urls: list[str] = []

    @asynccontextmanager
    async def stream(self, method: str, url: str) -> AsyncIterator[httpx.Response]:
        detail = "/pncp/v1/orgaos/" in url
        if detail:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            assert self.family is not None
            self.limits_seen.append(self.family.limit)
        self.urls.append(url)
        try:
            async with self.inner.stream(method, url) as response:
                yield response
        finally:
            if detail:
                self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


def config(sim: Any, **kw: Any) -> ClientConfig:
    """The client's configuration as a run builds it: settings (here without .env) → client_config."""
    base = dict(
        base_url=sim.base_url,
        concurrency=8,
        rate=0,
        consulta_concurrency=4,
        consulta_rate=0,
        backoff_initial=0,
        backoff_max=0,
        throttle_pause=0.01,
        max_retries=8,
        timeout=10,
    )
    on_retry = kw.pop("on_retry", None)
    return client_config(load_settings(None, **{**base, **kw}), on_retry=on_retry)


def with_client(c: ClientConfig, body: Callable[[PncpClient, Counting], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        counting = Counting(create_http_client(c))
        async with PncpClient(c, http=counting) as client:
            counting.family = client.stats.families["detail"]
            return await body(client, counting)

    return anyio.run(main)


def compras(sim: Any) -> list[tuple[str, str, int, int]]:
    """(id, cnpj, ano, sequencial) of the day's contratações."""
    return [
        (c["numeroControlePNCP"], c["orgaoEntidade"]["cnpj"], c["anoCompra"], c["sequencialCompra"])
        for c in sim.truth(DAY)["contratacoes"]
    ]


async def rows(client: PncpClient, kind: DetailKind, cnpj: str, ano: int, seq: int) -> list[dict[str, Any]]:
    return (await client.detail(kind, cnpj, ano, seq)).rows


async def fetch_all(client: PncpClient, todo: list[tuple[str, str, int, int]]) -> dict[str, tuple[int, int]]:
    """Every compra's itens and arquivos, all at once (the limiter decides how many fly)."""
    got: dict[str, tuple[int, int]] = {}

    async def one(cid: str, cnpj: str, ano: int, seq: int) -> None:
        itens = await rows(client, "itens", cnpj, ano, seq)
        arquivos = await rows(client, "arquivos", cnpj, ano, seq)
        got[cid] = (len(itens), len(arquivos))

    async with anyio.create_task_group() as tg:
        for compra in todo:
            tg.start_soon(one, *compra)
    return got


def test_every_item_comes_paged_never_the_10_item_default(sim_factory):
    sim = sim_factory(seed=7, per_day=40, big_items=True)
    truth = sim.truth(DAY)
    todo = compras(sim)

    async def body(client: PncpClient, counting: Counting) -> dict[str, tuple[int, int]]:
        return await fetch_all(client, todo)

    got = with_client(config(sim), body)
    assert got == {cid: (truth["itens"][cid], truth["arquivos"][cid]) for cid, *_ in todo}
    assert {0, 10, 11, 500, 501, 1203} <= {n for n, _ in got.values()}
    assert any(a == 0 for _, a in got.values())  # 204 is an empty list
    # Every request pages explicitly, 500 at a time; 1203 itens take exactly 3 pages.
    stats = sim.stats()
    pages = sum(n // 500 + 1 for n, _ in got.values())  # a full page asks for the next one
    assert stats["requests"]["itens"] == pages
    assert stats["requests"]["arquivos"] == len(todo)


def test_rows_are_the_same_as_bronze_row_of_the_raw_records(sim_factory):
    sim = sim_factory(seed=7, per_day=12, big_items=True)
    _, cnpj, ano, seq = next(c for c in compras(sim) if sim.truth(DAY)["itens"][c[0]] == 11)
    url = f"{sim.base_url}/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens?pagina=1&tamanhoPagina=500"
    raw = httpx.get(url, trust_env=False).json()

    async def body(client: PncpClient, counting: Counting) -> list[dict]:
        return await rows(client, "itens", cnpj, ano, seq)

    got = with_client(config(sim), body)
    assert len(got) == 11
    assert got == [bronze_row(Item, r) for r in raw]
    assert all(r["_extra"] is None for r in got)


def test_consulta_pages_within_the_api_size_rules(sim_factory):
    sim = sim_factory(seed=7, per_day=120)

    async def body(client: PncpClient, counting: Counting) -> list[dict]:
        records = []
        for modalidade in await client.modalidades():
            first = await client.contratacoes_page(DAY, modalidade, 1)
            records += first.records
            for pagina in range(2, first.total_paginas + 1):
                records += (await client.contratacoes_page(DAY, modalidade, pagina)).records
        # Past the last page: 204, an empty page.
        assert (await client.contratacoes_page(DAY, 6, 99)).records == []
        return records

    records = with_client(config(sim), body)
    assert sorted(r["numeroControlePNCP"] for r in records) == sorted(c[0] for c in compras(sim))
    assert sim.stats()["statuses"].get("400", 0) == 0  # tamanhoPagina within 10..50


def test_404_is_not_found_and_not_retried(sim_factory):
    sim = sim_factory(seed=7, per_day=10)
    cid, cnpj, ano, seq = compras(sim)[3]
    sim.remove(cid)

    async def body(client: PncpClient, counting: Counting) -> None:
        with pytest.raises(NotFoundError):
            await rows(client, "itens", cnpj, ano, seq)
        assert client.stats.retries == 0

    with_client(config(sim), body)


def test_truncated_json_and_dropped_connections_are_retried(sim_factory):
    sim = sim_factory(seed=7, per_day=30, big_items=True)
    truth = sim.truth(DAY)
    todo = compras(sim)
    sim.set_faults(rate_truncate=0.2, rate_drop=0.1, families=["detail"], seed=3)

    async def body(client: PncpClient, counting: Counting) -> dict[str, tuple[int, int]]:
        got = await fetch_all(client, todo)
        assert client.stats.retries > 0
        # A dropped connection is a connection error, never a timeout (aiohttp itself may resend
        # a request whose kept-alive connection was dropped, so it need not reach us at all).
        assert client.stats.statuses["timeout"] == 0
        return got

    got = with_client(config(sim, max_retries=20), body)
    assert got == {cid: (truth["itens"][cid], truth["arquivos"][cid]) for cid, *_ in todo}
    faults = sim.stats()["faults"]
    assert faults.get("truncate", 0) > 0 and faults.get("drop", 0) > 0


def test_429_bursts_pause_without_collapsing_the_limit_which_never_exceeds_the_ceiling_and_recovers(sim_factory):
    sim = sim_factory(seed=11, per_day=150)
    todo = compras(sim)
    ceiling = 8
    # With some latency, as PNCP has, the requests in flight take a burst's 429s, not only the probe.
    sim.set_faults(latency_ms=20, rate_429=0.03, burst_429=3, families=["detail"], seed=5)

    async def body(client: PncpClient, counting: Counting) -> None:
        stats = client.stats.families["detail"]
        await fetch_all(client, todo)
        assert client.stats.throttled > 0
        # Random bursts, over by the probe after their pause, are not load: at most a rare cut.
        assert stats.pauses > 0 and stats.paused_s > 0 and stats.blocks > 0
        assert stats.cuts["429"] <= stats.blocks // 4 and stats.min_limit >= ceiling // 2, stats
        assert counting.max_in_flight <= ceiling and stats.max_in_flight <= ceiling
        assert max(counting.limits_seen) <= ceiling
        # The faults stop: healthy answers bring the limit back to the ceiling, never above.
        sim.set_faults()
        rounds = 0
        while stats.limit < ceiling:
            rounds += 1
            assert rounds <= 40, f"the limit did not recover: {stats}"
            await fetch_all(client, todo)
        assert stats.limit == ceiling and stats.increases > 0
        assert counting.max_in_flight <= ceiling and max(counting.limits_seen) <= ceiling
        json.dumps(client.stats.limits())  # what --json shows

    with_client(config(sim, concurrency=ceiling), body)


def test_mostly_5xx_and_timeouts_cut_the_limit_and_in_flight_stays_under_it(sim_factory):
    sim = sim_factory(seed=11, per_day=80)
    todo = compras(sim)
    ceiling = 6
    sim.set_faults(rate_5xx=0.4, rate_timeout=0.02, hang_s=5, families=["detail"], seed=8)

    async def body(client: PncpClient, counting: Counting) -> None:
        await fetch_all(client, todo)
        stats = client.stats.families["detail"]
        assert client.stats.statuses["timeout"] > 0
        assert stats.decreases > 0 and stats.min_limit < ceiling
        assert stats.paused_s == 0  # only a 429 (or a Retry-After) pauses the family
        assert counting.max_in_flight <= ceiling

    with_client(config(sim, concurrency=ceiling, timeout=0.5, max_retries=30, retry_budget=0), body)


def test_fixed_limit_when_not_adaptive(sim_factory):
    sim = sim_factory(seed=11, per_day=60)
    todo = compras(sim)
    sim.set_faults(rate_429=0.05, burst_429=2, rate_5xx=0.05, families=["detail"], seed=2)

    async def body(client: PncpClient, counting: Counting) -> None:
        await fetch_all(client, todo)
        stats = client.stats.families["detail"]
        assert client.stats.throttled > 0 and stats.pauses > 0
        assert stats.limit == stats.min_limit == 8 and stats.decreases == 0
        assert counting.max_in_flight <= 8

    with_client(config(sim, adaptive=False), body)


def test_an_unreachable_api_is_reported_as_such():
    class Nowhere:
        base_url = "http://127.0.0.1:9/api"  # discard port: nothing listens

    async def body(client: PncpClient, counting: Counting) -> None:
        with pytest.raises(ApiUnreachableError, match="unreachable .*connection failed"):
            await client.modalidades()
        assert client.stats.statuses["connection"] == 2 and client.stats.statuses["timeout"] == 0

    with_client(config(Nowhere, max_retries=1), body)


# -- the retry policy and what it reports ------------------------------------------------------


def test_every_retry_is_reported_with_its_url_wait_and_reason(sim_factory):
    sim = sim_factory(seed=11, per_day=40)
    todo = compras(sim)
    sim.set_faults(rate_5xx=0.15, rate_truncate=0.1, families=["detail"], seed=4)
    notices: list[RetryNotice] = []

    async def body(client: PncpClient, counting: Counting) -> None:
        await fetch_all(client, todo)
        assert client.stats.retries == len(notices) > 0
        # Every failed attempt of these concurrent requests was retried, and each request ended well.
        assert client.stats.requests == client.stats.ok + client.stats.retries

    with_client(config(sim, max_retries=20, on_retry=notices.append), body)
    assert {n.family for n in notices} == {"detail"}
    # Detail pages, and the /quantidade a short page of a round size makes the client ask.
    assert all("/pncp/v1/orgaos/" in n.url for n in notices)
    assert all("tamanhoPagina=" in n.url or n.url.endswith("/quantidade") for n in notices)
    reasons = {n.reason.split(" ")[0] for n in notices}
    assert {"HTTP", "the"} <= reasons  # "HTTP 503", "the response was not valid JSON (truncated?)"
    assert all(n.wait_s == 0 and n.attempts == 21 and 1 <= n.failed_attempt <= 20 for n in notices)
    assert str(notices[0]).startswith(f"retrying {notices[0].url} in 0.00 s because ")


def test_waits_are_full_jitter_exponential_and_stop_after_the_attempts():
    class Nowhere:
        base_url = "http://127.0.0.1:9/api"

    notices: list[RetryNotice] = []

    async def body(client: PncpClient, counting: Counting) -> None:
        with pytest.raises(ApiUnreachableError):
            await client.modalidades()
        assert client.stats.requests == 5 and client.stats.retries == 4

    policy = dict(max_retries=4, backoff_initial=0.004, backoff_max=0.01)
    with_client(config(Nowhere, **policy, on_retry=notices.append), body)
    assert [n.failed_attempt for n in notices] == [1, 2, 3, 4]
    for n in notices:  # uniform in [0, min(max, initial * 2^(attempt-1))]
        assert 0 <= n.wait_s <= min(0.01, 0.004 * 2 ** (n.failed_attempt - 1))
        assert n.reason.startswith("connection failed") and n.url.endswith("/api/pncp/v1/modalidades")


def test_a_429_waits_out_the_family_pause_and_is_counted_as_throttled(sim_factory):
    sim = sim_factory(seed=11, per_day=60)
    sim.set_faults(rate_429=0.2, burst_429=2, families=["consulta"], seed=6)
    notices: list[RetryNotice] = []

    async def body(client: PncpClient, counting: Counting) -> int:
        records = 0
        for modalidade in await client.modalidades():
            page = await client.contratacoes_page(DAY, modalidade, 1)
            records += len(page.records)
            for pagina in range(2, page.total_paginas + 1):
                records += len((await client.contratacoes_page(DAY, modalidade, pagina)).records)
        assert client.stats.throttled == client.stats.statuses["429"] == len(notices) > 0
        assert client.stats.families["consulta"].pauses > 0
        return records

    records = with_client(config(sim, throttle_pause=0.05, on_retry=notices.append), body)
    assert records == len(compras(sim))
    assert all(n.family == "consulta" and n.reason == "429 Too Many Requests" for n in notices)
    assert all(0 < n.wait_s <= 0.05 for n in notices)  # no Retry-After: the family pause, not a backoff


def test_the_spurious_365_day_422_is_retried_and_other_422s_are_not(sim_factory):
    sim = sim_factory(seed=7, per_day=60)
    sim.set_faults(rate_spurious_422=0.3, families=["consulta"], seed=9)
    notices: list[RetryNotice] = []

    async def body(client: PncpClient, counting: Counting) -> None:
        got = 0
        for modalidade in await client.modalidades():
            page = await client.contratacoes_page(DAY, modalidade, 1)
            got += len(page.records)
            for pagina in range(2, page.total_paginas + 1):
                got += len((await client.contratacoes_page(DAY, modalidade, pagina)).records)
        assert got == len(compras(sim))
        retries = client.stats.retries
        assert retries == len(notices) > 0
        with pytest.raises(ApiError, match="HTTP 422 Código da modalidade") as caught:
            await client.contratacoes_page(DAY, 99, 1)  # a code PNCP does not serve: no retry can fix it
        assert not caught.value.retryable and client.stats.retries == retries

    with_client(config(sim, max_retries=20, on_retry=notices.append), body)
    assert notices and all(n.reason.startswith("spurious 422") for n in notices)
    assert sim.stats()["faults"]["spurious_422"] == len(notices)


def test_the_client_needs_no_application_settings(sim_factory):
    sim = sim_factory(seed=7, per_day=5)
    c = ClientConfig(
        base_url=sim.base_url,
        detail=FamilyLimits(concurrency=2, rate=0),
        consulta=FamilyLimits(concurrency=1, rate=0),
        timeout=5,
        retry=RetryPolicy(
            max_retries=0, backoff_initial=0, backoff_max=0, throttle_pause=0, throttle_pause_initial=0, retry_budget=0
        ),
        adaptive=True,
    )

    async def main() -> list[int]:
        async with PncpClient(c) as client:
            return await client.modalidades()

    assert anyio.run(main) == sorted(m["id"] for m in MODALIDADES if m.get("statusAtivo", True))
    assert client_config(load_settings(None, concurrency=3, max_retries=2)).retry.attempts == 3


def test_gzip_bodies_redirects_and_the_user_agent():
    """What the run's httpx client must do: send our User-Agent, decode content-encoding, follow
    redirects (a loop of them is a failure of that URL, not retried)."""
    import gzip

    from aiohttp import web

    async def main() -> None:
        async def itens(request: web.Request) -> web.Response:
            assert "gzip" in request.headers.get("accept-encoding", "")
            assert request.headers.get("user-agent") == USER_AGENT
            body = gzip.compress(json.dumps([{"numeroItem": 1}, {"numeroItem": 2}]).encode())
            return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPMovedPermanently(str(request.url).replace("/old/", "/api/"))

        async def loop(request: web.Request) -> web.Response:
            raise web.HTTPFound(str(request.url))

        app = web.Application()
        app.router.add_get("/api/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens", itens)
        app.router.add_get("/old/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens", moved)
        app.router.add_get("/old/pncp/v1/modalidades", loop)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            c = client_config(load_settings(None, base_url=f"http://127.0.0.1:{port}/old"))
            async with PncpClient(c) as client:
                assert [r["numeroItem"] for r in await rows(client, "itens", "00000000000191", 2025, 1)] == [1, 2]
                assert client.stats.requests == 1 and client.stats.retries == 0
                with pytest.raises(ApiError, match="redirects") as caught:
                    await client.modalidades()
                assert not caught.value.retryable and client.stats.retries == 0
        finally:
            await runner.cleanup()

    anyio.run(main)
