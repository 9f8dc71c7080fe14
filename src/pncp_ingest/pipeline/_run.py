"""What a run reports: events while it works, a summary when it ends.

Nothing below the CLI prints; the pipeline hands events to a callback and returns a
:class:`RunSummary`, and ``report.py`` decides how either looks.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Awaitable, Callable, Literal

from ..dates import utcnow
from ..errors import LeaseHeldError


def new_run_id() -> str:
    """Sortable and unique: UTC start time plus randomness."""
    return f"{utcnow():%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Event:
    kind: Literal["day_start", "checkpoint", "publish", "day_end", "failure", "recovered"]
    dataset: str
    day: date
    message: str
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default sink: library callers that don't want progress get none."""


@dataclass
class Failure:
    day: str
    what: str
    reason: str


@dataclass
class DaySummary:
    day: str
    dataset: str
    status: Literal["ok", "partial", "held", "skipped"] = "ok"
    listed: int = 0
    contratacoes: int = 0
    itens: int = 0
    arquivos: int = 0
    pages: int = 0
    checkpoints: int = 0
    published_rows: int = 0
    failed: int = 0
    gone: int = 0
    pending: int = 0
    held_by: str | None = None
    duration_s: float = 0.0


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
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0

    @property
    def held(self) -> list[DaySummary]:
        return [d for d in self.days if d.status == "held"]

    @property
    def status(self) -> Literal["ok", "partial", "failed"]:
        if self.error:
            return "failed"
        if self.failures or self.held:
            return "partial"
        return "ok"

    @property
    def exit_code(self) -> int:
        if self.held:
            return 3
        return 1 if self.failures else 0

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object: DESIGN.md's keys first, then per-day detail."""
        return {
            "command": self.command,
            "status": self.status,
            "dates": self.dates,
            "contratacoes": sum(d.contratacoes for d in self.days),
            "itens": sum(d.itens for d in self.days),
            "arquivos": sum(d.arquivos for d in self.days),
            "requests": self.requests,
            "retries": self.retries,
            "failed": len(self.failures),
            "checkpoints": sum(d.checkpoints for d in self.days),
            "duration_s": round(self.duration_s, 3),
            "run_id": self.run_id,
            "dest": self.dest,
            "throttled": self.throttled,
            "error": self.error,
            "exit_code": self.exit_code if not self.error else None,
            "days": [asdict(d) for d in self.days],
            "failures": [asdict(f) for f in self.failures],
        }


async def each_day(
    days: list[date],
    dataset: str,
    summary: RunSummary,
    on_event: EventSink,
    body: Callable[[date, DaySummary], Awaitable[bool]],
) -> None:
    """Run ``body`` for each day in order, with its own DaySummary; ``body`` returns False to stop.

    A day held by another run is reported and skipped (the run then exits 3); the others go on.
    """
    for day in days:
        day_summary = DaySummary(day=day.isoformat(), dataset=dataset)
        summary.days.append(day_summary)
        started = time.monotonic()
        try:
            if not await body(day, day_summary):
                return
        except LeaseHeldError as held:
            day_summary.status = "held"
            day_summary.held_by = str(held)
            on_event(Event("failure", dataset, day, str(held)))
        finally:
            day_summary.duration_s = round(time.monotonic() - started, 3)
