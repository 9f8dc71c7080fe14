"""``backfill``: each day of a range in order, contratações then details, then contratos, resumable.

A day whose state says it is complete (``status.DayStatus.complete``: listed after the day had
ended in Brasília, every contratação's details committed or gone, its contratos listed after the
day too, nothing failed or held) is skipped without a single API request, so rerunning a long
backfill after an interruption goes straight to where it stopped. A day only partly complete
costs only its missing part (a day whose contratações are complete lists just its contratos).

Several backfills may share one destination (workers on many hosts, overlapping ranges): a day
another run holds is not waited for on the spot but set aside, and the range goes on. After the
range, each day set aside is looked at again once its holder's lease is gone (the holder
finished, or died and its lease expired): done by the holder → skipped, else this run does what
is left. A day still held after ``lease_ttl`` stays held (exit 3), so a stuck holder cannot keep
a backfill waiting for ever.

With ``atualizacoes``, the range's days are then captured as update days too, for contratações,
contratos and atas (after the listing, so what a day's updates replace is already there); an
update day of a dataset is final, and skipped, once a run over it ended cleanly and had started
after the day was over in Brasília.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import anyio

from ..records.schema import CONTRATACOES
from ..state import DayState
from ..status import DayStatus, day_status, final
from ..storage import ObjectStore
from ._day import RunContext
from ._summary import DaySummary
from .atualizacoes import ingest_atualizacoes
from .details import ingest_details
from .listing import CONTRATACOES_LISTING, CONTRATOS_LISTING, LISTINGS, Listing, ingest_listing

# How often a day set aside is looked at again (a handful of small state reads each time); days
# take minutes against PNCP, so a slower poll costs little and spares the bucket.
HELD_POLL_S = 2.0


def day_done(status: DayStatus, details: bool = True) -> bool:
    """Whether a backfill (with or without ``details``) has nothing left to do for the day: the
    rule ``backfill`` skips days by, for any scheduler that wants to skip them the same way."""
    return status.complete or (
        not details and status.listed and status.contratos_listed and not _blocking(status, details)
    )


def contratacoes_done(status: DayStatus, details: bool = True) -> bool:
    """The contratações part of :func:`day_done` (its contratos aside)."""
    return status.contratacoes_complete or (not details and status.listed and not _blocking(status, details))


def _blocking(status: DayStatus, details: bool) -> dict[str, str]:
    """The leases that keep a backfill off the day (a details run does not block --no-details)."""
    return status.held_by if details else {k: v for k, v in status.held_by.items() if k == CONTRATACOES.name}


async def ingest_backfill(
    ctx: RunContext,
    days: list[date],
    *,
    details: bool = True,
    atualizacoes: bool = False,
    modalidades: list[int] | None = None,
) -> None:
    """Each day of ``days`` in order (see the module docstring)."""
    store, summary = ctx.store, ctx.run

    def blocking(status: DayStatus) -> dict[str, str]:
        return _blocking(status, details)

    async def one_day(day: date, status: DayStatus) -> bool:
        """Run the day (or skip it when complete); False if another run holds part of it."""
        if day_done(status, details):
            summary.days.append(DaySummary(day=day.isoformat(), dataset=CONTRATACOES.name, status="skipped"))
            ctx.event("day_end", CONTRATACOES, day, "already complete: skipped")
            return True
        holders = _holders(blocking(status))
        if holders:
            # No request for a day someone is working on: its details would be fetched twice.
            summary.days.append(DaySummary(day.isoformat(), CONTRATACOES.name, status="held", held_by=holders))
            ctx.event("day_end", CONTRATACOES, day, f"held by {holders}: coming back after the range")
            return False
        first = len(summary.days)
        if not contratacoes_done(status, details):
            await ingest_listing(ctx, [day], listing=CONTRATACOES_LISTING, modalidades=modalidades)
            if any(d.status == "held" for d in summary.days[first:]):
                return False  # details of a listing another run is still writing would miss its end
            if details and not ctx.stopping():
                await ingest_details(ctx, [day])
        if not status.contratos_listed and not ctx.stopping():
            await ingest_listing(ctx, [day], listing=CONTRATOS_LISTING)
        return not any(d.status == "held" for d in summary.days[first:])

    held: list[date] = []
    for day in days:
        if ctx.stopping():
            return
        if not await one_day(day, await day_status(store, day)):
            held.append(day)

    deadline = anyio.current_time() + ctx.settings.lease_ttl
    while held and not ctx.stopping():
        day = held.pop(0)
        status = await _wait_until_free(ctx, day, deadline, blocking)
        if status is None:
            held.insert(0, day)
            break
        # This day's earlier "held" entries are superseded by what happens now.
        summary.days[:] = [d for d in summary.days if not (d.day == day.isoformat() and d.status == "held")]
        if not await one_day(day, status):
            held.append(day)
    if atualizacoes:
        await _capture_updates(ctx, days, details, modalidades)


async def updates_captured(store: ObjectStore, day: date, listing: Listing) -> bool:
    """Whether ``day``'s updates of ``listing`` were captured for good: a run over it ended cleanly
    and had started after the day was over, so nothing can move into it any more."""
    return final(await DayState(store, listing.history, day).last_run(), day)


async def _capture_updates(ctx: RunContext, days: list[date], details: bool, modalidades: list[int] | None) -> None:
    """Each day of the range as an update day of each dataset, unless a run already captured it
    for good (it started after the day was over: nothing can move into it any more)."""
    for day in days:
        for listing in LISTINGS.values():
            if ctx.stopping():
                return
            if await updates_captured(ctx.store, day, listing):
                ctx.run.days.append(DaySummary(day=day.isoformat(), dataset=listing.history.name, status="skipped"))
                ctx.event("day_end", listing.history, day, "updates already captured: skipped")
                continue
            await ingest_atualizacoes(ctx, [day], listings=[listing], modalidades=modalidades, details=details)


def _holders(held_by: dict[str, str]) -> str:
    return "; ".join(f"{dataset}: {holder}" for dataset, holder in held_by.items())


async def _wait_until_free(
    ctx: RunContext, day: date, deadline: float, blocking: Callable[[DayStatus], dict[str, str]]
) -> DayStatus | None:
    """The day's status once no run holds it; None if the deadline or a stop comes first."""
    while True:
        status = await day_status(ctx.store, day)
        if not blocking(status):
            return status
        if anyio.current_time() >= deadline or ctx.stopping():
            return None
        with anyio.move_on_after(HELD_POLL_S):
            if ctx.stop is not None:
                await ctx.stop.wait()
            else:
                await anyio.sleep_forever()
