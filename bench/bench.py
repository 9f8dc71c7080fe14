"""`make bench`: run the real CLI against the simulator and print what it costs.

Each scenario starts a simulator (its own process, so its CPU is not ours), lands the day's
contratações (setup, not measured), then runs `pncp-ingest details` and measures that process
alone through os.wait4: wall time, CPU seconds and peak RSS. The table goes to stdout and the
numbers to bench/out/results.json, so runs can be compared.

    python bench/bench.py                 # every scenario
    python bench/bench.py --only memory   # scenarios whose name contains "memory"
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
from dataclasses import asdict, dataclass
from pathlib import Path

from pncp_ingest.testing import SimulatorProcess

DAY = "2025-10-22"
OUT = Path(__file__).parent / "out"


@dataclass(frozen=True)
class Scenario:
    name: str
    contratacoes: int
    latency_ms: float
    concurrency: int
    checkpoint_every: int = 50


SCENARIOS = [
    Scenario("details 2000 @50ms x32", 2000, 50, 32),
    Scenario("details 2000 @0ms x32 (our CPU)", 2000, 0, 32),
    Scenario("memory: details 2000 @0ms", 2000, 0, 32),
    Scenario("memory: details 8000 @0ms", 8000, 0, 32),
]


@dataclass
class Result:
    scenario: str
    requests: int
    wall_s: float
    requests_per_s: float
    bound_per_s: float | None
    ratio: float | None
    cpu_ms_per_request: float
    peak_rss_mb: float
    contratacoes: int
    itens: int
    exit_code: int


def run_measured(command: list[str], env: dict[str, str]) -> tuple[int, float, float, float, str]:
    """Run a command; (exit code, wall s, CPU s, peak RSS MiB, stdout) of that process alone."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout


def run(scenario: Scenario, workdir: Path) -> Result:
    dest = str(workdir / scenario.name.replace(" ", "_").replace(":", "").replace("@", "").replace("(", "").replace(")", ""))
    env = {**os.environ, "PNCP_CONSULTA_RATE": "0", "PNCP_CONSULTA_CONCURRENCY": "8", "PNCP_RATE": "0",
           "PNCP_CONCURRENCY": str(scenario.concurrency), "PNCP_CHECKPOINT_EVERY": str(scenario.checkpoint_every)}
    cli = [sys.executable, "-m", "pncp_ingest"]
    with SimulatorProcess(seed=1, per_day=scenario.contratacoes, big_items=True) as sim:
        setup = subprocess.run(cli + ["contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "-q"],
                               env=env, capture_output=True, text=True)
        if setup.returncode != 0:
            raise SystemExit(f"setup failed for {scenario.name}: {setup.stderr}")
        sim.set_faults(latency_ms=scenario.latency_ms)
        code, wall, cpu, rss, stdout = run_measured(
            cli + ["details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json", "-q"], env)
    summary = json.loads(stdout) if stdout.strip() else {}
    requests = summary.get("requests", 0)
    bound = scenario.concurrency / (scenario.latency_ms / 1000) if scenario.latency_ms else None
    rate = requests / wall if wall else 0.0
    return Result(scenario.name, requests, round(wall, 2), round(rate, 1), bound, round(rate / bound, 3) if bound else None,
                  round(1000 * cpu / max(requests, 1), 3), round(rss, 1), summary.get("contratacoes", 0),
                  summary.get("itens", 0), code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="run scenarios whose name contains this text")
    args = parser.parse_args()
    chosen = [s for s in SCENARIOS if args.only in s.name]
    results = []
    header = f"{'scenario':34} {'requests':>8} {'wall s':>7} {'req/s':>7} {'bound':>6} {'ratio':>6} {'CPU ms/req':>10} {'peak RSS MB':>11} {'exit':>4}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="pncp-bench-") as tmp:
        for scenario in chosen:
            r = run(scenario, Path(tmp))
            results.append(r)
            bound = f"{r.bound_per_s:.0f}" if r.bound_per_s else "-"
            ratio = f"{r.ratio:.0%}" if r.ratio else "-"
            print(f"{r.scenario:34} {r.requests:>8} {r.wall_s:>7.2f} {r.requests_per_s:>7.0f} {bound:>6} {ratio:>6} "
                  f"{r.cpu_ms_per_request:>10.2f} {r.peak_rss_mb:>11.1f} {r.exit_code:>4}", flush=True)
    memory = {r.scenario: r.peak_rss_mb for r in results if r.scenario.startswith("memory")}
    if len(memory) == 2:
        small, large = memory.values()
        print(f"\npeak RSS, 8000 vs 2000 contratações: {large:.1f} / {small:.1f} MB = {large / small:.2f}x")
    OUT.mkdir(exist_ok=True)
    doc = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.machine(),
           "cpus": os.cpu_count(), "python": platform.python_version(), "results": [asdict(r) for r in results]}
    (OUT / "results.json").write_text(json.dumps(doc, indent=2))
    print(f"results written to {OUT / 'results.json'}")
    return 0 if all(r.exit_code == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
