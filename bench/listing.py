"""`pncp-ingest contratacoes` over one large day, this checkout against another, interleaved.

The listing is the path every listing dataset (contratações, contratos, atas) shares; this bench
checks that declaring datasets did not make the contratações listing slower. Each round runs both
interpreters once, in alternating order, against one simulator (its own process); the table gives
each side's median wall time (process start to exit) and CPU, and their ratio.

    python bench/listing.py --baseline-python ../other-checkout/.venv/bin/python [--rounds 5]
    python bench/listing.py          # this checkout alone

Both sides list into fresh folders with the same settings: 8 consulta requests in flight, no
rate, the adaptive limit off (a fixed limit keeps the comparison about our own cost).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from pncp_ingest.testing import SimulatorProcess

sys.path.insert(0, str(Path(__file__).parent))
from behaviours import last_json

from bench import run_measured

DAY = "2025-10-22"
ENV = {
    "PNCP_CONSULTA_RATE": "0",
    "PNCP_CONSULTA_CONCURRENCY": "8",
    "PNCP_ADAPTIVE": "false",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-python", help="the other checkout's interpreter (its pncp_ingest is measured)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--contratacoes", type=int, default=3000)
    parser.add_argument("--latency-ms", type=float, default=20)
    args = parser.parse_args(argv)

    sides = {"this": sys.executable}
    if args.baseline_python:
        sides["baseline"] = args.baseline_python
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    with (
        tempfile.TemporaryDirectory(prefix="pncp-bench-listing-") as tmp,
        SimulatorProcess(seed=1, per_day=args.contratacoes, big_items=False) as sim,
    ):
        sim.set_faults(latency_ms=args.latency_ms)
        env = {**os.environ, **ENV}
        for n in range(args.rounds):
            order = list(sides.items()) if n % 2 == 0 else list(reversed(sides.items()))
            for name, python in order:
                dest = f"{tmp}/{name}-{n}"
                command = [python, "-m", "pncp_ingest", "contratacoes", "--date", DAY, "--dest", dest]
                code, wall, cpu, _, out = run_measured([*command, "--base-url", sim.base_url, "--json", "-q"], env)
                summary = last_json(out)
                if code != 0 or summary.get("contratacoes") != args.contratacoes:
                    raise SystemExit(f"{name} round {n}: exit {code}, {summary.get('contratacoes')} contratações")
                times[name].append((wall, cpu))
    print(
        f"contratacoes, one day of {args.contratacoes} at {args.latency_ms:g} ms, "
        f"{args.rounds} interleaved rounds (medians)"
    )
    print(f"{'side':<10}  {'wall s':>8}  {'CPU s':>8}")
    medians = {}
    for name, runs in times.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        medians[name] = (wall, cpu)
        print(f"{name:<10}  {wall:>8.2f}  {cpu:>8.2f}")
    if "baseline" in medians:
        (w1, c1), (w0, c0) = medians["this"], medians["baseline"]
        print(f"this / baseline: wall {w1 / w0:.3f}, CPU {c1 / c0:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
