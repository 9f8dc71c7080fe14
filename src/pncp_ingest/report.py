"""How a run looks to the operator when nobody is watching: plain timestamped lines on stderr
(what cron and systemd capture), the ``--json`` summary, and ``status`` as tab-separated lines.

On a terminal, ``live.RichReporter`` draws panels and progress bars instead; both follow
:class:`Reporter`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from urllib.parse import urlsplit, urlunsplit

from .dates import utcnow

if TYPE_CHECKING:
    from .config import Settings
    from .pipeline import Event, Failure, RunSummary
    from .status import DayStatus

RETRY_LINES_EVERY = 5.0  # seconds: retries beyond one line per this interval are counted, not printed


def redact_url(url: str) -> str:
    """Drop any user:password@ from a URL before it is shown."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def explain(failure: Failure) -> str:
    """A failure's reason, with what to run about it where the library named the case (``code``)."""
    if failure.code == "not_listed":
        return f"{failure.reason}; run `pncp-ingest contratacoes --date {failure.day}` first (same --dest)"
    return failure.reason


class RetryLines:
    """Which retries get a line: the first, then at most one every ``RETRY_LINES_EVERY`` seconds
    (every one with --verbose). An API that does not answer is then visible at once, and one that
    answers badly does not flood a cron log."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self._last: float | None = None
        self.unshown = 0

    def show(self) -> bool:
        now = time.monotonic()
        if self.verbose or self._last is None or now - self._last >= RETRY_LINES_EVERY:
            self._last = now
            return True
        self.unshown += 1
        return False

    def take_unshown(self) -> str:
        """`` (+N more retries)`` for the retries since the last line, then reset."""
        more, self.unshown = self.unshown, 0
        return f" (+{more} more retries since the last line)" if more else ""


class PlainReporter:
    """Timestamped lines on stderr: start, each checkpoint, retries, each day's end, the summary."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.retries = RetryLines(verbose)

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        print(f"{utcnow():%Y-%m-%dT%H:%M:%SZ} {text}", file=self.stream, flush=True)

    def warning(self, message: str) -> None:
        self.line(f"warning: {message}", always=True)

    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None:
        span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} days)"
        more = "".join(f", {name} {value}" for name, value in extra.items())
        self.line(
            f"start {command} {span} -> {dest} (api {redact_url(settings.base_url)}, "
            f"consulta {settings.consulta_concurrency} in flight @ {settings.consulta_rate or 'unlimited'}/s, "
            f"detail {settings.concurrency} in flight @ {settings.rate or 'unlimited'}/s{more})"
        )

    def event(self, event: Event) -> None:
        if event.kind in ("run_start", "progress", "stats") or (event.kind == "notice" and not self.verbose):
            return
        if event.kind == "retry":
            if self.retries.show():
                self.line(f"retrying {event.message}{self.retries.take_unshown()}")
        elif event.kind == "failure":
            self.line(f"{event.dataset} {event.day}: {event.message}", always=True)
        elif event.kind == "publish" and not self.verbose:
            return
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
            self.line(f"failed {failure.day} {failure.what}: {explain(failure)}", always=True)
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
    def warning(self, message: str) -> None: ...
    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None: ...
    def event(self, event: Event) -> None: ...
    def summary(self, summary: RunSummary) -> None: ...
    def error(self, message: str) -> None: ...


def print_status_lines(statuses: list[DayStatus], stream: TextIO | None = None) -> None:
    """``status`` off a terminal: a header and one tab-separated line per day (``-`` = never run)."""
    from .tables import STATUS_COLUMNS, status_row

    out = stream or sys.stdout
    print("\t".join(c.name.replace(" ", "_") for c in STATUS_COLUMNS), file=out)
    for st in statuses:
        print("\t".join(status_row(st)), file=out)
    out.flush()
