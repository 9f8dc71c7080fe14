"""What a run reports: events while it works, a summary when it ends.

Nothing below the CLI prints; the pipeline hands events to a callback and returns a
:class:`RunSummary`, and ``report.py`` decides how either looks.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

import anyio

from ..dates import utcnow
from ..errors import LeaseHeldError
from ..records.schema import Dataset
from ..state import DayState
from ..storage import ObjectStore


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
    requests: int = 0
    retries: int = 0
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
    interrupted: str | None = None  # the signal that stopped the run early, if one did
    error_exit_code: int | None = None  # the exit code of ``error`` (the error's own, 1 for a bug)
    client_stats: Any = field(default=None, repr=False)  # the live ClientStats, for per-day counts
    started: float = field(default_factory=time.monotonic)
    duration_s: float = 0.0

    @property
    def held(self) -> list[DaySummary]:
        return [d for d in self.days if d.status == "held"]

    @property
    def status(self) -> Literal["ok", "partial", "failed", "interrupted"]:
        if self.interrupted:
            return "interrupted"
        if self.error:
            return "failed"
        if self.failures or self.held:
            return "partial"
        return "ok"

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
        return {
            "command": self.command,
            "status": self.status,
            "dates": self.dates,
            # A backfill's details days count the same contratações again: count each once.
            "contratacoes": sum(
                d.contratacoes for d in self.days if d.dataset == "pncp" or all(x.dataset != "pncp" for x in self.days)
            ),
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
            # Adaptive in-flight limits per API family: ceiling, final limit, minimum, time paused.
            "concurrency": self.client_stats.limits() if self.client_stats is not None else {},
            "error": self.error,
            "interrupted": self.interrupted,
            "exit_code": self.exit_code,
            "days": [asdict(d) for d in self.days],
            "failures": [asdict(f) for f in self.failures],
        }


async def cancel_on(stop: anyio.Event | None, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work``, cancelling it if ``stop`` is set first (a signal asked us to wind down).

    What ``work`` already handed on (records sent to the writer) stays handed on, so the caller
    can still commit it."""
    if stop is None:
        await work()
        return
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            await stop.wait()
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await work()
        tg.cancel_scope.cancel()


async def each_day(
    days: list[date],
    dataset: Dataset,
    store: ObjectStore,
    summary: RunSummary,
    on_event: EventSink,
    body: Callable[[date, DaySummary], Awaitable[bool]],
    stop: anyio.Event | None = None,
) -> None:
    """Run ``body`` for each day in order, with its own DaySummary; ``body`` returns False to stop.

    A day held by another run is reported and skipped (the run then exits 3); the others go on.
    Each day's outcome is recorded in its state (``last_run.json``) for ``pncp-ingest status``.
    """
    for day in days:
        if stop is not None and stop.is_set():
            return
        day_summary = DaySummary(day=day.isoformat(), dataset=dataset.name)
        summary.days.append(day_summary)
        started = time.monotonic()
        stats = summary.client_stats
        before = (stats.requests, stats.retries) if stats is not None else (0, 0)
        outcome: str | None = None
        try:
            go_on = await body(day, day_summary)
            outcome = "interrupted" if stop is not None and stop.is_set() else day_summary.status
            if not go_on:
                return
        except LeaseHeldError as held:
            day_summary.status = "held"
            day_summary.held_by = str(held)
            on_event(Event("failure", dataset.name, day, str(held)))
        except BaseException as exc:
            outcome = (
                "interrupted"
                if isinstance(exc, (KeyboardInterrupt, anyio.get_cancelled_exc_class()))
                else f"failed: {exc}"
            )
            raise
        finally:
            day_summary.duration_s = round(time.monotonic() - started, 3)
            if stats is not None:
                day_summary.requests, day_summary.retries = stats.requests - before[0], stats.retries - before[1]
            if outcome is not None:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await DayState(store, dataset, day).record_run(
                        {
                            "run_id": summary.run_id,
                            "command": summary.command,
                            "outcome": outcome,
                            "finished_at": utcnow().isoformat(),
                            **asdict(day_summary),
                        }
                    )


async def recover(state: DayState, run_id: str, on_event: EventSink) -> None:
    """Start of every day under its lease: finish what a crashed run left (see state.py)."""
    debris = await state.remove_uncommitted()
    recovered = await state.publish(run_id)
    if debris or recovered:
        on_event(
            Event(
                "recovered",
                state.dataset.name,
                state.day,
                f"removed {debris} uncommitted leftover(s), published {recovered} committed checkpoint(s) of an earlier run",
            )
        )
