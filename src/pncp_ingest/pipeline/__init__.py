"""The async engine: run a command over days, return a summary. Importable as a library.

    from pncp_ingest import load_settings, run_contratacoes
    summary = anyio.run(run_contratacoes, load_settings(dest="./bronze"), [date(2025, 10, 22)])
"""

from __future__ import annotations

import time
from datetime import date

from ..config import Settings
from ..errors import PncpIngestError, collapse
from ..pncp import PncpClient
from ..storage import open_store
from ._run import DaySummary, Event, EventSink, Failure, RunSummary, ignore, new_run_id
from .contratacoes import ingest_contratacoes

__all__ = ["DaySummary", "Event", "EventSink", "Failure", "RunSummary", "run_contratacoes"]


async def run_contratacoes(
    settings: Settings,
    days: list[date],
    modalidades: list[int] | None = None,
    on_event: EventSink = ignore,
    run_id: str | None = None,
) -> RunSummary:
    """``pncp-ingest contratacoes`` as a function. Raises PncpIngestError for fatal errors,
    with the partial summary attached as ``err.summary``."""
    store = open_store(settings.dest, s3_endpoint=settings.s3_endpoint)
    summary = RunSummary("contratacoes", run_id or new_run_id(), [d.isoformat() for d in days], store.url)
    try:
        async with store:
            await store.check()
            async with PncpClient(settings) as client:
                try:
                    await ingest_contratacoes(settings, store, client, days, summary, modalidades=modalidades, on_event=on_event)
                finally:
                    summary.requests = client.stats.requests
                    summary.retries = client.stats.retries
                    summary.throttled = client.stats.throttled
    except BaseException as raised:
        exc = collapse(raised)
        if isinstance(exc, PncpIngestError):
            summary.error = str(exc)
            exc.summary = summary  # type: ignore[attr-defined]
        if exc is raised:
            raise
        raise exc from None
    finally:
        summary.duration_s = time.monotonic() - summary.started
    return summary
