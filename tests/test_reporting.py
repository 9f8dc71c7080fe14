"""What the reporters make of the run's events: the live display's figures come from events
alone, checkpoints stay on the live display, retries and pauses are said."""

from __future__ import annotations

import ast
import io
from datetime import date
from pathlib import Path

from bronze import run_cli
from rich.console import Console

import pncp_ingest
from pncp_ingest.live import RichReporter
from pncp_ingest.pipeline import Event, FamilySnapshot, StatsSnapshot
from pncp_ingest.report import PlainReporter

DAY = date(2025, 10, 22)
SRC = Path(pncp_ingest.__file__).parent


def imports(module: str) -> set[str]:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    return {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_live_and_report_do_not_import_each_other():
    assert "report" in imports("live")  # the shared helpers live in report.py
    assert "live" not in imports("report")


def render(reporter: RichReporter) -> str:
    with reporter.console.capture() as capture:
        reporter.console.print(reporter.stats)
    return capture.get()


def rich_reporter(**kwargs) -> RichReporter:
    console = Console(width=140, file=io.StringIO(), color_system=None)
    return RichReporter(console=console, live=False, **kwargs)


def test_the_live_line_shows_a_paused_family_and_for_how_long():
    reporter = rich_reporter()
    snapshot = StatsSnapshot(
        requests=120,
        retries=3,
        throttled=1,
        families={"consulta": FamilySnapshot(0, 1, 2, 23.4), "detail": FamilySnapshot(5, 8, 8, 0.0)},
    )
    reporter.event(Event("stats", "contratacoes", DAY, "", {"stats": snapshot}))
    text = render(reporter)
    assert "requests 120" in text and "in flight 5" in text
    assert "consulta paused 23s (429)" in text and "detail limit 8/8" in text


def test_on_a_terminal_checkpoints_are_counted_not_printed():
    reporter = rich_reporter()
    with reporter.console.capture() as capture:
        for n in range(1, 61):
            reporter.event(
                Event("checkpoint", "pncp_details", DAY, f"committed details of 50 contratações (checkpoint {n})")
            )
    assert capture.get() == ""
    assert "checkpoints 60" in render(reporter) and "(checkpoint 60)" in render(reporter)
    verbose = rich_reporter(verbose=True)
    with verbose.console.capture() as capture:
        verbose.event(Event("checkpoint", "pncp_details", DAY, "committed details of 50 contratações (checkpoint 1)"))
    assert "✓" in capture.get()


def test_plain_output_keeps_one_line_per_checkpoint_and_spaces_out_retry_lines():
    stream = io.StringIO()
    reporter = PlainReporter(stream=stream)
    for n in range(1, 4):
        reporter.event(Event("checkpoint", "pncp", DAY, f"committed 50 contratações (checkpoint {n})"))
    for n in range(1, 7):
        reporter.event(Event("retry", "contratacoes", DAY, f"PNCP detail API, /x: HTTP 503; retry {n} of 6 in 1.0s"))
    lines = stream.getvalue().splitlines()
    assert sum("(checkpoint" in line for line in lines) == 3
    retries = [line for line in lines if " retrying " in line]
    assert len(retries) == 1 and "retry 1 of 6" in retries[0]  # the rest within 5 s are counted, not printed


def test_the_pipeline_reports_its_figures_as_plain_snapshots(sim, tmp_path):
    import anyio

    from pncp_ingest import load_settings
    from pncp_ingest.pipeline import run_contratacoes

    events: list[Event] = []
    settings = load_settings(None, dest=str(tmp_path / "b"), base_url=sim.base_url, consulta_rate=0, rate=0)
    summary = anyio.run(lambda: run_contratacoes(settings, [DAY], on_event=events.append))
    assert all("client" not in e.data for e in events)
    snapshots = [e.data["stats"] for e in events if e.kind == "stats"]
    assert snapshots and all(isinstance(s, StatsSnapshot) for s in snapshots)
    assert snapshots[-1].requests == summary.requests > 0
    assert set(snapshots[-1].families) == {"consulta", "detail"}


def test_the_run_summary_at_100_columns_keeps_day_and_dataset_whole():
    from pncp_ingest.pipeline import DaySummary, RunSummary
    from pncp_ingest.tables import summary_table

    summary = RunSummary("backfill", "r", ["2025-10-21", "2025-10-22"], "./b")
    for day in ("2025-10-21", "2025-10-22"):
        summary.days.append(DaySummary(day, "pncp", contratacoes=3120, requests=260, duration_s=61.2))
        summary.days.append(
            DaySummary(
                day,
                "pncp_details",
                contratacoes=3120,
                itens=184_233,
                arquivos=9_876,
                failed=2,
                requests=6_244,
                retries=17,
                duration_s=1234.5,
            )
        )
    console = Console(width=100, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(summary_table(console, summary))
    lines = capture.get().splitlines()
    assert all(len(line) <= 100 for line in lines)
    rows = [[cell.strip() for cell in line.split("│")[:2]] for line in lines if line.lstrip().startswith("2025-")]
    assert rows == [[d, ds] for d in ("2025-10-21", "2025-10-22") for ds in ("pncp", "pncp_details")]
    assert "…" not in "\n".join(lines)


def test_the_start_line_says_resume_once(sim, tmp_path):
    from inprocess import invoke

    dest = str(tmp_path / "b")
    invoke("contratacoes", "--date", "2025-10-22", "--dest", dest, "--base-url", sim.base_url)
    for flag, said in (("--resume", "resume yes"), ("--no-resume", "resume no (refetch and replace)")):
        result = invoke("details", "--date", "2025-10-22", flag, "--dest", dest, "--base-url", sim.base_url)
        start = result.stderr.splitlines()[0]
        assert said in start and "resume resume" not in start, start


def test_atualizacoes_prints_one_line_per_update_day_and_dataset_and_each_publication_day_with_verbose(
    sim_factory, tmp_path
):
    sim = sim_factory(seed=5, per_day=4, big_items=False)
    sim.update("2025-10-23", "2025-10-01", "2025-10-20", share=0.5)
    args = ("atualizacoes", "--date", "2025-10-23", "--base-url", sim.base_url, "--json")
    quiet = run_cli(*args, "--dest", str(tmp_path / "a"))
    assert quiet.code == 0, quiet.stderr
    publication_days = sorted({d["day"] for d in quiet.json["days"] if d["dataset"] == "pncp"})
    assert len(publication_days) >= 5
    lines = quiet.stderr.splitlines()
    others = [day for day in publication_days if day != "2025-10-23"]
    assert not [line for line in lines if any(f" {day}:" in line for day in others)], quiet.stderr
    for dataset in ("pncp", "pncp_details"):
        [line] = [line for line in lines if f" {dataset} updated on 2025-10-23: " in line]
        assert f"over {len(publication_days)} publication days" in line, line
    # Each line is the start, the end, an update day's own listing (three lines per listed
    # dataset: start, checkpoint, end) or one sum per dataset: none per publication day.
    sums = [line for line in lines if " updated on 2025-10-23: " in line]
    listing = [line for line in lines if "_atualizacoes 2025-10-23: " in line]
    assert len(lines) == 2 + len(sums) + len(listing), quiet.stderr
    assert len(sums) == len({line.split()[1] for line in sums}) <= 6
    # --json keeps each publication day, without its zero counts
    entries = [d for d in quiet.json["days"] if not d["dataset"].endswith("_atualizacoes")]
    assert entries and all(0 not in d.values() and len(d) <= 12 for d in entries), entries

    verbose = run_cli(*args, "--dest", str(tmp_path / "b"), "--verbose")
    assert verbose.code == 0, verbose.stderr
    for day in publication_days:
        assert f"pncp {day}: " in verbose.stderr and f"pncp_details {day}: " in verbose.stderr
    assert " updated on 2025-10-23: " not in verbose.stderr
