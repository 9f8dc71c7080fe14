"""``backfill``: each day of a range in order, contratações then details, resumable.

A day whose state says it is complete (listed cleanly, every contratação's details committed or
gone, nothing failed or held) is skipped without a single API request, so rerunning a long
backfill after an interruption goes straight to where it stopped.
"""

from __future__ import annotations

from datetime import date

import anyio

from ..config import Settings
from ..pncp import PncpClient
from ..records.schema import CONTRATACOES
from ..status import day_status
from ..storage import ObjectStore
from ._run import DaySummary, Event, EventSink, RunSummary
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
    return summary
