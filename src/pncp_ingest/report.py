"""How a run looks to the operator when nobody is watching: plain timestamped lines on stderr
(what cron and systemd capture), the ``--json`` summary, and ``status`` as tab-separated lines.

On a terminal, ``live.RichReporter`` draws panels and progress bars instead; both follow
:class:`Reporter`.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
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


@dataclass
class _Tally:
    days: set[str] = field(default_factory=set)
    records: int = 0  # newer versions applied (current datasets), or replaced versions kept (histories)
    itens: int = 0
    arquivos: int = 0
    failed: int = 0


class PublicationDays:
    """During ``atualizacoes``, the publication days an update day touches (often dozens, each with
    its start, checkpoint and end lines per dataset) summed into one line per update day and
    dataset. With --verbose each is shown as it happens, and nothing is summed."""

    def __init__(self) -> None:
        from .pipeline import LISTINGS

        self.active = False
        self.update_day: str | None = None
        self.tallies: dict[str, _Tally] = {}
        # Which counter of a day's summary says what a dataset's day did.
        self.counters = {x.current.name: x.name for x in LISTINGS.values()} | {"pncp_details": "contratacoes"}
        self.counters |= {x.history.name: "versions" for x in LISTINGS.values()}
        self.histories = {x.history.name for x in LISTINGS.values()}

    def start(self, command: str, verbose: bool) -> None:
        self.active = command == "atualizacoes" and not verbose

    def take(self, event: Event) -> tuple[list[str], bool]:
        """(summed lines due now, whether ``event`` is shown as usual). Failures are always shown."""
        if not self.active or event.kind in ("failure", "retry", "stats", "run_start"):
            return [], True
        due: list[str] = []
        if event.dataset in self.histories and event.kind == "day_start":
            # A history dataset's listing of an update day starts: what came before is complete.
            due = self.flush()
            self.update_day = event.day.isoformat()
        if event.dataset in self.histories and event.day.isoformat() == self.update_day:
            return due, True  # the update day's own listing
        if self.update_day is None or event.kind == "recovered":
            return due, True
        if event.kind == "day_end":
            day = event.data.get("summary")
            tally = self.tallies.setdefault(event.dataset, _Tally())
            tally.days.add(event.day.isoformat())
            if day is not None:
                tally.records += day.counted(self.counters.get(event.dataset, "contratacoes"))
                tally.itens += day.itens
                tally.arquivos += day.arquivos
                tally.failed += day.failed
        return due, False

    def flush(self) -> list[str]:
        """The summed lines of the update day so far (called at its end or the run's)."""
        lines = []
        for dataset, t in sorted(self.tallies.items()):
            span = (
                f"{len(t.days)} publication days ({min(t.days)}..{max(t.days)})"
                if len(t.days) > 1
                else (f"publication day {min(t.days)}")
            )
            if dataset == "pncp_details":
                what = (
                    f"itens and arquivos of {t.records} changed contratações ({t.itens} itens, {t.arquivos} arquivos)"
                )
            elif dataset in self.histories:
                what = f"{t.records} replaced versions kept"
                span = span.replace("publication day", "update day")
            else:
                what = f"{t.records} newer versions applied"
            lines.append(f"{dataset} updated on {self.update_day}: {what} over {span}, {t.failed} failed")
        self.tallies = {}
        return lines


class PlainReporter:
    """Timestamped lines on stderr: start, each checkpoint, retries, each day's end, the summary."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self.retries = RetryLines(verbose)
        self.publication_days = PublicationDays()

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        print(f"{utcnow():%Y-%m-%dT%H:%M:%SZ} {text}", file=self.stream, flush=True)

    def warning(self, message: str) -> None:
        self.line(f"warning: {message}", always=True)

    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None:
        self.publication_days.start(command, self.verbose)
        span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} days)"
        more = "".join(f", {name} {value}" for name, value in extra.items())
        self.line(
            f"start {command} {span} -> {dest} (api {redact_url(settings.base_url)}, "
            f"consulta {settings.consulta_concurrency} in flight @ {settings.consulta_rate or 'unlimited'}/s, "
            f"detail {settings.concurrency} in flight @ {settings.rate or 'unlimited'}/s{more})"
        )

    def event(self, event: Event) -> None:
        due, shown = self.publication_days.take(event)
        for text in due:
            self.line(text)
        if not shown:
            return
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
        for text in self.publication_days.flush():
            self.line(text)
        doc = summary.to_json()
        # contratos, atas and versions only when the run wrote some: most commands write none.
        more = "".join(f" {k}={doc[k]}" for k in ("contratos", "atas", "versions") if doc[k])
        self.line(
            f"end {summary.command} status={doc['status']} contratacoes={doc['contratacoes']} itens={doc['itens']} "
            f"arquivos={doc['arquivos']}{more} requests={doc['requests']} retries={doc['retries']} "
            f"failed={doc['failed']} checkpoints={doc['checkpoints']} duration={doc['duration_s']:.1f}s",
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
    print(json.dumps(compact(summary.to_json()), ensure_ascii=False), file=stream or sys.stdout, flush=True)


def compact(doc: dict[str, Any]) -> dict[str, Any]:
    """The --json summary with an ``atualizacoes`` run's publication days (dozens per update day)
    down to their day, dataset, status and the counts that are not zero."""
    if doc.get("command") != "atualizacoes":
        return doc
    from .pipeline import LISTINGS

    histories = {x.history.name for x in LISTINGS.values()}
    keep = ("day", "dataset", "status")
    days = [d if d.get("dataset") in histories else {k: v for k, v in d.items() if k in keep or v} for d in doc["days"]]
    return {**doc, "days": days}


class Reporter(Protocol):
    def line(self, text: str, *, always: bool = False) -> None: ...
    def warning(self, message: str) -> None: ...
    def start(self, command: str, dates: list[str], dest: str, settings: Settings, **extra: Any) -> None: ...
    def event(self, event: Event) -> None: ...
    def summary(self, summary: RunSummary) -> None: ...
    def error(self, message: str) -> None: ...


def print_status_lines(statuses: list[DayStatus], stream: TextIO | None = None) -> None:
    """``status`` off a terminal: a header and one tab-separated line per day (``-`` = never run or
    nothing to say), the reason a day is not complete in ``why_not``."""
    from .tables import STATUS_LINE_HEADER, status_row

    out = stream or sys.stdout
    print("\t".join(STATUS_LINE_HEADER), file=out)
    for st in statuses:
        print("\t".join(status_row(st)), file=out)
    out.flush()
