"""PNCP's pace: one day landed with the defaults, next to the best fixed setting (the oracle).

The simulator serves what the reference reports of the real PNCP: a call takes about a second
(a lognormal around a 1,000 ms median, sigma 0.5), and a client with more than 6 requests in
flight is blocked for 25 s (HTML 429s, no Retry-After). We do not know whether PNCP counts the two
API families together (a per-IP limit) or each apart, so the day runs under both limit models.

A day is landed as users land it: `pncp-ingest contratacoes`, then `pncp-ingest details` (two
processes; a day of 120 contratações is ~21 listing and ~263 detail requests). "defaults" passes
only --dest and --base-url; the oracle is the fastest of a sweep of fixed settings (both families
at N in flight, no rate, PNCP_ADAPTIVE=false), run in the same sitting. A day's time is the sum of
the two runs' own durations (--json duration_s: without the interpreter's start); "of oracle" is
the oracle's day time over this one's (its share of the pace the server allows).

Time is scaled to keep `make bench` short: --scale 10 divides every server time by 10 (100 ms
calls, 2.5 s blocks) and so every client time setting (timeout, backoff, 429 pauses; the rates
are multiplied), each from its default in Settings: the defaults, at the scale. --scale 1 runs
PNCP's real figures (a few minutes).

    python bench/pace.py                  # both limit models at scale 10
    python bench/pace.py --scale 1        # PNCP's real figures
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pncp_ingest.testing import SimulatorProcess

sys.path.insert(0, str(Path(__file__).parent))
from behaviours import detail_paths, last_json
from transport import warm

DAY = "2025-10-22"
PER_DAY = 120
MEDIAN_MS = 1000.0  # PNCP's: ~1 s a call
SIGMA = 0.5
LIMIT = 6  # more than this many in flight starts a block
BLOCK_S = 25.0
SWEEP = (5, 6, 7)
SCALE = 10.0  # make bench's: 100 ms calls, 2.5 s blocks
MODELS = ("client", "family")
TIME_SETTINGS = ("timeout", "backoff_initial", "backoff_max", "throttle_pause", "throttle_pause_initial")
RATE_SETTINGS = ("rate", "consulta_rate")
PYTHON = [sys.executable]  # the interpreter whose pncp_ingest runs the day (--cli: another checkout's)


def scaled_defaults(scale: float, python: str) -> dict[str, str]:
    """The client's time settings at their defaults (``python``'s pncp_ingest's), divided by
    ``scale`` (rates multiplied)."""
    names = TIME_SETTINGS + RATE_SETTINGS
    code = "import json; from pncp_ingest.config import Settings; print(json.dumps({n: Settings.model_fields[n].default for n in %r}))"
    defaults = json.loads(
        subprocess.run([python, "-c", code % (names,)], capture_output=True, text=True, check=True).stdout
    )
    env = {}
    for name in names:
        value = float(defaults[name]) * scale if name in RATE_SETTINGS else float(defaults[name]) / scale
        env[f"PNCP_{name.upper()}"] = f"{value:g}"
    return env


def faults(model: str, scale: float) -> dict[str, Any]:
    return {
        "latency_ms": MEDIAN_MS / scale,
        "latency_sigma": SIGMA,
        "block_over": LIMIT,
        "block_s": BLOCK_S / scale,
        "block_scope": model,
        "seed": 11,
    }


@dataclass
class DayRun:
    model: str
    run: str
    listing_s: float
    details_s: float
    day_s: float
    listing_requests: int
    details_requests: int
    blocks: int
    blocked_429: int
    contratacoes: int
    complete: bool
    detail_limit_end: int | None = None
    of_oracle: float | None = None


def _command(
    sim: SimulatorProcess, cmd: str, dest: Path, env: dict[str, str], cwd: Path, limit_s: float
) -> dict[str, Any]:
    proc = subprocess.Popen(
        [PYTHON[0], "-m", "pncp_ingest", cmd, "--date", DAY, "--dest", str(dest), "--base-url", sim.base_url]
        + ["--json", "-q"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout, _ = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # like Ctrl-C: it still prints --json
        stdout, _ = proc.communicate()
    doc = last_json(stdout)
    doc["_exit"] = proc.returncode
    return doc


def run_day(sim: SimulatorProcess, work: Path, model: str, name: str, env: dict[str, str], limit_s: float) -> DayRun:
    dest = work / f"{model}-{name.replace(' ', '-')}"
    sim.reset_stats()
    listing = _command(sim, "contratacoes", dest, env, work, limit_s)
    details = _command(sim, "details", dest, env, work, limit_s)
    server = sim.stats()["faults"]
    listing_s, details_s = float(listing.get("duration_s") or 0), float(details.get("duration_s") or 0)
    detail_limits = (details.get("concurrency") or {}).get("detail") or {}
    return DayRun(
        model,
        name,
        round(listing_s, 2),
        round(details_s, 2),
        round(listing_s + details_s, 2),
        int(listing.get("requests") or 0),
        int(details.get("requests") or 0),
        int(server.get("block", 0)),
        int(server.get("blocked_429", 0)),
        int(details.get("contratacoes") or 0),
        listing["_exit"] == 0 and details["_exit"] == 0,
        detail_limits.get("limit"),
    )


def run_model(model: str, scale: float, sweep: tuple[int, ...], work: Path) -> list[DayRun]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PNCP_")}
    defaults = {**base, **scaled_defaults(scale, PYTHON[0])}
    limit_s = 8 * BLOCK_S / scale  # a run over the limit is stopped (SIGINT) and counted incomplete
    runs = []
    with SimulatorProcess(seed=1, per_day=PER_DAY, big_items=True) as sim:
        warmup = [PYTHON[0], "-m", "pncp_ingest", "contratacoes", "--date", DAY, "--dest", str(work / "warm")]
        subprocess.run([*warmup, "--base-url", sim.base_url, "-q"], env=defaults, cwd=work, capture_output=True)
        warm(sim.base_url, detail_paths(sim.truth(DAY)))
        sim.set_faults(families=["consulta", "detail"], **faults(model, scale))
        plan = [("defaults", defaults)] + [
            (
                f"fixed {n}",
                {
                    **defaults,
                    "PNCP_ADAPTIVE": "false",
                    "PNCP_RATE": "0",
                    "PNCP_CONSULTA_RATE": "0",
                    "PNCP_CONCURRENCY": str(n),
                    "PNCP_CONSULTA_CONCURRENCY": str(n),
                },
            )
            for n in sweep
        ]
        for name, env in plan:
            run = run_day(sim, work, model, name, env, limit_s)
            print(f"  pace ({model}), {name}: day {run.day_s} s, {run.blocks} blocks", file=sys.stderr, flush=True)
            runs.append(run)
    complete = [r for r in runs if r.run.startswith("fixed") and r.complete and r.contratacoes == PER_DAY]
    oracle = min(complete, key=lambda r: r.day_s) if complete else None
    for r in runs:
        r.of_oracle = round(oracle.day_s / r.day_s, 3) if oracle and r.day_s else None
    return runs


HEADER = (
    f"{'limit model':12} {'run':10} {'listing s':>9} {'details s':>9} {'day s':>7} {'of oracle':>9} "
    f"{'blocks':>6} {'429s':>5} {'requests':>9} {'detail limit':>12}"
)


def table(runs: list[DayRun], scale: float) -> list[str]:
    lines = [
        f"PNCP's pace (bench/pace.py, scale {scale:g}: {MEDIAN_MS / scale:g} ms median calls, sigma {SIGMA}, "
        f"more than {LIMIT} in flight blocks for {BLOCK_S / scale:g} s)",
        HEADER,
        "-" * len(HEADER),
    ]
    for r in runs:
        share = "-" if r.of_oracle is None else f"{r.of_oracle:.0%}"
        requests = f"{r.listing_requests}+{r.details_requests}"
        lines.append(
            f"{r.model:12} {r.run:10} {r.listing_s:>9.2f} {r.details_s:>9.2f} {r.day_s:>7.2f} {share:>9} "
            f"{r.blocks:>6} {r.blocked_429:>5} {requests:>9} {r.detail_limit_end if r.detail_limit_end is not None else '-':>12}"
        )
    for model in dict.fromkeys(r.model for r in runs):
        mine = [r for r in runs if r.model == model]
        fixed = [r for r in mine if r.run.startswith("fixed") and r.of_oracle == 1.0]
        default = next(r for r in mine if r.run == "defaults")
        lines.append(
            f"  {model}: defaults = {default.of_oracle or 0:.0%} of the oracle ({fixed[0].run if fixed else '-'}), "
            f"{default.blocks} blocks, {default.blocked_429} 429s"
        )
    return lines


def markdown(runs: list[DayRun], scale: float) -> str:
    out = [
        f"| limit model (scale {scale:g}) | run | listing s | details s | day s | of oracle | blocks | 429s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        share = "-" if r.of_oracle is None else f"{r.of_oracle:.0%}"
        out.append(
            f"| {r.model} | {r.run} | {r.listing_s:.2f} | {r.details_s:.2f} | {r.day_s:.2f} | {share} | "
            f"{r.blocks} | {r.blocked_429} |"
        )
    return "\n".join(out)


def run_all(scale: float, models: tuple[str, ...] = MODELS, sweep: tuple[int, ...] = SWEEP) -> list[DayRun]:
    with tempfile.TemporaryDirectory(prefix="pncp-pace-") as tmp:
        return [run for model in models for run in run_model(model, scale, sweep, Path(tmp))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=SCALE, help="divide every time by this (1 = PNCP's own)")
    parser.add_argument("--model", choices=MODELS, action="append", help="a limit model (default: both)")
    parser.add_argument("--sweep", default=",".join(map(str, SWEEP)), help="fixed in-flight settings for the oracle")
    parser.add_argument("--cli", default=sys.executable, help="the Python whose pncp_ingest runs the day")
    args = parser.parse_args()
    PYTHON[0] = args.cli
    sweep = tuple(int(n) for n in args.sweep.split(","))
    runs = run_all(args.scale, tuple(args.model or MODELS), sweep)
    print("\n".join(table(runs, args.scale)))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "pace.json").write_text(json.dumps({"scale": args.scale, "runs": [asdict(r) for r in runs]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
