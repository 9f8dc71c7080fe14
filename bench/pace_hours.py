"""PNCP's pace over hours: how often the limiter finds a block once it has learned PNCP's limit.

A day in `bench/pace.py` lasts a minute; what a learned limit costs shows over hours, which the
real clock cannot afford. So this runs the client's own limiters (`FamilyLimiter`, the adaptive
limit, the pause and probe rules: the package's code, not a model of it) in virtual time: an
asyncio loop whose clock jumps to the next timer instead of sleeping. The server is modelled as
in the simulator's pace model: calls of a lognormal ~1 s (sigma 0.5), more than ``limit`` in flight
(both families counted together) blocks every request for 25 s with a 429 and no Retry-After.
Workers (64) call the detail API without end, as a long backfill does, and feed the limiter the
way `PncpClient._attempt` does. The request rate is off (aiolimiter's waits do not run in virtual
time; at ~6 requests/s the default 20/s does not bind anyway).

    python bench/pace_hours.py                   # the cases below, 6 simulated hours each
    python bench/pace_hours.py --hours 12
"""

from __future__ import annotations

import argparse
import asyncio
import random
import selectors
import sys
from dataclasses import dataclass, field
from typing import Any

import anyio

from pncp_ingest.config import load_settings
from pncp_ingest.pncp import client_config
from pncp_ingest.pncp._limits import FamilyLimiter, SharedBudget

MEDIAN_S, SIGMA, BLOCK_S, WORKERS = 1.0, 0.5, 25.0, 64


class _Idle(selectors.DefaultSelector):
    """No I/O ever waits: the loop's clock jumps over the time a select would have slept."""

    def __init__(self, loop: VirtualLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout:
            self.loop.now += timeout
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Idle(self))

    def time(self) -> float:
        return self.now


@dataclass
class Server:
    limit: int
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    in_flight: int = 0
    blocked_until: float = -1.0
    blocks: list[float] = field(default_factory=list)
    ok: int = 0

    async def call(self, now: float) -> int:
        self.in_flight += 1
        try:
            if now >= self.blocked_until and self.in_flight > self.limit:
                self.blocked_until = now + BLOCK_S
                self.blocks.append(now)
            if now < self.blocked_until:
                return 429
            await anyio.sleep(MEDIAN_S * self.rng.lognormvariate(0, SIGMA))
            self.ok += 1
            return 200
        finally:
            self.in_flight -= 1


@dataclass
class Case:
    name: str
    limit: int  # PNCP's
    settings: dict[str, Any]


CASES = [
    Case("defaults, PNCP allows 6", 6, {}),
    Case("defaults, PNCP allows 4", 4, {}),
    Case("ceiling 12, PNCP allows 6", 6, {"concurrency": 12}),
]


async def _run(case: Case, hours: float) -> tuple[Server, FamilyLimiter]:
    loop = asyncio.get_running_loop()
    config = client_config(load_settings(None, **{"rate": 0, **case.settings}))
    limiter = FamilyLimiter(
        "detail", config.detail, config.retry, adaptive=config.adaptive, shared=SharedBudget(), clock=loop.time
    )
    server = Server(case.limit)
    end = hours * 3600

    async def worker() -> None:
        while loop.time() < end:
            async with limiter.slot() as ticket:
                status = await server.call(loop.time())
            if status == 429:
                limiter.throttled(ticket)
            else:
                limiter.feedback(ticket, "ok")

    async with anyio.create_task_group() as tg:
        for _ in range(WORKERS):
            tg.start_soon(worker)
    return server, limiter


def run(case: Case, hours: float) -> dict[str, Any]:
    loop = VirtualLoop()
    try:
        server, limiter = loop.run_until_complete(_run(case, hours))
    finally:
        loop.close()
    # The oracle: `limit` in flight all along, never blocked.
    oracle = case.limit * hours * 3600 / (MEDIAN_S * 2.718281828 ** (SIGMA**2 / 2))
    per_hour = [sum(1 for t in server.blocks if h * 3600 <= t < (h + 1) * 3600) for h in range(int(hours))]
    return {
        "case": case.name,
        "of_oracle": round(server.ok / oracle, 3),
        "blocks": len(server.blocks),
        "blocks_per_hour": per_hour,
        "after_first_hour_max": max(per_hour[1:], default=0),
        "limit_end": limiter.limit,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=6.0)
    args = parser.parse_args()
    print(f"PNCP's pace over {args.hours:g} simulated hours (bench/pace_hours.py: the limiter in virtual time)")
    print(f"{'case':28} {'of oracle':>9} {'blocks':>6} {'limit end':>9}  blocks per hour")
    for case in CASES:
        r = run(case, args.hours)
        print(
            f"{r['case']:28} {r['of_oracle']:>9.0%} {r['blocks']:>6} {r['limit_end']:>9}  "
            f"{' '.join(map(str, r['blocks_per_hour']))}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
