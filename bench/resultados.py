"""Resultados: what polling for results costs, and how late they land (a simulated clock).

A window of publication days is ingested one night after another (contratações, then details,
the night after each day), while the simulator homologates items over the window as PNCP does:
each day but the last two weeks', a homologation act for a share of the unsettled contratações
(most of their items in progress decided at once, some listed at /atualizacao, the others silently). Every night runs
`resultados --back N` over the window, and nothing else: no `atualizacoes`, the worst case for
change capture, so every result must be found by polling. The schedule's clock is PNCP_NOW's
setting (Settings.now), the night's 03:00 UTC; the engine runs in this process (the library API),
against the simulator in its own.

Reported (docs/benchmarks.md, "Resultados: request economy"):
- requests of the nightly runs per contratação per 30 days, and those spent on settled
  contratações (target 0);
- the share of requests spent on polls that found nothing new;
- days from homologation to the night its result landed: median, p95 (target p95 <= 7);
- /itens polls per contratação in any 30-day span: mean and max (target max <= 6).

    make bench BENCH_ARGS="--only resultados"       # the same, from make bench
    python bench/resultados.py                      # 90 days x 20 contratações, 120 nights
    python bench/resultados.py --days 30 --per-day 20 --nights 45
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from bisect import bisect_left
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from pncp_ingest import load_settings
from pncp_ingest.config import Settings
from pncp_ingest.pipeline import run_contratacoes, run_details, run_resultados
from pncp_ingest.testing import SimulatorProcess

START = date(2025, 7, 1)
QUIET_NIGHTS = 14  # the last nights homologate nothing: every result has time to land
FAST = {"backoff_initial": 0.01, "backoff_max": 0.1, "rate": 0, "consulta_rate": 0, "consulta_concurrency": 4}


def settings(dest: str, base_url: str, now: datetime) -> Settings:
    return load_settings(None, dest=dest, base_url=base_url, now=now, **FAST)


def polled_at(dest: Path, days: list[date], now: datetime) -> set[str]:
    """Contratações whose itens a run at ``now`` fetched (their schedule's ``at``), from the state."""
    found: set[str] = set()
    stamp = now.isoformat()
    for day in days:
        manifest = dest / "_state" / "pncp_details" / day.isoformat() / "manifest.json"
        if manifest.exists():
            polls = json.loads(manifest.read_text()).get("meta", {}).get("polls", {})
            found.update(cid for cid, poll in polls.items() if poll.get("at") == stamp)
    return found


def max_in_window(nights: list[date], span: int = 30) -> int:
    """The most polls of one contratação within any ``span`` consecutive days."""
    best = 0
    for i, start in enumerate(nights):
        best = max(best, bisect_left(nights, start + timedelta(days=span)) - i)
    return best


def run(days: int, per_day: int, nights: int, share: float, listed: float, seed: int) -> dict[str, Any]:
    window = [START + timedelta(days=n) for n in range(days)]
    homologated_at: dict[str, date] = {}  # "id|item" -> day homologated
    changed_on: dict[str, list[date]] = defaultdict(list)  # id -> days it got a homologation act
    polls: dict[str, list[date]] = defaultdict(list)  # id -> nights it was polled
    seen: dict[str, date] = {}  # id -> the last night its itens were fetched (details, then polls)
    settled_polls = 0
    requests = {"itens": 0, "resultados": 0, "other": 0}
    unchanged_polls = useful_polls = 0
    started = time.monotonic()
    with SimulatorProcess(seed=seed, per_day=per_day) as sim, tempfile.TemporaryDirectory(prefix="pncp-res-") as tmp:
        dest = Path(tmp) / "bronze"
        settled: set[str] = set()
        for n in range(nights):
            today = START + timedelta(days=n)  # the day that just ended
            now = datetime(today.year, today.month, today.day, 3, tzinfo=UTC) + timedelta(days=1)
            published = [d for d in window if d < today]
            if published and n < nights - QUIET_NIGHTS:
                for change in sim.homologate(today, published[0], published[-1], share=share, listed=listed):
                    changed_on[change["id"]].append(today)
            config = settings(str(dest), sim.base_url, now)
            if today in window:
                anyio.run(run_contratacoes, config, [today])
                anyio.run(run_details, config, [today])
                fresh = {c["numeroControlePNCP"] for c in sim.truth(today)["contratacoes"]}
                seen.update(dict.fromkeys(fresh, today))
            else:
                fresh = set()
            listed_days = [d for d in window if d <= today]
            sim.reset_stats()
            summary = anyio.run(partial(run_resultados, config, listed_days))
            assert summary.exit_code == 0, summary.failures
            served = sim.stats()["requests"]
            for kind in requests:
                requests[kind] += served.get(kind, 0)
            tonight = polled_at(dest, listed_days, now) - fresh  # the details fetched tonight are no poll
            settled_polls += len(tonight & settled)
            for cid in tonight:
                # A night's run sees the acts of the day that just ended (they come first).
                news = any(seen[cid] < day <= today for day in changed_on.get(cid, []))
                seen[cid] = today
                useful_polls += news
                unchanged_polls += not news
                polls[cid].append(today)
            for d in listed_days:
                manifest = dest / "_state" / "pncp_details" / d.isoformat() / "manifest.json"
                if manifest.exists():
                    meta = json.loads(manifest.read_text()).get("meta", {})
                    settled |= {cid for cid, p in meta.get("polls", {}).items() if "due" not in p}
        for key, day in sim.homologations().items():
            homologated_at[key] = date.fromisoformat(day)
        truth_ids = {c["numeroControlePNCP"] for d in window for c in sim.truth(d)["contratacoes"]}
    delays = []
    missing = 0
    for key, day in homologated_at.items():
        cid = key.rsplit("|", 1)[0]
        landed = [night for night in polls.get(cid, []) if night >= day]
        if landed:
            delays.append((landed[0] - day).days + 1)  # the same night's 03:00 run: 1 day
        else:
            missing += 1
    total = sum(requests.values())
    compras = len(truth_ids)
    per_30 = [max_in_window(sorted(nights_)) for nights_ in polls.values()]
    return {
        "window_days": days,
        "per_day": per_day,
        "nights": nights,
        "act_share_per_day": share,
        "contratacoes": compras,
        "requests": requests,
        "requests_per_contratacao_per_30_days": round(total / compras / (nights / 30), 3),
        "requests_on_settled": settled_polls,
        "polls": useful_polls + unchanged_polls,
        "polls_unchanged": unchanged_polls,
        "share_of_requests_on_unchanged": round(unchanged_polls / total, 3) if total else 0.0,
        "homologated_items": len(homologated_at),
        "landing_days_median": statistics.median(delays) if delays else None,
        "landing_days_p95": sorted(delays)[int(0.95 * (len(delays) - 1))] if delays else None,
        "landing_days_max": max(delays) if delays else None,
        "not_landed_by_the_end": missing,
        "polls_per_30_days_mean": round(statistics.mean(per_30), 2) if per_30 else 0,
        "polls_per_30_days_max": max(per_30) if per_30 else 0,
        "duration_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=90, help="publication days in the window")
    parser.add_argument("--per-day", type=int, default=20, help="contratações per day")
    parser.add_argument("--nights", type=int, default=120, help="nightly runs (from the window's first day)")
    parser.add_argument(
        "--share", type=float, default=0.08, help="unsettled contratações with a homologation act per day"
    )
    parser.add_argument("--listed", type=float, default=0.5, help="share of acts listed at /atualizacao")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    result = run(args.days, args.per_day, args.nights, args.share, args.listed, args.seed)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "resultados.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
