"""How a run looks to the operator when nobody is watching: plain timestamped lines on stderr
(what cron and systemd capture), the ``--json`` summary, and the choice of reporter.

On a terminal, ``live.RichReporter`` draws panels and progress bars instead.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol, TextIO
from urllib.parse import urlsplit, urlunsplit

from .config import Settings
from .dates import utcnow
from .pipeline import Event, RunSummary
from .status import DayStatus


def redact_url(url: str) -> str:
    """Drop any user:password@ from a URL before it is shown."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


class PlainReporter:
    """Timestamped lines on stderr: start, checkpoints, each day's end, the summary."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream or sys.stderr

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        print(f"{utcnow():%Y-%m-%dT%H:%M:%SZ} {text}", file=self.stream, flush=True)

    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None:
        span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} days)"
        more = "".join(f", {name} {value}" for name, value in extra.items())
        self.line(
            f"start {command} {span} -> {dest} (api {redact_url(settings.base_url)}, "
            f"consulta {settings.consulta_concurrency} in flight @ {settings.consulta_rate or 'unlimited'}/s, "
            f"detail {settings.concurrency} in flight @ {settings.rate or 'unlimited'}/s{more})"
        )

    def event(self, event: Event) -> None:
        if event.kind in ("run_start", "progress") or (event.kind == "notice" and not self.verbose):
            return
        if event.kind == "failure":
            self.line(f"{event.dataset} {event.day}: {event.message}", always=True)
        elif event.kind in ("checkpoint", "publish") and not self.verbose:
            if event.kind == "checkpoint":
                self.line(f"{event.dataset} {event.day}: {event.message}")
        else:
            self.line(f"{event.dataset} {event.day}: {event.message}")

    def summary(self, summary: RunSummary) -> None:
        doc = summary.to_json()
        self.line(
            f"end {summary.command} status={doc['status']} contratacoes={doc['contratacoes']} itens={doc['itens']} "
            f"arquivos={doc['arquivos']} requests={doc['requests']} retries={doc['retries']} failed={doc['failed']} "
            f"checkpoints={doc['checkpoints']} duration={doc['duration_s']:.1f}s",
            always=True,
        )
        for failure in summary.failures[:20]:
            self.line(f"failed {failure.day} {failure.what}: {failure.reason}", always=True)
        if len(summary.failures) > 20:
            self.line(f"... and {len(summary.failures) - 20} more failures (see --json)", always=True)
        if summary.failures:
            self.line("failed work is not marked done: run the same command again to retry it", always=True)

    def error(self, message: str) -> None:
        print(f"error: {message}", file=self.stream, flush=True)


def print_json(summary: RunSummary, stream: TextIO | None = None) -> None:
    print(json.dumps(summary.to_json(), ensure_ascii=False), file=stream or sys.stdout, flush=True)


class Reporter(Protocol):
    def line(self, text: str, *, always: bool = False) -> None: ...
    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None: ...
    def event(self, event: Event) -> None: ...
    def summary(self, summary: RunSummary) -> None: ...
    def error(self, message: str) -> None: ...


def make_reporter(*, quiet: bool, verbose: bool) -> Reporter:
    """Rich panels when a person is watching (stderr is a terminal), plain lines otherwise."""
    if sys.stderr.isatty():
        from .live import RichReporter

        return RichReporter(quiet=quiet, verbose=verbose)
    return PlainReporter(quiet=quiet, verbose=verbose)


STATUS_COLUMNS = (
    "day",
    "contratações",
    "listing failed",
    "details",
    "itens",
    "arquivos",
    "details failed",
    "gone",
    "pending",
    "details stale",
    "parts",
    "last run",
    "held by",
)


def _status_row(st: DayStatus) -> list[str]:
    runs = ", ".join(
        f"{name}: {run.get('outcome')} {str(run.get('finished_at', ''))[:16]}" for name, run in st.last_run.items()
    )
    return [
        st.day,
        str(st.contratacoes),
        str(st.contratacoes_failed),
        str(st.details),
        str(st.itens_done),
        str(st.arquivos_done),
        str(st.details_failed),
        str(st.gone),
        str(st.pending),
        str(st.details_stale),
        str(st.parts),
        runs or "-",
        "; ".join(st.held_by.values()) or "-",
    ]


def print_status(statuses: list[DayStatus]) -> None:
    """A table on a terminal, tab-separated lines (with a header) otherwise."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(title="pncp-ingest status")
        for column in STATUS_COLUMNS:
            table.add_column(column, justify="left" if column in ("day", "last run", "held by") else "right")
        for st in statuses:
            table.add_row(*_status_row(st), style=None if st.complete else "yellow")
        Console().print(table)
        return
    print("\t".join(c.replace(" ", "_") for c in STATUS_COLUMNS), flush=True)
    for st in statuses:
        print("\t".join(_status_row(st)), flush=True)
