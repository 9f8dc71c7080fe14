"""``backfill``: each day of a range in order, contratações then details, resumable.

A day whose state says it is complete (listed cleanly, every contratação's details committed or
gone, nothing failed or held) is skipped without a single API request, so rerunning a long
backfill after an interruption goes straight to where it stopped.

With ``atualizacoes``, the range's days are then captured as update days too (after the
listing, so what a day's updates replace is already there); an update day is final, and
skipped, once a run over it ended cleanly after the day was over in Brasília.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import anyio

from ..config import Settings
from ..dates import BRASILIA
from ..pncp import PncpClient
from ..records.schema import ATUALIZACOES, CONTRATACOES
from ..state import DayState
from ..status import day_status
from ..storage import ObjectStore
from ._run import DaySummary, Event, EventSink, RunSummary
from .atualizacoes import ingest_atualizacoes
from .contratacoes import ingest_contratacoes
from .details import ingest_details


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
    for day in days:
        if stop is not None and stop.is_set():
            break
        status = await day_status(store, day)
        if status.complete or (not details and status.listed):
            summary.days.append(DaySummary(day=day.isoformat(), dataset=CONTRATACOES.name, status="skipped"))
            on_event(Event("day_end", CONTRATACOES.name, day, "already complete: skipped"))
            continue
        await ingest_contratacoes(
            settings, store, client, [day], summary, modalidades=modalidades, on_event=on_event, stop=stop
        )
        if details and not (stop is not None and stop.is_set()):
            await ingest_details(settings, store, client, [day], summary, on_event=on_event, stop=stop)
    if atualizacoes:
        for day in days:
            if stop is not None and stop.is_set():
                break
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
    return summary


async def _captured(store: ObjectStore, day: date) -> bool:
    """A clean atualizacoes run over ``day`` ended after the day was over: nothing can move into it."""
    run = await DayState(store, ATUALIZACOES, day).last_run()
    if not run or run.get("outcome") != "ok" or not run.get("finished_at"):
        return False
    day_over = datetime.combine(day + timedelta(days=1), time(), tzinfo=BRASILIA)
    return datetime.fromisoformat(run["finished_at"]) >= day_over
