"""The day-engine: the one skeleton every dataset's day runs through.

Under the (dataset, day) lease: finish what a crashed run left, ask the job what is to do,
let it fetch concurrently into a bounded stream, hand each result back to it as the single
writer, checkpoint every ``checkpoint_every`` results, publish on a cadence and at the end,
then save the day's failures and report. What differs between ``contratacoes``, ``details``
(and what comes next) is a :class:`DayJob`: what to fetch, how a result becomes rows, and what
a commit records besides its rows.

Why one writer: every stage/commit/publish happens in the receive loop, so a checkpoint's
content is exactly what the loop took, and nothing is "done" before its commit record exists.

Every write to bronze goes through :func:`run_day`, rows that come from elsewhere too
(:func:`commit_rows`): one lease, checkpoint, publish and recovery path for every dataset.
A job touches its own state and the :class:`Day` handle's methods, nothing else of the engine.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
import pyarrow as pa
import pyarrow.parquet as pq
from anyio.abc import TaskGroup

from ..config import Settings
from ..dates import utcnow
from ..errors import LeaseHeldError
from ..pncp import PncpClient
from ..records.schema import Dataset, Row
from ..state import DayState, Lease, Manifest, accumulate, hold
from ..storage import ObjectStore
from ..writer import write_encodable
from ._summary import DaySummary, Event, EventKind, EventSink, Failure, RunSummary

T = TypeVar("T")
# Checkpoints being written while the writer takes the next results (each holds its batch's rows):
# staging a part and its commit record is mostly Parquet encoding and fsyncs, which leave the event
# loop free, so the writer need not wait on each of them in turn.
COMMITS_IN_FLIGHT = 2
# Publishing merges pending parts in memory: publishing every N commits bounds that memory.
PUBLISH_AFTER_COMMITS = 20
# ...except near the end of a day whose size the job knows: the last publish may fold up to this
# many commits rather than publish at N and again moments later (see Day._end_is_near).
PUBLISH_LAST_COMMITS = PUBLISH_AFTER_COMMITS * 3 // 2


@dataclass
class RunContext:
    """What every day of one run shares: settings, the destination, the PNCP client, the run's
    summary, where events go, and the stop a signal sets."""

    settings: Settings
    store: ObjectStore
    client: PncpClient
    run: RunSummary
    on_event: EventSink
    stop: anyio.Event | None = None

    def stopping(self) -> bool:
        """A signal asked the run to wind down: start no new day or step."""
        return self.stop is not None and self.stop.is_set()

    def event(self, kind: EventKind, dataset: Dataset, day: date, message: str = "", **data: Any) -> None:
        self.on_event(Event(kind, dataset.name, day, message, data))


@dataclass
class _Batch:
    """What the next checkpoint commits: rows, and meta that may come without a row."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    size: int = 0  # results taken; a result with meta only (a compra found gone) counts too


class Day:
    """One dataset's day while the engine runs it: the job's handle for rows, meta and failures."""

    def __init__(self, ctx: RunContext, job: DayJob[Any], when: date, summary: DaySummary, lease: Lease) -> None:
        self.ctx = ctx
        self.job = job
        self.dataset = job.dataset
        self.date = when
        self.summary = summary
        self.lease = lease
        self.state = DayState(ctx.store, job.dataset, when)
        # Saved at the end of the day: empty when the run redoes all the day's work; the earlier
        # runs' failures when it redoes only part of it (``DayJob.keeps_failures``).
        self.failures: dict[str, Any] = {}
        self._batch = _Batch()
        self._commits_since_publish = 0
        self._last_publish = time.monotonic()
        self._commits: TaskGroup | None = None  # set inside committing()
        self._commit_slots = anyio.Semaphore(COMMITS_IN_FLIGHT)

    def event(self, kind: EventKind, message: str = "", **data: Any) -> None:
        self.ctx.event(kind, self.dataset, self.date, message, **data)

    def count(self, **increments: int) -> None:
        """Add to the day's summary counters (``listed=1``, ``pages=1``, ``gone=1`` ...)."""
        for name, n in increments.items():
            setattr(self.summary, name, getattr(self.summary, name) + n)

    def mark(self, status: str) -> None:
        """The day's outcome when it is not plain "ok" (``skipped``: nothing to do)."""
        self.summary.status = status  # type: ignore[assignment]

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    async def committed(self) -> Manifest:
        """What is done for this dataset's day: published or committed (after recovery, the same)."""
        return await self.state.committed()

    async def read(self, dataset: Dataset, columns: list[str] | None = None) -> pa.Table | None:
        """Another dataset's published file of this day, as readers see it (None if none yet)."""
        return await read_published(self.ctx.store, dataset, self.date, columns)

    async def last_run(self, dataset: Dataset) -> dict[str, Any] | None:
        """How the last run of another dataset's day ended (``last_run.json``), if one did."""
        return await DayState(self.ctx.store, dataset, self.date).last_run()

    def resolved(self, key: str) -> None:
        """Work that failed in an earlier run has now been done (or found gone): not a failure any more."""
        self.failures.pop(key, None)

    def add(self, row: dict[str, Any] | None, meta: dict[str, Any] | None = None) -> None:
        """Take one result into the next checkpoint: a bronze row (lineage added here), or meta only."""
        if row is not None:
            row["_ingested_at"] = utcnow()
            row["_run_id"] = self.ctx.run.run_id
            self._batch.rows.append(row)
        if meta:
            self._batch.meta = accumulate(self._batch.meta, meta)
        self._batch.size += 1

    def fail(self, key: str, reason: str, what: str | None = None, code: str | None = None) -> None:
        """One piece of work failed: reported (the run exits 1) and saved under ``key`` for the next run."""
        self.ctx.run.failures.append(Failure(self.date.isoformat(), what or key, reason, code))
        self.failures[key] = {"reason": reason, "run_id": self.ctx.run.run_id, "at": utcnow().isoformat()}
        self.summary.failed += 1

    async def took(self) -> None:
        """After each result: checkpoint a full batch, publish when due."""
        if self._batch.size >= self.ctx.settings.checkpoint_every:
            await self.checkpoint()
        if self.job.publish_while_running and self._publish_due():
            await self.publish()

    @asynccontextmanager
    async def committing(self) -> AsyncIterator[None]:
        """While inside, :meth:`checkpoint` commits in the background (up to ``COMMITS_IN_FLIGHT``
        at once) and the writer goes on taking results; leaving waits for every commit, and a
        commit that fails fails the day as it did in the writer."""
        async with anyio.create_task_group() as tg:
            self._commits = tg
            try:
                yield
            finally:
                self._commits = None

    async def checkpoint(self) -> None:
        """Stage and commit the batch: from here on its results are done.

        Inside :meth:`committing` this returns once the commit has started (the next batch fills
        meanwhile); the batch's results are done when its ``checkpoint`` event says so."""
        batch, self._batch = self._batch, _Batch()
        if not batch.size:
            return
        self.summary.checkpoints += 1
        number = self.summary.checkpoints
        name = f"{utcnow():%Y%m%dT%H%M%S%f}-{self.ctx.run.run_id}-{number:05d}"
        if self._commits is None:
            await self._commit(name, number, batch)
            return
        await self._commit_slots.acquire()

        async def commit() -> None:
            try:
                await self._commit(name, number, batch)
            finally:
                self._commit_slots.release()

        self._commits.start_soon(commit)

    async def _commit(self, name: str, number: int, batch: _Batch) -> None:
        with tempfile.TemporaryDirectory(prefix="pncp-part-") as tmp:
            part = Path(tmp) / "part.parquet" if batch.rows else None
            if part is not None:
                rejected = await anyio.to_thread.run_sync(write_encodable, batch.rows, self.dataset.schema, part)
                if rejected:
                    self._drop(batch, rejected)
                    part = part if batch.rows else None
            keys = [self.dataset.row_key(row) for row in batch.rows]
            await self.lease.ensure()
            await self.state.commit(name, part, keys, batch.meta)
        self.job.committed(batch.rows, self.summary)
        self._commits_since_publish += 1
        self.event(
            "checkpoint",
            f"committed {self.job.describe(len(batch.rows))} (checkpoint {number})",
            rows=len(batch.rows),
            name=name,
        )

    def _drop(self, batch: _Batch, rejected: list[tuple[int, str]]) -> None:
        """Rows Arrow could not write are failed records, not done: out of the rows and the meta."""
        gone = {index for index, _ in rejected}
        keys = {self.dataset.row_key(batch.rows[index]) for index in gone}
        for index, reason in rejected:
            self.fail(self.dataset.row_key(batch.rows[index]), reason)
        batch.rows = [row for index, row in enumerate(batch.rows) if index not in gone]
        # Commit meta is keyed by the same ids (lists of ids done, maps of id → value).
        batch.meta = {
            name: [k for k in value if k not in keys]
            if isinstance(value, list)
            else {k: v for k, v in value.items() if k not in keys}
            if isinstance(value, dict)
            else value
            for name, value in batch.meta.items()
        }

    def _publish_due(self) -> bool:
        if not self._commits_since_publish:
            return False
        if time.monotonic() - self._last_publish >= self.ctx.settings.publish_every:
            return True
        return self._commits_since_publish >= PUBLISH_AFTER_COMMITS and not self._end_is_near()

    def _end_is_near(self) -> bool:
        """Whether the day's last publish will come before the pending commits reach
        ``PUBLISH_LAST_COMMITS``: then an intermediate publish would only make the last one read
        and write the whole published file again."""
        remaining = self.job.remaining()
        if remaining is None:
            return False
        every = self.ctx.settings.checkpoint_every
        commits_to_come = -(-(self._batch.size + remaining) // every)  # ceil
        return self._commits_since_publish + commits_to_come <= PUBLISH_LAST_COMMITS

    async def publish(self) -> None:
        self._commits_since_publish, self._last_publish = 0, time.monotonic()
        if await self.state.publish(self.ctx.run.run_id):
            manifest = await self.state.manifest()
            self.summary.published_rows = manifest.rows
            self.event(
                "publish",
                f"published {manifest.rows} rows to {self.dataset.published_key(self.date)}",
                rows=manifest.rows,
            )


async def read_published(
    store: ObjectStore, dataset: Dataset, day: date, columns: list[str] | None = None
) -> pa.Table | None:
    """A partition's published file as a table (None if the day has none yet): what readers see."""
    key = dataset.published_key(day)
    with tempfile.TemporaryDirectory(prefix="pncp-read-") as tmp:
        path = store.local_path(key)
        if path is None or not path.exists():
            path = Path(tmp) / "published.parquet"
            if not await store.get_file(key, path):
                return None
        return await anyio.to_thread.run_sync(lambda: pq.read_table(path, columns=columns))


class DayJob(Generic[T]):
    """What one dataset does with one day; the engine does the rest (see the module docstring).

    ``plan`` runs under the lease after recovery; ``fetch`` runs concurrently with the writer and
    hands results to ``send``; ``take`` runs in the writer, one result at a time.
    """

    dataset: Dataset
    buffer: int = 8  # results that may wait while the writer checkpoints or publishes
    publish_while_running: bool = True
    # A run that redoes only part of the day's work keeps the earlier runs' failures until it
    # redoes them (:meth:`Day.resolved`); one that redoes everything starts from none.
    keeps_failures: bool = False

    async def plan(self, day: Day) -> str | None:
        """Work out what is to do; return the day's start message, or None if there is nothing to run."""
        raise NotImplementedError

    async def fetch(self, send: Callable[[T], Awaitable[None]]) -> None:
        raise NotImplementedError

    def take(self, result: T, day: Day) -> None:
        raise NotImplementedError

    def remaining(self) -> int | None:
        """How many more results ``take`` will get this run, if the job knows (None: unknown)."""
        return None

    def describe(self, rows: int) -> str:
        """How a checkpoint of ``rows`` rows reads in the operator's output."""
        return f"{rows} rows"

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        """Count what a checkpoint committed into the day's summary (what a row is, the job knows)."""

    def closing(self, day: Day) -> str | None:
        """The day's end message (None: the day did nothing worth a line)."""
        raise NotImplementedError


async def run_day(ctx: RunContext, job: DayJob[T], day: date, summary: DaySummary) -> None:
    """Run one dataset's day under its lease, exactly once whatever crashes (see state.py)."""
    async with hold(ctx.store, job.dataset.name, day, ctx.run.run_id, ctx.settings.lease_ttl) as lease:
        today = Day(ctx, job, day, summary, lease)
        await recover(today.state, ctx.run.run_id, ctx.on_event)
        if job.keeps_failures:
            today.failures = await today.state.failures()
        message = await job.plan(today)
        if message is not None:
            today.event("day_start", message)
            send, receive = anyio.create_memory_object_stream[T](max_buffer_size=job.buffer)

            async def fetch_all() -> None:
                async with send:
                    await job.fetch(send.send)

            async with today.committing():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(cancel_on, ctx.stop, fetch_all)
                    async with receive:
                        async for result in receive:
                            job.take(result, today)
                            await today.took()
                await today.checkpoint()
            await lease.ensure()
            await today.publish()
            await today.state.save_failures(today.failures)
        if summary.failed:
            summary.status = "partial"
        closing = job.closing(today)
        if closing is not None:
            today.event("day_end", closing, summary=summary)


class RowsJob(DayJob[Row]):
    """Rows that come from elsewhere, into one dataset's day, each key once (a versions history
    keeps a current dataset's replaced rows this way)."""

    def __init__(self, dataset: Dataset, rows: Iterable[Row], what: str) -> None:
        self.dataset = dataset
        self.rows = list(rows)
        self.what = what
        self.todo: list[Row] = []

    async def plan(self, day: Day) -> str | None:
        known = (await day.committed()).keys
        self.todo = [r for r in self.rows if self.dataset.row_key(r) not in known]
        return f"{len(self.todo)} {self.what} to keep" if self.todo else None

    async def fetch(self, send: Callable[[Row], Awaitable[None]]) -> None:
        for row in self.todo:
            await send(row)

    def take(self, row: Row, day: Day) -> None:
        day.add(dict(row))

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        summary.versions += len(rows)

    def describe(self, rows: int) -> str:
        return f"{rows} {self.what}"

    def closing(self, day: Day) -> str | None:
        return f"kept {day.summary.versions} {self.what}" if self.todo else None


async def commit_rows(ctx: RunContext, dataset: Dataset, day: date, rows: Iterable[Row], what: str) -> DaySummary:
    """Commit and publish ``rows`` into ``dataset``'s ``day`` under its lease (keys already there
    are not written again). Raises LeaseHeldError if another run holds that day."""
    summary = DaySummary(day=day.isoformat(), dataset=dataset.name)
    await run_day(ctx, RowsJob(dataset, rows, what), day, summary)
    return summary


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


DayBody = Callable[[date, DaySummary], Awaitable[bool]]


async def each_day(ctx: RunContext, days: list[date], dataset: Dataset, body: DayBody) -> None:
    """Run ``body`` for each day in order, with its own DaySummary; ``body`` returns False to stop.

    A day held by another run is reported and skipped (the run then exits 3); the others go on.
    Each day's outcome is recorded in its state (``last_run.json``) for ``status`` — except a
    day found "missing" (nothing to work on at this destination), which is left untouched.
    """
    run = ctx.run
    for day in days:
        if ctx.stopping():
            return
        day_summary = DaySummary(day=day.isoformat(), dataset=dataset.name)
        run.days.append(day_summary)
        started = time.monotonic()
        stats = run.client_stats
        before = (stats.requests, stats.retries) if stats is not None else (0, 0)
        outcome: str | None = None
        try:
            go_on = await body(day, day_summary)
            outcome = "interrupted" if ctx.stopping() else day_summary.status
            if not go_on:
                return
        except LeaseHeldError as held:
            day_summary.status = "held"
            day_summary.held_by = str(held)
            ctx.event("failure", dataset, day, str(held))
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
            if outcome is not None and day_summary.status != "missing":
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await DayState(ctx.store, dataset, day).record_run(
                        {
                            "run_id": run.run_id,
                            "command": run.command,
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
