"""`make bench`: run the real CLI against the simulator and print what it costs.

Each scenario starts a simulator (its own process, so its CPU is not ours), lands the day's
contratações and has the simulator build every detail response once (setup, not measured: the
simulator's first-time generation of a response would otherwise add to the latency under test),
then runs `pncp-ingest details` and measures that process alone through os.wait4: wall time, CPU
seconds and peak RSS. "in-run" is the ratio over the run's own duration (its --json duration_s),
i.e. without the interpreter's start and imports (~0.7 s). The table goes to stdout and the
numbers to bench/out/results.json, so runs can be compared.

    python bench/bench.py                 # every scenario
    python bench/bench.py --only memory   # scenarios whose name contains "memory"

Scenarios:
- details of a 2,000-contratação day at 50 ms latency and 32 in flight (the bound is 640/s), and
  the same at 0 ms (CPU-bound: our own cost per request);
- a fault-free 1,500-contratação day at 50 ms and 32 in flight (`--only 1500`): `details` alone
  (also with a fixed limit, PNCP_ADAPTIVE=false: what the adaptive slow start costs), and the
  whole day, `contratacoes` then `details` as two processes, against the latency bound of each
  (requests × latency ÷ in-flight limit: consulta at 8, detail at 32; see DayResult);
- memory: the same day at 2,000 and 8,000 contratações (peak RSS must not grow with the day), with
  the package's default Arrow allocator, then with each of the system one and mimalloc forced
  (ARROW_DEFAULT_MEMORY_POOL);
- the sequential baseline, one request at a time (the old pipeline's way) over the same day at
  50 ms: a 250-contratação subset (`--batch-size`), since its rate does not depend on how many;
- the floor: bare aiohttp GETs at 50 ms and 32 in flight against the same simulator (bench/transport.py),
  the most any client could get, for reading the ratio;
- 429s: the simulator behind a PNCP-like throttle (bench/throttle.py: over 24 in flight blocks
  every detail request for 1 s), with the adaptive limit and with a fixed one (PNCP_ADAPTIVE=false),
  both with a 32 ceiling and a 1 s pause after a 429;
- server behaviours (bench/behaviours.py, `--only behaviours`): noise, consulta-like blocks, a
  saturating server, random 429 bursts; the adaptive limit next to a sweep of fixed concurrencies;
- PNCP's pace (bench/pace.py, `--only pace`): one day, contratações then details, with the
  defaults next to the best fixed setting of a sweep, against PNCP's latencies and its in-flight
  limit (6, counted per client and per family), time scaled by 10; then the limiter over 6 hours
  in virtual time (bench/pace_hours.py): blocks per hour once it has learned the limit;
- resultados (bench/resultados.py, only with `--only resultados`): what nightly polling for results
  costs over a 90-day window, and how late they land.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pncp_ingest.testing import SimulatorProcess

sys.path.insert(0, str(Path(__file__).parent))
import behaviours
import pace
import pace_hours
from behaviours import detail_paths, last_json
from throttle import ThrottledSimulator
from transport import warm

DAY = "2025-10-22"
OUT = Path(__file__).parent / "out"


@dataclass(frozen=True)
class Scenario:
    name: str
    contratacoes: int
    latency_ms: float
    concurrency: int
    checkpoint_every: int = 50
    batch_size: int | None = None  # only this many contratações (a subset of the day)
    env: dict[str, str] = field(default_factory=dict)
    throttle: tuple[int, float] | None = None  # (capacity, block seconds): bench/throttle.py


THROTTLE = (24, 1.0)
THROTTLE_ENV = {"PNCP_THROTTLE_PAUSE": "1", "PNCP_MAX_RETRIES": "12"}

SCENARIOS = [
    Scenario("details 2000 @50ms x32", 2000, 50, 32),
    Scenario("details 1500 @50ms x32", 1500, 50, 32),
    # The same without the adaptive limit's slow start (4, doubling): what finding the limit costs a fault-free day.
    Scenario("details 1500 @50ms x32, fixed limit", 1500, 50, 32, env={"PNCP_ADAPTIVE": "false"}),
    Scenario("details 2000 @0ms x32 (our CPU)", 2000, 0, 32),
    Scenario("memory: details 2000 @0ms", 2000, 0, 32),
    Scenario("memory: details 8000 @0ms", 8000, 0, 32),
    Scenario("memory: details 2000 @0ms, system alloc", 2000, 0, 32, env={"ARROW_DEFAULT_MEMORY_POOL": "system"}),
    Scenario("memory: details 8000 @0ms, system alloc", 8000, 0, 32, env={"ARROW_DEFAULT_MEMORY_POOL": "system"}),
    Scenario("memory: details 2000 @0ms, mimalloc", 2000, 0, 32, env={"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}),
    Scenario("memory: details 8000 @0ms, mimalloc", 8000, 0, 32, env={"ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}),
    Scenario("sequential x1 @50ms (250 of 2000)", 2000, 50, 1, batch_size=250),
    Scenario("429 throttle: adaptive 500 @50ms x32", 500, 50, 32, env=THROTTLE_ENV, throttle=THROTTLE),
    Scenario(
        "429 throttle: fixed 500 @50ms x32",
        500,
        50,
        32,
        env={**THROTTLE_ENV, "PNCP_ADAPTIVE": "false"},
        throttle=THROTTLE,
    ),
]


# The whole day as two processes (bench/bench.py `--only day`): see run_day().
DAY_SCENARIOS = [Scenario("day 1500 @50ms x32: contratacoes + details", 1500, 50, 32)]
CONSULTA_CONCURRENCY = 8  # PNCP_CONSULTA_CONCURRENCY in every scenario


@dataclass
class DayResult:
    """One day landed by two processes, ``contratacoes`` then ``details``, each measured alone.

    The latency bound of a process is the time its requests need at its in-flight limit when
    every request takes exactly the simulated latency and nothing else costs anything:
    requests × latency ÷ in-flight. The listing's requests are consulta pages (plus the one
    /modalidades call) at PNCP_CONSULTA_CONCURRENCY (8) in flight; the details' are detail pages
    at PNCP_CONCURRENCY (32). The day's bound is the sum of both, and its ratio that sum over the
    two processes' wall times (process start to exit, interpreter start and imports included).
    """

    scenario: str
    listing_requests: int
    listing_wall_s: float
    listing_cpu_s: float
    listing_bound_s: float
    details_requests: int
    details_wall_s: float
    details_cpu_s: float
    details_bound_s: float
    wall_s: float
    bound_s: float
    ratio: float
    contratacoes: int
    itens: int
    failed: int
    exit_codes: tuple[int, int]


@dataclass
class Result:
    scenario: str
    requests: int
    wall_s: float
    requests_per_s: float
    bound_per_s: float | None
    ratio: float | None
    run_s: float  # the run's own duration (--json duration_s): the process less interpreter start and imports
    run_ratio: float | None  # requests / run_s / bound
    cpu_ms_per_request: float
    peak_rss_mb: float
    contratacoes: int
    itens: int
    failed: int
    throttled: int
    exit_code: int
    # The detail family's adaptive limit, from the run's --json "concurrency" (None if not reported).
    limit_min: int | None = None
    limit_final: int | None = None
    paused_s: float | None = None
    max_in_flight: int | None = None
    # What the throttling server saw (429 scenarios only).
    server_blocked_s: float | None = None
    server_max_in_flight: int | None = None
    server_429: int | None = None


def run_measured(command: list[str], env: dict[str, str]) -> tuple[int, float, float, float, str]:
    """Run a command; (exit code, wall s, CPU s, peak RSS MiB, stdout) of that process alone."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def run(scenario: Scenario, workdir: Path) -> Result:
    dest = str(workdir / _slug(scenario.name))
    env = {
        **os.environ,
        "PNCP_CONSULTA_RATE": "0",
        "PNCP_CONSULTA_CONCURRENCY": "8",
        "PNCP_RATE": "0",
        "PNCP_CONCURRENCY": str(scenario.concurrency),
        "PNCP_CHECKPOINT_EVERY": str(scenario.checkpoint_every),
    }
    cli = [sys.executable, "-m", "pncp_ingest"]
    sim: SimulatorProcess
    if scenario.throttle:
        capacity, block_s = scenario.throttle
        sim = ThrottledSimulator(
            capacity=capacity, block_s=block_s, seed=1, per_day=scenario.contratacoes, big_items=True
        )
    else:
        sim = SimulatorProcess(seed=1, per_day=scenario.contratacoes, big_items=True)
    with sim:
        setup = subprocess.run(
            cli + ["contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "-q"],
            env=env,
            capture_output=True,
            text=True,
        )
        if setup.returncode != 0:
            raise SystemExit(f"setup failed for {scenario.name}: {setup.stderr}")
        warm(sim.base_url, detail_paths(sim.truth(DAY)))
        sim.set_faults(latency_ms=scenario.latency_ms)
        extra = ["--batch-size", str(scenario.batch_size)] if scenario.batch_size else []
        code, wall, cpu, rss, stdout = run_measured(
            cli + ["details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json", "-q", *extra],
            {**env, **scenario.env},
        )
        server = sim.throttle() if isinstance(sim, ThrottledSimulator) else {}
    summary = last_json(stdout)
    requests = summary.get("requests", 0)
    bound = scenario.concurrency / (scenario.latency_ms / 1000) if scenario.latency_ms else None
    rate = requests / wall if wall else 0.0
    run_s = float(summary.get("duration_s") or 0.0)
    run_ratio = round(requests / run_s / bound, 3) if bound and run_s else None
    detail: dict[str, Any] = (summary.get("concurrency") or summary.get("limits") or {}).get("detail") or {}
    return Result(
        scenario.name,
        requests,
        round(wall, 2),
        round(rate, 1),
        bound,
        round(rate / bound, 3) if bound else None,
        round(run_s, 2),
        run_ratio,
        round(1000 * cpu / max(requests, 1), 3),
        round(rss, 1),
        summary.get("contratacoes", 0),
        summary.get("itens", 0),
        summary.get("failed", 0),
        summary.get("throttled", 0),
        code,
        limit_min=detail.get("min_limit"),
        limit_final=detail.get("limit"),
        paused_s=detail.get("paused_s"),
        max_in_flight=detail.get("max_in_flight"),
        server_blocked_s=server.get("blocked_s"),
        server_max_in_flight=server.get("max_in_flight"),
        server_429=server.get("rejected_429"),
    )


def run_day(scenario: Scenario, workdir: Path) -> DayResult:
    """``contratacoes`` then ``details`` for one day, two processes, each timed from start to exit.

    Setup, not measured: a first listing into a throwaway folder and a GET of every detail page,
    so the simulator has built every response once (its first-time generation is not latency)."""
    dest = str(workdir / _slug(scenario.name))
    env = {
        **os.environ,
        "PNCP_CONSULTA_RATE": "0",
        "PNCP_CONSULTA_CONCURRENCY": str(CONSULTA_CONCURRENCY),
        "PNCP_RATE": "0",
        "PNCP_CONCURRENCY": str(scenario.concurrency),
        "PNCP_CHECKPOINT_EVERY": str(scenario.checkpoint_every),
        **scenario.env,
    }
    cli = [sys.executable, "-m", "pncp_ingest"]
    latency = scenario.latency_ms / 1000
    with SimulatorProcess(seed=1, per_day=scenario.contratacoes, big_items=True) as sim:
        warmup = [*cli, "contratacoes", "--date", DAY, "--dest", dest + "-warm", "--base-url", sim.base_url, "-q"]
        if subprocess.run(warmup, env=env, capture_output=True).returncode != 0:
            raise SystemExit(f"setup failed for {scenario.name}")
        warm(sim.base_url, detail_paths(sim.truth(DAY)))
        sim.set_faults(latency_ms=scenario.latency_ms)
        common = ["--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json", "-q"]
        code_l, wall_l, cpu_l, _, out_l = run_measured([*cli, "contratacoes", *common], env)
        code_d, wall_d, cpu_d, _, out_d = run_measured([*cli, "details", *common], env)
    listing, details = last_json(out_l), last_json(out_d)
    bound_l = listing.get("requests", 0) * latency / CONSULTA_CONCURRENCY
    bound_d = details.get("requests", 0) * latency / scenario.concurrency
    wall = wall_l + wall_d
    return DayResult(
        scenario.name,
        listing.get("requests", 0),
        round(wall_l, 3),
        round(cpu_l, 3),
        round(bound_l, 3),
        details.get("requests", 0),
        round(wall_d, 3),
        round(cpu_d, 3),
        round(bound_d, 3),
        round(wall, 3),
        round(bound_l + bound_d, 3),
        round((bound_l + bound_d) / wall, 3) if wall else 0.0,
        listing.get("contratacoes", 0),
        details.get("itens", 0),
        listing.get("failed", 0) + details.get("failed", 0),
        (code_l, code_d),
    )


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run scenarios whose name contains this text")
    args = parser.parse_args()
    if args.only == "resultados":  # the request economy of nightly polling, a simulated clock's 120 nights
        import resultados

        resultados.main([])
        return 0
    chosen = [s for s in SCENARIOS if args.only in s.name]
    with_behaviours = not args.only or args.only in "behaviours"
    with_pace = not args.only or args.only in "pace"
    results = []
    header = (
        f"{'scenario':40} {'requests':>8} {'wall s':>7} {'req/s':>6} {'bound':>5} {'ratio':>5} {'in-run':>6} {'CPU ms/req':>10} "
        f"{'peak RSS MB':>11} {'429s':>5} {'limit min/end':>13} {'paused s':>8} {'max in flight':>13} "
        f"{'server blocked s':>16} {'failed':>6} {'exit':>4}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="pncp-bench-") as tmp:
        for scenario in chosen:
            r = run(scenario, Path(tmp))
            results.append(r)
            limits = "-" if r.limit_min is None else f"{r.limit_min}/{r.limit_final}"
            flight = (
                _fmt(r.max_in_flight)
                if r.server_max_in_flight is None
                else f"{_fmt(r.max_in_flight)} (srv {r.server_max_in_flight})"
            )
            print(
                f"{r.scenario:40} {r.requests:>8} {r.wall_s:>7.2f} {r.requests_per_s:>6.0f} {_fmt(r.bound_per_s, '.0f'):>5} "
                f"{_fmt(r.ratio, '.0%'):>5} {_fmt(r.run_ratio, '.0%'):>6} {r.cpu_ms_per_request:>10.2f} {r.peak_rss_mb:>11.1f} {r.throttled:>5} {limits:>13} "
                f"{_fmt(r.paused_s, '.1f'):>8} {flight:>13} {_fmt(r.server_blocked_s, '.1f'):>16} {r.failed:>6} "
                f"{r.exit_code:>4}",
                flush=True,
            )
        day_results = [run_day(s, Path(tmp)) for s in DAY_SCENARIOS if args.only in s.name]
    if day_results:
        print(
            f"\n{'day (two processes)':44} {'listing req':>11} {'wall s':>6} {'bound s':>7} "
            f"{'details req':>11} {'wall s':>6} {'bound s':>7} {'day wall s':>10} {'bound s':>7} {'ratio':>5} "
            f"{'CPU s':>5} {'failed':>6} {'exit':>5}"
        )
        for d in day_results:
            print(
                f"{d.scenario:44} {d.listing_requests:>11} {d.listing_wall_s:>6.2f} {d.listing_bound_s:>7.2f} "
                f"{d.details_requests:>11} {d.details_wall_s:>6.2f} {d.details_bound_s:>7.2f} {d.wall_s:>10.2f} "
                f"{d.bound_s:>7.2f} {d.ratio:>5.0%} {d.listing_cpu_s + d.details_cpu_s:>5.2f} {d.failed:>6} "
                f"{'/'.join(map(str, d.exit_codes)):>5}",
                flush=True,
            )
    derived = _derived({r.scenario: r for r in results})
    if not args.only or "floor" in args.only:
        derived.update(_floor(derived))
    for line in derived["lines"]:
        print(line)
    runs: list[behaviours.Run] = []
    if with_behaviours:
        print("\nserver behaviours (bench/behaviours.py): adaptive vs fixed concurrency, ceiling 32", flush=True)
        with tempfile.TemporaryDirectory(prefix="pncp-behaviours-") as tmp:
            runs = [run for b in behaviours.BEHAVIOURS for run in behaviours.run_behaviour(b, Path(tmp))]
        lines, derived["behaviours"] = behaviours.summarise(runs)
        derived["behaviour_runs"] = [asdict(r) for r in runs]
        print("\n".join(lines))
    pace_runs: list[pace.DayRun] = []
    if with_pace:
        print(flush=True)
        pace_runs = pace.run_all(pace.SCALE)
        derived["pace"] = [asdict(r) for r in pace_runs]
        print("\n".join(pace.table(pace_runs, pace.SCALE)))
        derived["pace_hours"] = [pace_hours.run(case, 6) for case in pace_hours.CASES]
        for r in derived["pace_hours"]:
            print(
                f"  over 6 h (virtual time), {r['case']}: {r['of_oracle']:.0%} of the oracle, blocks per hour {r['blocks_per_hour']}"
            )
    OUT.mkdir(exist_ok=True)
    doc = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "results": [asdict(r) for r in results],
        "days": [asdict(d) for d in day_results],
        "derived": {k: v for k, v in derived.items() if k != "lines"},
    }
    (OUT / "results.json").write_text(json.dumps(doc, indent=2))
    (OUT / "tables.md").write_text(markdown(results, day_results, runs if with_behaviours else [], pace_runs))
    print(f"results written to {OUT / 'results.json'}, the README's tables to {OUT / 'tables.md'}")
    fixed_fails = {s.name for s in SCENARIOS if s.env.get("PNCP_ADAPTIVE") == "false"}
    days_ok = all(d.exit_codes == (0, 0) for d in day_results)
    return 0 if days_ok and all(r.exit_code == 0 for r in results if r.scenario not in fixed_fails) else 1


def markdown(
    results: list[Result], days: list[DayResult], runs: list[behaviours.Run], pace_runs: list[pace.DayRun]
) -> str:
    """The README's benchmark tables, from this run only (so their rows compare)."""
    out = [
        "| scenario | requests | wall s | req/s | ratio (wall) | ratio (run) | CPU ms/req | peak RSS MB | 429s | limit min/end | paused s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        limits = "-" if r.limit_min is None else f"{r.limit_min}/{r.limit_final}"
        out.append(
            f"| {r.scenario} | {r.requests} | {r.wall_s:.2f} | {r.requests_per_s:.0f} | {_fmt(r.ratio, '.0%')} | "
            f"{_fmt(r.run_ratio, '.0%')} | {r.cpu_ms_per_request:.2f} | {r.peak_rss_mb:.1f} | {r.throttled} | {limits} | "
            f"{_fmt(r.paused_s, '.1f')} |"
        )
    if days:
        out += [
            "",
            "| day, two processes | listing requests | listing wall s (bound) | details requests | details wall s (bound) "
            "| day wall s (bound) | ratio | CPU s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for d in days:
            out.append(
                f"| {d.scenario} | {d.listing_requests} | {d.listing_wall_s:.2f} ({d.listing_bound_s:.2f}) | "
                f"{d.details_requests} | {d.details_wall_s:.2f} ({d.details_bound_s:.2f}) | {d.wall_s:.2f} "
                f"({d.bound_s:.2f}) | {d.ratio:.0%} | {d.listing_cpu_s + d.details_cpu_s:.2f} |"
            )
    if runs:
        out += ["", behaviours.markdown(runs)]
    if pace_runs:
        out += ["", pace.markdown(pace_runs, pace.SCALE)]
    return "\n".join(out) + "\n"


def _floor(derived: dict[str, Any]) -> dict[str, Any]:
    """The most any client gets from this simulator at 50 ms and 32 in flight: bare aiohttp GETs."""
    out = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parent / "transport.py"),
            "--variants",
            "bare-aiohttp",
            "--latency-ms",
            "50",
            "--inflight",
            "32",
            "--requests",
            "4004",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return {}
    floor = json.loads(out.stdout.strip().splitlines()[-1])[0]
    rate = floor["requests_per_s"]
    derived["lines"].append(
        f"floor: bare aiohttp, {floor['requests']} GETs @50ms x32 against the same simulator: "
        f"{rate:.0f} req/s = {rate / 640:.0%} of the bound (the simulator's and loopback's own cost)"
    )
    return {"floor_bare_aiohttp_per_s": rate, "floor_ratio": round(rate / 640, 3)}


def _derived(by_name: dict[str, Result]) -> dict[str, Any]:
    out: dict[str, Any] = {"lines": []}
    small, large = by_name.get("memory: details 2000 @0ms"), by_name.get("memory: details 8000 @0ms")
    if small and large:
        out["rss_8000_over_2000"] = round(large.peak_rss_mb / small.peak_rss_mb, 3)
        out["lines"].append(
            f"\npeak RSS, 8000 vs 2000 contratações: {large.peak_rss_mb:.1f} / {small.peak_rss_mb:.1f} MB "
            f"= {out['rss_8000_over_2000']:.2f}x"
        )
    for alloc in ("system alloc", "mimalloc"):
        small, large = (
            by_name.get(f"memory: details 2000 @0ms, {alloc}"),
            by_name.get(f"memory: details 8000 @0ms, {alloc}"),
        )
        if small and large:
            key = f"rss_8000_over_2000_{alloc.split()[0]}"
            out[key] = round(large.peak_rss_mb / small.peak_rss_mb, 3)
            out["lines"].append(
                f"the same with ARROW_DEFAULT_MEMORY_POOL={alloc.split()[0]}: "
                f"{large.peak_rss_mb:.1f} / {small.peak_rss_mb:.1f} MB = {out[key]:.2f}x"
            )
    fast, seq = by_name.get("details 2000 @50ms x32"), by_name.get("sequential x1 @50ms (250 of 2000)")
    if fast and seq and seq.requests_per_s:
        out["speedup_vs_sequential"] = round(fast.requests_per_s / seq.requests_per_s, 1)
        projected = fast.requests / seq.requests_per_s
        out["sequential_full_day_projected_s"] = round(projected, 1)
        out["lines"].append(
            f"speed-up over one request at a time: {out['speedup_vs_sequential']}x "
            f"(the whole day sequentially: ~{projected:.0f} s projected from the subset's rate, "
            f"vs {fast.wall_s:.1f} s)"
        )
    adaptive, fixed = (
        by_name.get("429 throttle: adaptive 500 @50ms x32"),
        by_name.get("429 throttle: fixed 500 @50ms x32"),
    )
    if adaptive and fixed:
        out["throttle"] = {
            "adaptive_blocked_s": adaptive.server_blocked_s,
            "fixed_blocked_s": fixed.server_blocked_s,
            "adaptive_wall_s": adaptive.wall_s,
            "fixed_wall_s": fixed.wall_s,
        }
        out["lines"].append(
            f"429 throttle: server blocked {adaptive.server_blocked_s} s (adaptive) vs "
            f"{fixed.server_blocked_s} s (fixed); wall {adaptive.wall_s} s vs {fixed.wall_s} s; "
            f"failed {adaptive.failed} vs {fixed.failed}"
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
