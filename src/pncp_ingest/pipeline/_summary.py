"""What a run reports: events while it works, a summary when it ends.

Nothing below the CLI prints; the pipeline hands events to a callback and returns a
:class:`RunSummary`, and ``report.py`` decides how either looks.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from ..dates import utcnow


def new_run_id() -> str:
    """Sortable and unique: UTC start time plus randomness."""
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


# "notice": worth knowing when looking closely (--verbose), not worth a line otherwise.
EventKind = Literal[
    "run_start",
    "day_start",
    "progress",
    "checkpoint",
    "publish",
    "day_end",
    "failure",
    "recovered",
    "notice",
    "retry",
    "stats",
]


@dataclass(frozen=True)
class Event:
    """``retry`` carries a :class:`~pncp_ingest.pncp.RetryNotice` as ``data["retry"]``; ``stats`` a
    :class:`StatsSnapshot` as ``data["stats"]`` (a few times a second, for a live display)."""

    kind: EventKind
    dataset: str
    day: date
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FamilySnapshot:
    in_flight: int
    limit: int
    ceiling: int
    paused_for: float  # seconds left of a 429 pause, 0 when not paused


@dataclass(frozen=True)
class StatsSnapshot:
    """The client's counters at one instant, as plain values: what a display may show."""

    requests: int
    retries: int
    throttled: int
    families: dict[str, FamilySnapshot]


EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default sink: library callers that don't want progress get none."""


@dataclass
class Failure:
    """One piece of work that failed: the run exits 1 and the next run retries it.

    ``code`` names a failure a presenter can give advice for (``"not_listed"``: the day has no
    published contratações at this destination), so the library says what happened and the CLI
    or an Airflow task says what to run."""

    day: str
    what: str
    reason: str
    code: str | None = None


@dataclass
class DaySummary:
    day: str
    dataset: str
    # "missing": nothing to work on here (details of a day whose listing has not run at this
    # destination); the day's state is left untouched.
    status: Literal["ok", "partial", "held", "skipped", "missing"] = "ok"
    listed: int = 0
    contratacoes: int = 0  # contratações whose rows (or details rows) this day committed
    contratos: int = 0  # contratos whose rows this day committed
    atas: int = 0  # atas whose rows this day committed
    versions: int = 0  # history rows (one per record and version) this day committed
    itens: int = 0
    arquivos: int = 0
    resultados: int = 0
    pages: int = 0
    checkpoints: int = 0
    published_rows: int = 0
    failed: int = 0
    gone: int = 0
    planned: int = 0  # pieces of work this run took on for the day (e.g. contratações whose details to fetch)
    pending: int = 0  # pieces of work left for later runs when the day ended (resultados: still unsettled)
    # resultados: contratações settled (no request), polled; items newly homologated, resultados
    # new to bronze; when the next contratação is due (ISO, UTC)
    settled: int = 0
    polled: int = 0
    homologated: int = 0
    landed: int = 0
    next_due: str | None = None
    requests: int = 0
    retries: int = 0
    held_by: str | None = None
    duration_s: float = 0.0

    def add(self, counter: str, n: int) -> None:
        """Add ``n`` to the counter named after a listing (``contratacoes``, ``contratos``, ``atas``)."""
        setattr(self, counter, self.counted(counter) + n)

    def counted(self, counter: str) -> int:
        value = getattr(self, counter)
        assert isinstance(value, int)
        return value


@dataclass
class RunSummary:
    command: str
    run_id: str
    dates: list[str]
    dest: str
    days: list[DaySummary] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    error: str | None = None
    interrupted: str | None = None  # the signal that stopped the run early, if one did
    error_exit_code: int | None = None  # the exit code of ``error`` (the error's own, 1 for a bug)
    client_stats: Any = field(default=None, repr=False)  # the live ClientStats, for per-day counts
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0

    @property
    def held(self) -> list[DaySummary]:
        return [d for d in self.days if d.status == "held"]

    @property
    def status(self) -> Literal["ok", "partial", "held", "failed", "interrupted"]:
        """What ``exit_code`` says, in a word: ``held`` goes with exit 3, ``partial`` with exit 1."""
        if self.interrupted:
            return "interrupted"
        if self.error:
            return "failed"
        if self.held:
            return "held"
        if self.failures:
            return "partial"
        return "ok"

    @property
    def contratacoes(self) -> int:
        """Contratações the run committed rows for, each day counted once however many datasets
        it wrote (a backfill's listing and details of one day are the same contratações)."""
        per_day: dict[str, int] = {}
        for d in self.days:
            per_day[d.day] = max(per_day.get(d.day, 0), d.contratacoes)
        return sum(per_day.values())

    @property
    def exit_code(self) -> int:
        if self.error:
            return self.error_exit_code or 1
        if self.interrupted:
            return {"SIGINT": 130, "SIGTERM": 143}.get(self.interrupted, 130)
        if self.held:
            return 3
        return 1 if self.failures else 0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: the documented keys first (README: Output and exit codes), then per-day detail."""
        documented = {
            "command": self.command,
            "status": self.status,
            "dates": self.dates,
            "contratacoes": self.contratacoes,
            "itens": sum(d.itens for d in self.days),
            "contratos": sum(d.contratos for d in self.days),
            "atas": sum(d.atas for d in self.days),
            "arquivos": sum(d.arquivos for d in self.days),
            "resultados": sum(d.resultados for d in self.days),
            "requests": self.requests,
            "retries": self.retries,
            "failed": len(self.failures),
            "versions": sum(d.versions for d in self.days),
            "checkpoints": sum(d.checkpoints for d in self.days),
            "duration_s": round(self.duration_s, 3),
            "run_id": self.run_id,
            "dest": self.dest,
            "throttled": self.throttled,
            # Adaptive in-flight limits per API family: ceiling, final limit, minimum, time paused.
            "concurrency": self.client_stats.limits() if self.client_stats is not None else {},
            "error": self.error,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "days": [asdict(d) for d in self.days],
            "failures": [asdict(f) for f in self.failures],
        }
        if self.command == "resultados":
            documented.update(self._resultados())
        return documented

    def _resultados(self) -> dict[str, Any]:
        """What ``resultados`` did: settled, polled, newly homologated, landed, still pending, next due."""
        due = [d.next_due for d in self.days if d.next_due]
        return {
            "settled": sum(d.settled for d in self.days),
            "polled": sum(d.polled for d in self.days),
            "homologated": sum(d.homologated for d in self.days),
            "landed": sum(d.landed for d in self.days),
            "pending": sum(d.pending for d in self.days),
            "next_due": min(due) if due else None,
        }
