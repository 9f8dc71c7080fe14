"""Record what a terminal run looks like (docs/terminal.svg and docs/terminal.txt).

    .venv/bin/python docs/record_transcript.py

Runs contratações then details for a simulated day in-process, drawn by the same RichReporter
the CLI uses on a terminal, into a recording rich Console (without the live progress bars,
which a recording would capture frame by frame).
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import anyio
from rich.console import Console

from pncp_ingest import load_settings
from pncp_ingest.live import RichReporter
from pncp_ingest.pipeline import run_contratacoes, run_details
from pncp_ingest.testing import SimulatorProcess

HERE = Path(__file__).parent
DAY = date(2025, 10, 22)


def main() -> None:
    console = Console(record=True, width=112, force_terminal=True, color_system="truecolor")
    with (
        SimulatorProcess(seed=42, per_day=150, big_items=True, latency_ms=5) as sim,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = load_settings(
            None,
            dest=f"{tmp}/bronze",
            base_url=sim.base_url,
            consulta_rate=0,
            consulta_concurrency=4,
            rate=0,
            concurrency=16,
        )
        for command, run in (("contratacoes", run_contratacoes), ("details", run_details)):
            console.print(f"[dim]$[/] pncp-ingest {command} --date {DAY} --dest ./data/bronze", highlight=False)
            reporter = RichReporter(console=console, live=False)
            reporter.start(command, [DAY.isoformat()], "./data/bronze", settings)
            summary = anyio.run(lambda: run(settings, [DAY], on_event=reporter.event))
            reporter.summary(summary)
            console.print()
    text = console.export_text(clear=False)
    (HERE / "terminal.txt").write_text(text.replace(tmp, "."))
    console.save_svg(str(HERE / "terminal.svg"), title="pncp-ingest")
    print(f"wrote {HERE / 'terminal.txt'} and {HERE / 'terminal.svg'}")


if __name__ == "__main__":
    main()
