"""The family limits under PNCP-like server behaviours, over real HTTP to the simulator: a block
learned rather than assumed (short first pause, doubling while it lasts, up to the cap, shrinking
after good answers; Retry-After wins), noise that does not lower the limit, a saturating server
held near its knee, and an outage that the retry budget stops hammering. Then the rules of the
adaptive limit themselves, on made-up windows."""

from __future__ import annotations

import statistics

import anyio
import pytest
from aiohttp import web
from test_client import Counting, compras, config, fetch_all, with_client

from pncp_ingest.errors import ApiError
from pncp_ingest.pncp import PncpClient, RetryNotice, _limits
from pncp_ingest.pncp._adaptive import MIN_WINDOW, SLOW_START_WINDOW, AdaptiveLimit
from pncp_ingest.pncp._limits import FamilyLimiter

# -- learning the block ------------------------------------------------------------------------


def test_a_block_without_retry_after_is_learned_doubling_up_to_the_cap(sim_factory):
    sim = sim_factory(seed=11, per_day=60)
    todo = compras(sim)
    # PNCP's consulta way, scaled down: more than 3 in flight blocks every request for 1.2 s, HTML 429.
    sim.set_faults(latency_ms=20, block_over=3, block_s=1.2, families=["detail"])
    notices: list[RetryNotice] = []

    async def body(client: PncpClient, counting: Counting) -> None:
        await fetch_all(client, todo)
        stats = client.stats.families["detail"]
        assert stats.blocks >= 1 and stats.pauses > stats.blocks  # a block outlasted its first pause
        assert stats.limit <= 4 and stats.min_limit < 8  # the block halved the limit

    with_client(config(sim, throttle_pause_initial=0.1, throttle_pause=0.8, on_retry=notices.append), body)
    waits = [n.wait_s for n in notices if n.reason == "429 Too Many Requests"]
    server = sim.stats()["faults"]
    assert server["block"] >= 1
    # One probe per pause, not every worker: the 429s are the requests in flight when a block
    # began plus one per pause (0.1 + 0.2 + 0.4 + 0.8 ≥ 1.2 s: at most five pauses per block).
    assert server["blocked_429"] <= server["block"] * (8 + 5)
    assert waits == [] or max(waits) <= 0.8 + 0.05


def test_the_pause_doubles_while_429s_keep_coming_and_the_next_block_starts_at_the_learned_length(sim_factory):
    sim = sim_factory(seed=11, per_day=150)
    todo = compras(sim)
    sim.set_faults(latency_ms=20, block_over=2, block_s=1.0, families=["detail"])
    notices: list[RetryNotice] = []

    async def body(client: PncpClient, counting: Counting) -> None:
        limiter = client._families["detail"]
        await fetch_all(client, todo[:10])
        assert limiter.stats.blocks == 1
        # 0.1 + 0.2 + 0.4 < 1 s ≤ ... + 0.8: the block was learned by doubling, never the 5 s cap at once.
        assert limiter.stats.pauses == 4 and limiter.stats.paused_s == pytest.approx(1.5, abs=0.05), limiter.stats
        learned = limiter.stats.next_pause_s
        assert 1.0 <= learned <= 1.6, limiter.stats
        # The next block (now for arriving too fast) starts with one pause as long as that one lasted.
        notices.clear()
        sim.set_faults(latency_ms=20, block_rate=5, block_s=1.0, families=["detail"])
        await fetch_all(client, todo[10:20])
        assert limiter.stats.blocks >= 2
        first = next(n.wait_s for n in notices if n.reason == "429 Too Many Requests" and n.wait_s > 0.09)
        assert first == pytest.approx(learned, abs=0.05), (first, learned)

    with_client(config(sim, throttle_pause_initial=0.1, throttle_pause=5, on_retry=notices.append), body)


def test_a_stretch_without_429s_halves_the_learned_pause():
    """A block seen to last 1.5 s teaches a first pause of 2.25 s; then every stretch without a 429
    four times as long as the learned pause halves it, back to the first pause (the clock is the
    limiter's: moved, not slept)."""

    async def main() -> None:
        clock = [1000.0]
        limiter = FamilyLimiter("consulta", 2, 0, pause_initial=0.5, pause_cap=30)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_limits, "_now", lambda: clock[0])
            for _ in range(3):  # a block: 0.5, 1, 2 s of pauses, then the probe is answered
                limiter.throttled(limiter.ticket())
                clock[0] = limiter._paused_until
            limiter.feedback(limiter.ticket(), "ok", latency=0.01)
            assert not limiter.probing and limiter.stats.next_pause_s == 2.25
            seen = []
            for _ in range(40):
                clock[0] += 1.0
                limiter.feedback(limiter.ticket(), "ok", latency=0.01)
                seen.append(limiter.stats.next_pause_s)
        assert sorted(set(seen), reverse=True) == [2.25, 1.125, 0.5625, 0.5]
        assert seen.index(1.125) == 6  # 9 s (4 × 2.25) after the last 429, 2 s before the probe

    anyio.run(main)


def test_retry_after_wins_over_the_learned_pause():
    """A server that sends Retry-After: the family pauses exactly that long, and learns nothing."""
    hits: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(anyio.current_time())
        if len(hits) == 1:
            return web.Response(status=429, headers={"Retry-After": "0.4"}, text="slow down")
        return web.json_response([{"id": 6}])

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/pncp/v1/modalidades", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        class Server:
            base_url = f"http://127.0.0.1:{port}/api"

        try:
            c = config(Server, throttle_pause_initial=0.05, throttle_pause=10)
            async with PncpClient(c) as client:
                assert await client.modalidades() == [6]
                stats = client.stats.families["detail"]
                assert stats.pauses == 1 and stats.paused_s == pytest.approx(0.4, abs=0.05)
                assert stats.next_pause_s == pytest.approx(0.05)  # Retry-After taught nothing
        finally:
            await runner.cleanup()

    anyio.run(main)
    assert len(hits) == 2 and hits[1] - hits[0] >= 0.4


# -- evidence of load, not noise ---------------------------------------------------------------


def test_noise_does_not_lower_the_limit(sim_factory):
    sim = sim_factory(seed=11, per_day=150)
    todo = compras(sim)
    # A steady few percent of 5xx, timeouts and dropped connections at a flat latency: noise, not load.
    sim.set_faults(
        latency_ms=20, rate_5xx=0.05, rate_timeout=0.01, hang_s=2, rate_drop=0.01, families=["detail"], seed=3
    )

    async def body(client: PncpClient, counting: Counting) -> None:
        await fetch_all(client, todo)
        stats = client.stats.families["detail"]
        assert client.stats.statuses["timeout"] + client.stats.statuses["connection"] > 0
        assert sum(v for k, v in client.stats.statuses.items() if k.startswith("5")) > 0
        assert stats.decreases == 0 and stats.min_limit == stats.limit == 8, stats  # slow start from 4 up
        assert counting.max_in_flight == 8

    with_client(config(sim, concurrency=8, timeout=0.5, max_retries=20), body)


def test_a_saturating_server_is_held_near_its_knee(sim_factory):
    sim = sim_factory(seed=11, per_day=300)
    todo = compras(sim)
    # Latency grows with in-flight past 4 (50 ms × n/4); past 12 in flight, an immediate 503.
    sim.set_faults(latency_ms=50, knee=4, overload_at=12, families=["detail"])

    async def body(client: PncpClient, counting: Counting) -> None:
        await fetch_all(client, todo)
        stats = client.stats.families["detail"]
        assert stats.decreases > 0 and stats.min_limit < 12
        held = counting.limits_seen[len(counting.limits_seen) // 2 :]  # once it has found the knee
        assert 4 <= statistics.median(held) <= 10, (statistics.median(held), stats)
        assert max(held) <= 12  # never back past the point where it answers 503

    with_client(config(sim, concurrency=24, max_retries=20, backoff_initial=0.05, backoff_max=0.2), body)
    server = sim.stats()
    assert server["faults"].get("overload_503", 0) < 0.1 * sum(server["requests"].values())


def test_in_an_outage_the_retry_budget_caps_retries(sim_factory):
    sim = sim_factory(seed=11, per_day=40)
    todo = compras(sim)
    sim.set_faults(rate_5xx=1.0, families=["detail"])  # PNCP's detail API is down
    errors: list[str] = []

    async def body(client: PncpClient, counting: Counting) -> None:
        async def one(cnpj: str, ano: int, seq: int) -> None:
            try:
                await client.detail("itens", cnpj, ano, seq)
            except ApiError as exc:
                errors.append(str(exc))

        async with anyio.create_task_group() as tg:
            for _, cnpj, ano, seq in todo:
                tg.start_soon(one, cnpj, ano, seq)
        stats = client.stats.families["detail"]
        # 60 tokens at 5 a retry: 12 retries in all, where 40 requests × 20 retries would have made 800.
        assert client.stats.retries == 12 and stats.retries_refused > 0 and stats.retry_budget < 5
        assert client.stats.requests == len(todo) + 12
        assert stats.limit < 8  # and the window of errors cut the limit

    with_client(config(sim, concurrency=8, max_retries=20, retry_budget=60), body)
    assert len(errors) == len(todo)
    assert sum("retry budget is spent" in e for e in errors) >= len(todo) - 12


def test_good_answers_refill_the_budget():
    limiter = FamilyLimiter("detail", 4, 0, retry_budget=10)
    assert limiter.allow_retry(5) and limiter.allow_retry(5) and not limiter.allow_retry(5)
    for _ in range(5):
        limiter.feedback(limiter.ticket(), "ok", latency=0.01)
    assert limiter.allow_retry(5) and limiter.stats.retries_refused == 1
    for _ in range(100):
        limiter.feedback(limiter.ticket(), "ok", latency=0.01)
    assert limiter.stats.retry_budget == 10  # never above the start


# -- the adaptive limit's rules, on made-up windows ----------------------------------------------


def steady(ceiling: int) -> AdaptiveLimit:
    """A limit past its slow start, at its ceiling."""
    limit = AdaptiveLimit(ceiling)
    limit.value, limit.slow_start = float(ceiling), False
    return limit


def window(limit: AdaptiveLimit, answers: int, *, errors: int = 0, latency: float = 0.1, used: bool = True) -> None:
    """One full window at the current round: ``errors`` failures among ``answers``."""
    round_ = limit.round
    if used:
        limit.used()
    for i in range(answers):
        limit.answer(round_, i >= errors, latency)


def test_a_window_of_noise_keeps_the_limit_and_a_window_of_errors_cuts_it():
    limit = steady(32)
    window(limit, 64, errors=5)  # ~8 %: noise
    assert limit.limit == 32 and limit.last_verdict == "healthy"
    window(limit, 64, errors=20)  # ~31 %: load (or an outage): the share answered well
    assert limit.limit == int(32 * 44 / 64) and limit.last_verdict == "errors" and limit.cuts["errors"] == 1
    window(limit, 64, errors=64)  # everything fails: at most halved
    assert limit.limit == 11


def test_latency_past_the_tolerance_shrinks_the_limit_in_proportion():
    limit = steady(32)
    window(limit, 64, latency=0.1)  # the no-load latency
    window(limit, 64, latency=0.4)  # 4×: far past 1.5× + 10 ms, but once may be a hiccup
    assert limit.last_verdict == "idle" and limit.limit == 32
    window(limit, 64, latency=0.4)  # twice: load
    assert limit.last_verdict == "latency" and limit.limit == 16  # at most halved
    window(limit, MIN_WINDOW * 2, latency=0.2)  # 2×, still slow: (1.5 × 0.1 + 0.01) / 0.2 = 0.8
    assert limit.limit == int(16 * 0.8) and limit.cuts["latency"] == 2
    window(limit, MIN_WINDOW * 2, latency=0.15)  # within the tolerance: healthy, grows by √limit
    assert limit.last_verdict == "healthy" and limit.limit == 12 + 3


def test_an_unused_limit_does_not_grow_and_a_slow_server_at_one_is_not_our_load():
    limit = steady(8)
    limit.throttled()
    window(limit, MIN_WINDOW, used=False)
    assert limit.limit == 4 and limit.last_verdict == "idle"
    window(limit, MIN_WINDOW, latency=10.0)  # a hundred times slower: once may be a hiccup
    assert limit.limit == 4
    for _ in range(2):
        window(limit, MIN_WINDOW, latency=10.0)  # ... but it lasts: halve, halve, ...
    assert limit.limit == 1
    window(limit, MIN_WINDOW, latency=10.0)  # ... and at one it is the server's own latency now
    assert limit.noload == 10.0 and limit.limit == 2


def test_probing_slows_with_every_block_and_speeds_up_past_the_level():
    limit = steady(16)
    limit.throttled()  # at 16 → 8
    steps = []
    while limit.limit < 16:
        before = limit.limit
        window(limit, MIN_WINDOW * 2)
        steps.append(limit.limit - before)
    assert steps == [2, 3, 2, 1]  # after a first block: by √limit to just under it, then by one
    limit.throttled()  # blocked again, after the step up from 15: back to 15, and every step up
    assert limit.probe_rounds == 2 and limit.limit == 15  # now takes twice the windows
    limit.throttled()  # blocked at the level it went back to: halve
    assert limit.probe_rounds == 4 and limit.limit == 7
    windows = 0
    while limit.limit < 16:
        window(limit, MIN_WINDOW * 2)
        windows += 1
    # +1 every 4 windows up to the level of the last block (15); held there for its 4 windows, the
    # server allows more now: one more step, and probing speeds up again (every 2 windows).
    assert windows == 4 * 8 + 4, windows
    assert limit.probe_rounds == 2


def test_the_slow_start_doubles_from_four_and_gives_the_no_load_latency():
    limit = AdaptiveLimit(32)
    seen = [limit.limit]
    while limit.slow_start:
        window(limit, SLOW_START_WINDOW * 2, latency=0.05)
        seen.append(limit.limit)
    assert seen == [4, 8, 16, 32] and limit.noload == 0.05 and limit.decreases == 0
    limit = AdaptiveLimit(32)
    window(limit, SLOW_START_WINDOW, latency=0.05)
    window(limit, SLOW_START_WINDOW, latency=0.2)  # 4× slower at 8 than at 4: a knee; the windows decide
    assert limit.limit == 8 and not limit.slow_start and limit.decreases == 0


def test_answers_sent_at_another_limit_do_not_count():
    limit = steady(8)
    old = limit.round
    limit.throttled()
    for _ in range(100):
        assert not limit.answer(old, False, 1.0)
    assert limit.limit == 4 and limit.last_verdict is None
