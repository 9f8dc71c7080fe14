"""The async engine: run a command over days, return a summary. Importable as a library.

import anyio
from datetime import date
from pncp_ingest import load_settings
from pncp_ingest.pipeline import run_atualizacoes, run_contratacoes, run_contratos, run_details, run_resultados

settings = load_settings(dest="./bronze")
summary = anyio.run(run_contratacoes, settings, [date(2025, 10, 22)])
summary = anyio.run(run_details, settings, [date(2025, 10, 22)])
summary = anyio.run(run_contratos, settings, [date(2025, 10, 22)])
summary = anyio.run(run_atualizacoes, settings, [date(2025, 10, 23)])   # update days
summary = anyio.run(run_resultados, settings, [date(2025, 10, 22)])     # publication days
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from urllib.parse import urlsplit

import anyio

from ..config import Settings
from ..errors import PncpIngestError, collapse
from ..pncp import PncpClient, RetryNotice, client_config
from ..records import DetailKind
from ..storage import open_store
from ._day import RunContext
from ._summary import (
    DaySummary,
    Event,
    EventSink,
    Failure,
    FamilySnapshot,
    RunSummary,
    StatsSnapshot,
    ignore,
    new_run_id,
)
from .atualizacoes import ingest_atualizacoes
from .backfill import contratacoes_done, day_done, ingest_backfill, updates_captured
from .details import ingest_details
from .listing import ATAS_LISTING, CONTRATACOES_LISTING, CONTRATOS_LISTING, LISTINGS, Listing, ingest_listing
from .resultados import ingest_resultados

__all__ = [
    "ATAS_LISTING",
    "CONTRATACOES_LISTING",
    "CONTRATOS_LISTING",
    "LISTINGS",
    "DaySummary",
    "Event",
    "EventSink",
    "Failure",
    "FamilySnapshot",
    "Listing",
    "RunSummary",
    "StatsSnapshot",
    "contratacoes_done",
    "day_done",
    "new_run_id",
    "run_atualizacoes",
    "run_backfill",
    "run_contratacoes",
    "run_contratos",
    "run_details",
    "run_resultados",
    "updates_captured",
]

Body = Callable[[RunContext, list[date]], Awaitable[None]]

STATS_EVERY = 0.25  # seconds between two ``stats`` events (a live display refreshes at about this pace)


def snapshot(client: PncpClient) -> StatsSnapshot:
    stats = client.stats
    return StatsSnapshot(
        requests=stats.requests,
        retries=stats.retries,
        throttled=stats.throttled,
        families={
            name: FamilySnapshot(client.in_flight(name), family.limit, family.ceiling, client.paused_for(name))
            for name, family in stats.families.items()
        },
    )


def _retry_event(command: str, day: date, notice: RetryNotice) -> Event:
    message = (
        f"PNCP {notice.family} API, {urlsplit(notice.url).path}: {notice.reason}; "
        f"retry {notice.failed_attempt} of {notice.attempts - 1} in {notice.wait_s:.1f}s"
    )
    return Event("retry", command, day, message, {"retry": notice})


async def _report_stats(client: PncpClient, command: str, day: date, on_event: EventSink) -> None:
    while True:
        on_event(Event("stats", command, day, "", {"stats": snapshot(client)}))
        await anyio.sleep(STATS_EVERY)


async def _run(
    command: str,
    settings: Settings,
    days: list[date],
    run_id: str | None,
    body: Body,
    on_event: EventSink = ignore,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """What every command shares: open and check the store, one client, the run's context, errors.

    Raises PncpIngestError for fatal errors, with the partial summary attached as ``err.summary``."""
    store = open_store(settings.dest, s3_endpoint=settings.s3_endpoint)
    summary = RunSummary(command, run_id or new_run_id(), [d.isoformat() for d in days], store.url)
    try:
        async with store:
            await store.check()
            config = client_config(settings, on_retry=lambda notice: on_event(_retry_event(command, days[0], notice)))
            async with PncpClient(config) as client:
                summary.client_stats = client.stats
                on_event(Event("run_start", command, days[0], ""))
                try:
                    async with anyio.create_task_group() as tg:
                        if on_event is not ignore:
                            tg.start_soon(_report_stats, client, command, days[0], on_event)
                        await body(RunContext(settings, store, client, summary, on_event, stop), days)
                        tg.cancel_scope.cancel()
                finally:
                    if on_event is not ignore:
                        on_event(Event("stats", command, days[0], "", {"stats": snapshot(client)}))
                    summary.requests = client.stats.requests
                    summary.retries = client.stats.retries
                    summary.throttled = client.stats.throttled
    except BaseException as raised:
        exc = collapse(raised)
        if isinstance(exc, PncpIngestError):
            summary.error = str(exc)
            summary.error_exit_code = exc.exit_code
            exc.summary = summary
        if exc is raised:
            raise
        raise exc from None
    finally:
        summary.duration_s = time.monotonic() - summary.started
    return summary


async def run_contratacoes(
    settings: Settings,
    days: list[date],
    modalidades: list[int] | None = None,
    on_event: EventSink = ignore,
    run_id: str | None = None,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """``pncp-ingest contratacoes`` as a function. Setting ``stop`` winds the run down cleanly."""
    body = partial(ingest_listing, listing=CONTRATACOES_LISTING, modalidades=modalidades)
    return await _run("contratacoes", settings, days, run_id, body, on_event, stop)


async def run_contratos(
    settings: Settings,
    days: list[date],
    on_event: EventSink = ignore,
    run_id: str | None = None,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """``pncp-ingest contratos`` as a function: every contrato (and empenho) published on ``days``."""
    body = partial(ingest_listing, listing=CONTRATOS_LISTING)
    return await _run("contratos", settings, days, run_id, body, on_event, stop)


async def run_details(
    settings: Settings,
    days: list[date],
    *,
    resume: bool = True,
    batch_size: int | None = None,
    only: DetailKind | None = None,
    on_event: EventSink = ignore,
    run_id: str | None = None,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """``pncp-ingest details`` as a function. Setting ``stop`` winds the run down cleanly."""
    body = partial(ingest_details, resume=resume, batch_size=batch_size, only=only)
    return await _run("details", settings, days, run_id, body, on_event, stop)


async def run_backfill(
    settings: Settings,
    days: list[date],
    *,
    details: bool = True,
    atualizacoes: bool = False,
    modalidades: list[int] | None = None,
    on_event: EventSink = ignore,
    run_id: str | None = None,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """``pncp-ingest backfill`` as a function: days in order, complete ones skipped."""
    body = partial(ingest_backfill, details=details, atualizacoes=atualizacoes, modalidades=modalidades)
    return await _run("backfill", settings, days, run_id, body, on_event, stop)


async def run_atualizacoes(
    settings: Settings,
    days: list[date],
    *,
    datasets: list[str] | None = None,
    modalidades: list[int] | None = None,
    details: bool = True,
    on_event: EventSink = ignore,
    run_id: str | None = None,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """``pncp-ingest atualizacoes`` as a function: ``days`` are update days; ``datasets`` names the
    listings to capture (``contratacoes``, ``contratos``, ``atas``; default all three)."""
    listings = [LISTINGS[name] for name in datasets or LISTINGS]
    body = partial(ingest_atualizacoes, listings=listings, modalidades=modalidades, details=details)
    return await _run("atualizacoes", settings, days, run_id, body, on_event, stop)


async def run_resultados(
    settings: Settings,
    days: list[date],
    *,
    force: bool = False,
    on_event: EventSink = ignore,
    run_id: str | None = None,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """``pncp-ingest resultados`` as a function: ``days`` are publication days; ``force`` polls
    every unsettled contratação, due or not."""
    body = partial(ingest_resultados, force=force)
    return await _run("resultados", settings, days, run_id, body, on_event, stop)
