"""The terminal experience: a start panel, live progress per phase with the client's figures and
the checkpoints, lines only for what needs attention, and a closing summary table. Used only
when stderr is a terminal; everything shown comes from the run's events."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .config import Settings
from .pipeline import Event, RunSummary, StatsSnapshot
from .report import PublicationDays, RetryLines, explain, redact_url
from .tables import summary_table


class LiveStats:
    """The lines under the progress bars: the latest stats snapshot, checkpoints and failures."""

    def __init__(self) -> None:
        self.snapshot: StatsSnapshot | None = None
        self.failures = 0
        self.checkpoints = 0
        self.last_checkpoint = ""
        self.last_retry = ""

    def __rich__(self) -> RenderableType:
        lines: list[Text] = []
        if self.snapshot is not None:
            stats = self.snapshot
            flight = sum(f.in_flight for f in stats.families.values())
            limits = "  ".join(
                f"{name} paused {f.paused_for:.0f}s (429)"
                if f.paused_for > 0
                else f"{name} limit {f.limit}/{f.ceiling}"
                for name, f in stats.families.items()
            )
            paused = any(f.paused_for > 0 for f in stats.families.values())
            lines.append(
                Text.assemble(
                    ("requests ", "dim"),
                    (f"{stats.requests}", "bold"),
                    ("  in flight ", "dim"),
                    (f"{flight}", "bold"),
                    (f"  {limits}", "yellow" if paused else "dim"),
                    ("  retries ", "dim"),
                    (f"{stats.retries}", "yellow" if stats.retries else "bold"),
                    ("  429s ", "dim"),
                    (f"{stats.throttled}", "yellow" if stats.throttled else "bold"),
                    ("  failed ", "dim"),
                    (f"{self.failures}", "red" if self.failures else "bold"),
                )
            )
        if self.checkpoints:
            lines.append(
                Text.assemble(
                    ("checkpoints ", "dim"), (f"{self.checkpoints}", "bold"), f"  last: {self.last_checkpoint}"
                )
            )
        if self.last_retry:
            lines.append(Text.assemble(("last retry ", "dim"), (self.last_retry, "yellow")))
        return Group(*lines)


class RichReporter:
    """Same interface as ``report.PlainReporter``, drawn with rich on a terminal."""

    def __init__(
        self, *, quiet: bool = False, verbose: bool = False, console: Console | None = None, live: bool = True
    ) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.verbose = verbose
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[dim]{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.stats = LiveStats()
        self.retries = RetryLines(verbose)
        self.publication_days = PublicationDays()
        self.live = Live(Group(self.progress, self.stats), console=self.console, refresh_per_second=8, transient=True)
        self.tasks: dict[str, TaskID] = {}
        self.show_live = live  # off when recording a transcript: only the lasting lines

    def _task(self, name: str) -> TaskID:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=0, rate="")
        return self.tasks[name]

    def _advance(self, name: str, planned: int = 0, done: int = 0) -> None:
        task = self._task(name)
        current = self.progress.tasks[self.progress.task_ids.index(task)]
        self.progress.update(task, total=(current.total or 0) + planned, advance=done)
        speed = current.speed
        self.progress.update(task, rate=f"{speed:,.0f}/s" if speed else "")

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        self.console.print(text, highlight=False)

    def warning(self, message: str) -> None:
        self.console.print(f"[bold yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None:
        self.publication_days.start(command, self.verbose)
        span = dates[0] if len(dates) == 1 else f"{dates[0]} → {dates[-1]} ({len(dates)} days)"
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="dim")
        grid.add_column()
        grid.add_row("days", span)
        grid.add_row("destination", dest)
        grid.add_row("API", redact_url(settings.base_url))
        grid.add_row(
            "consulta", f"{settings.consulta_concurrency} in flight, {settings.consulta_rate or 'no'} req/s limit"
        )
        grid.add_row("detail", f"{settings.concurrency} in flight, {settings.rate or 'no'} req/s limit")
        grid.add_row("checkpoint", f"every {settings.checkpoint_every}")
        for name, value in extra.items():
            grid.add_row(name, str(value))
        if not self.quiet:
            self.console.print(Panel(grid, title=f"[bold]pncp-ingest {command}", expand=False))
        if self.show_live:
            self.live.start()

    def event(self, event: Event) -> None:
        data = event.data
        due, shown = self.publication_days.take(event)
        for text in due:
            self.line(f"[bold]{text}[/]")
        if event.kind == "stats":
            self.stats.snapshot = data["stats"]
        elif event.kind == "progress":
            if "pages_planned" in data or "pages_done" in data:
                self._advance("listing pages", data.get("pages_planned", 0), data.get("pages_done", 0))
            else:
                self._advance("contratações", data.get("compras_planned", 0), data.get("compras_done", 0))
        elif event.kind == "checkpoint":
            # Dozens a day: counted on the live display, printed only with --verbose.
            self.stats.checkpoints += 1
            self.stats.last_checkpoint = f"{event.dataset} {event.day}: {event.message}"
            if self.verbose:
                self.line(f"[green]✓[/] {event.dataset} {event.day}: {event.message}")
        elif event.kind == "retry":
            self.stats.last_retry = event.message
            if self.retries.show():
                self.line(f"[yellow]↻[/] retrying {event.message}{self.retries.take_unshown()}")
        elif event.kind == "failure":
            self.stats.failures += 1
            self.line(f"[red]✗[/] {event.dataset} {event.day}: {event.message}", always=True)
        elif event.kind == "publish":
            if self.verbose:
                self.line(f"[cyan]↑[/] {event.dataset} {event.day}: {event.message}")
        elif event.kind in ("day_start", "day_end", "recovered") and shown:
            self.line(f"[bold]{event.dataset} {event.day}[/]: {event.message}")

    def summary(self, summary: RunSummary) -> None:
        for text in self.publication_days.flush():
            self.line(f"[bold]{text}[/]")
        if self.live.is_started:
            self.live.stop()
        self.console.print(summary_table(self.console, summary))
        if self.stats.checkpoints:
            self.console.print(f"[dim]{self.stats.checkpoints} checkpoint(s) committed[/]", highlight=False)
        for failure in summary.failures[:10]:
            self.console.print(f"[red]failed[/] {failure.day} {failure.what}: {explain(failure)}", highlight=False)
        if summary.failures:
            self.console.print("Failed work is not marked done: run the same command again to retry it.")

    def error(self, message: str) -> None:
        if self.live.is_started:
            self.live.stop()
        self.console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
