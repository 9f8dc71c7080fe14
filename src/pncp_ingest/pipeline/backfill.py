"""``backfill``: each day of a range in order, contratações then details, resumable.

A day whose state says it is complete (listed cleanly, every contratação's details committed or
gone, nothing failed or held) is skipped without a single API request, so rerunning a long
backfill after an interruption goes straight to where it stopped.

Several backfills may share one destination (workers on many hosts, overlapping ranges): a day
another run holds is not waited for on the spot but set aside, and the range goes on. After the
range, each day set aside is looked at again once its holder's lease is gone (the holder
finished, or died and its lease expired): done by the holder → skipped, else this run does what
is left. A day still held after ``lease_ttl`` stays held (exit 3), so a stuck holder cannot keep
a backfill waiting for ever.

With ``atualizacoes``, the range's days are then captured as update days too (after the
listing, so what a day's updates replace is already there); an update day is final, and
skipped, once a run over it ended cleanly after the day was over in Brasília.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta

import anyio

from ..config import Settings
from ..dates import BRASILIA
from ..pncp import PncpClient
from ..records.schema import ATUALIZACOES, CONTRATACOES
from ..state import DayState
from ..status import DayStatus, day_status
from ..storage import ObjectStore
from ._run import DaySummary, Event, EventSink, RunSummary
from .atualizacoes import ingest_atualizacoes
from .contratacoes import ingest_contratacoes
from .details import ingest_details

# How often a day set aside is looked at again (a handful of small state reads each time); days
# take minutes against PNCP, so a slower poll costs little and spares the bucket.
HELD_POLL_S = 2.0


def day_done(status: DayStatus, details: bool = True) -> bool:
    """Whether a backfill skips the day without a request: complete, or, for a run without details,
    listed and its listing not held. Airflow's tasks skip days by this rule too."""
    return status.complete or (not details and status.listed and CONTRATACOES.name not in status.held_by)


def _stopped(stop: anyio.Event | None) -> bool:
    return stop is not None and stop.is_set()


async def ingest_backfill(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    days: list[date],
    summary: RunSummary,
    *,
    details: bool = True,
    atualizacoes: bool = False,
    modalidades: list[int] | None = None,
    on_event: EventSink,
    stop: anyio.Event | None = None,
) -> RunSummary:
    def blocking(status: DayStatus) -> dict[str, str]:
        """The leases that keep this run off the day (a details run does not block --no-details)."""
        return status.held_by if details else {k: v for k, v in status.held_by.items() if k == CONTRATACOES.name}

    async def one_day(day: date, status: DayStatus) -> bool:
        """Run the day (or skip it when complete); False if another run holds part of it."""
        if day_done(status, details):
            summary.days.append(DaySummary(day=day.isoformat(), dataset=CONTRATACOES.name, status="skipped"))
            on_event(Event("day_end", CONTRATACOES.name, day, "already complete: skipped"))
            return True
        holders = _holders(blocking(status))
        if holders:
            # No request for a day someone is working on: its details would be fetched twice.
            summary.days.append(DaySummary(day.isoformat(), CONTRATACOES.name, status="held", held_by=holders))
            on_event(Event("day_end", CONTRATACOES.name, day, f"held by {holders}: coming back after the range"))
            return False
        first = len(summary.days)
        await ingest_contratacoes(
            settings, store, client, [day], summary, modalidades=modalidades, on_event=on_event, stop=stop
        )
        if any(d.status == "held" for d in summary.days[first:]):
            return False  # details of a listing another run is still writing would miss its end
        if details and not _stopped(stop):
            await ingest_details(settings, store, client, [day], summary, on_event=on_event, stop=stop)
        return not any(d.status == "held" for d in summary.days[first:])

    held: list[date] = []
    for day in days:
        if _stopped(stop):
            return summary
        if not await one_day(day, await day_status(store, day)):
            held.append(day)

    deadline = anyio.current_time() + settings.lease_ttl
    while held and not _stopped(stop):
        day = held.pop(0)
        status = await _wait_until_free(store, day, deadline, stop, blocking)
        if status is None:
            held.insert(0, day)
            break
        # This day's earlier "held" entries are superseded by what happens now.
        summary.days[:] = [d for d in summary.days if not (d.day == day.isoformat() and d.status == "held")]
        if not await one_day(day, status):
            held.append(day)
    if atualizacoes:
        await _capture_updates(settings, store, client, days, summary, details, modalidades, on_event, stop)
    return summary


async def _capture_updates(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    days: list[date],
    summary: RunSummary,
    details: bool,
    modalidades: list[int] | None,
    on_event: EventSink,
    stop: anyio.Event | None,
) -> None:
    """Each day of the range as an update day, unless a finished run already captured it."""
    for day in days:
        if _stopped(stop):
            return
        if await _captured(store, day):
            summary.days.append(DaySummary(day=day.isoformat(), dataset=ATUALIZACOES.name, status="skipped"))
            on_event(Event("day_end", ATUALIZACOES.name, day, "updates already captured: skipped"))
            continue
        await ingest_atualizacoes(
            settings,
            store,
            client,
            [day],
            summary,
            modalidades=modalidades,
            details=details,
            on_event=on_event,
            stop=stop,
        )


async def _captured(store: ObjectStore, day: date) -> bool:
    """A clean atualizacoes run over ``day`` ended after the day was over: nothing can move into it."""
    run = await DayState(store, ATUALIZACOES, day).last_run()
    if not run or run.get("outcome") != "ok" or not run.get("finished_at"):
        return False
    day_over = datetime.combine(day + timedelta(days=1), time(), tzinfo=BRASILIA)
    return datetime.fromisoformat(run["finished_at"]) >= day_over


def _holders(held_by: dict[str, str]) -> str:
    return "; ".join(f"{dataset}: {holder}" for dataset, holder in held_by.items())


async def _wait_until_free(
    store: ObjectStore,
    day: date,
    deadline: float,
    stop: anyio.Event | None,
    blocking: Callable[[DayStatus], dict[str, str]],
) -> DayStatus | None:
    """The day's status once no run holds it; None if the deadline or a stop comes first."""
    while True:
        status = await day_status(store, day)
        if not blocking(status):
            return status
        if anyio.current_time() >= deadline or _stopped(stop):
            return None
        with anyio.move_on_after(HELD_POLL_S):
            if stop is not None:
                await stop.wait()
            else:
                await anyio.sleep_forever()
