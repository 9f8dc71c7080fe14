"""``contratacoes``: list every modalidade's pages for each day and commit the new contratações.

Per day, under the day's lease: clean a crashed run's debris and publish what it had
committed, read which contratações are done, fetch all pages concurrently (within the
consulta family's limits), checkpoint new records every ``checkpoint_every``, publish
at least every ``publish_every`` seconds and at the end.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import ObjectSendStream

from ..config import Settings
from ..dates import utcnow
from ..errors import ApiError, UsageError
from ..pncp import PncpClient
from ..records import Contratacao, bronze_row
from ..records.schema import CONTRATACOES
from ..state import DayState, Lease, hold
from ..storage import ObjectStore
from ..writer import write_part
from ._run import DaySummary, Event, EventSink, Failure, RunSummary, cancel_on, each_day, recover


@dataclass
class _Day:
    """Everything one day's ingestion shares between its fetchers and its writer."""

    day: date
    state: DayState
    summary: DaySummary
    known: set[str]
    on_event: EventSink


async def resolve_modalidades(client: PncpClient, requested: list[int] | None) -> list[int]:
    """The modalidades to list: all the API serves, or the requested ones if the API knows them."""
    served = await client.modalidades()
    if not requested:
        return served
    unknown = sorted(set(requested) - set(served))
    if unknown:
        raise UsageError(
            f"--modalidade {', '.join(map(str, unknown))} is not a modalidade PNCP serves: use one of {', '.join(map(str, served))}"
        )
    return sorted(set(requested))


async def ingest_contratacoes(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    days: list[date],
    summary: RunSummary,
    *,
    modalidades: list[int] | None = None,
    on_event: EventSink,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """Ingest the contratações of ``days`` into ``store``; fills and returns ``summary``.

    When ``stop`` is set, listing stops, what was listed is committed and published, and the
    remaining days are left for the next run."""
    codes = await resolve_modalidades(client, modalidades)

    async def day_body(day: date, day_summary: DaySummary) -> bool:
        await _ingest_day(settings, store, client, day, codes, summary, day_summary, on_event, stop)
        return True

    await each_day(days, CONTRATACOES, store, summary, on_event, day_body, stop)
    return summary


async def _ingest_day(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    day: date,
    codes: list[int],
    run: RunSummary,
    summary: DaySummary,
    on_event: EventSink,
    stop: anyio.Event | None = None,
) -> None:
    state = DayState(store, CONTRATACOES, day)
    async with hold(store, CONTRATACOES.name, day, run.run_id, settings.lease_ttl) as lease:
        on_event(Event("day_start", CONTRATACOES.name, day, f"listing {len(codes)} modalidades"))
        await recover(state, run.run_id, on_event)
        ctx = _Day(day, state, summary, await state.committed_keys(), on_event)
        send, receive = anyio.create_memory_object_stream[tuple[int, int, list[dict[str, Any]]]](max_buffer_size=8)

        async def fetch_all() -> None:
            async with send, anyio.create_task_group() as tg:
                for code in codes:
                    tg.start_soon(_fetch_modalidade, client, ctx, code, send, run)

        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_on, stop, fetch_all)
            batch: list[dict[str, Any]] = []
            last_publish = time.monotonic()
            async with receive:
                async for _code, _pagina, records in receive:
                    summary.pages += 1
                    for raw in records:
                        key = raw.get("numeroControlePNCP")
                        summary.listed += 1
                        if not isinstance(key, str) or not key:
                            run.failures.append(
                                Failure(
                                    day.isoformat(), "record", f"a record without numeroControlePNCP: {str(raw)[:120]}"
                                )
                            )
                            summary.failed += 1
                            continue
                        if key in ctx.known:
                            continue
                        ctx.known.add(key)
                        batch.append(raw)
                        if len(batch) >= settings.checkpoint_every:
                            await _checkpoint(ctx, batch, run, lease, on_event)
                            batch = []
                    if time.monotonic() - last_publish >= settings.publish_every:
                        await _publish(ctx, run, on_event)
                        last_publish = time.monotonic()
            if batch:
                await _checkpoint(ctx, batch, run, lease, on_event)
        await lease.ensure()
        await _publish(ctx, run, on_event)
        # Each run lists every page again, so its failures replace the previous run's.
        await state.save_failures(
            {f.what: {"reason": f.reason, "run_id": run.run_id} for f in run.failures if f.day == day.isoformat()}
        )
        if summary.failed:
            summary.status = "partial"
        on_event(
            Event(
                "day_end",
                CONTRATACOES.name,
                day,
                f"{summary.contratacoes} new of {summary.listed} listed, {summary.failed} failed",
                {"summary": summary},
            )
        )


async def _fetch_modalidade(
    client: PncpClient,
    ctx: _Day,
    code: int,
    send: ObjectSendStream[tuple[int, int, list[dict[str, Any]]]],
    run: RunSummary,
) -> None:
    """Page 1 tells how many pages there are; the rest are fetched concurrently."""

    async def fetch(pagina: int) -> int:
        try:
            page = await client.contratacoes_page(ctx.day, code, pagina)
        except ApiError as exc:
            # The page is not done: this run reports it and exits 1, the next run lists it again.
            run.failures.append(Failure(ctx.day.isoformat(), f"modalidade {code} page {pagina}", str(exc)))
            ctx.summary.failed += 1
            return 0
        await send.send((code, pagina, page.records))
        ctx.on_event(Event("progress", CONTRATACOES.name, ctx.day, "", {"pages_done": 1}))
        return page.total_paginas

    ctx.on_event(Event("progress", CONTRATACOES.name, ctx.day, "", {"pages_planned": 1}))
    total = await fetch(1)
    if total > 1:
        ctx.on_event(Event("progress", CONTRATACOES.name, ctx.day, "", {"pages_planned": total - 1}))
    async with anyio.create_task_group() as tg:
        for pagina in range(2, total + 1):
            tg.start_soon(fetch, pagina)


async def _checkpoint(
    ctx: _Day, raws: list[dict[str, Any]], run: RunSummary, lease: Lease, on_event: EventSink
) -> None:
    """Stage and commit one part: from here on these contratações are done."""
    ingested_at = utcnow()
    rows = []
    for raw in raws:
        try:
            row = bronze_row(Contratacao, raw)
        except ValueError as exc:
            run.failures.append(Failure(ctx.day.isoformat(), str(raw.get("numeroControlePNCP")), str(exc)))
            ctx.summary.failed += 1
            ctx.known.discard(raw.get("numeroControlePNCP", ""))
            continue
        row["_ingested_at"] = ingested_at
        row["_run_id"] = run.run_id
        rows.append(row)
    if not rows:
        return
    ctx.summary.checkpoints += 1
    name = f"{ingested_at:%Y%m%dT%H%M%S%f}-{run.run_id}-{ctx.summary.checkpoints:05d}"
    with tempfile.TemporaryDirectory(prefix="pncp-part-") as tmp:
        path = Path(tmp) / "part.parquet"
        await anyio.to_thread.run_sync(write_part, rows, CONTRATACOES.schema, path)
        await lease.ensure()
        await ctx.state.commit(name, path, [r["numeroControlePNCP"] for r in rows])
    ctx.summary.contratacoes += len(rows)
    on_event(
        Event(
            "checkpoint",
            CONTRATACOES.name,
            ctx.day,
            f"committed {len(rows)} contratações (checkpoint {ctx.summary.checkpoints})",
            {"rows": len(rows), "name": name},
        )
    )


async def _publish(ctx: _Day, run: RunSummary, on_event: EventSink) -> None:
    folded = await ctx.state.publish(run.run_id)
    if folded:
        manifest = await ctx.state.manifest()
        ctx.summary.published_rows = manifest.rows
        on_event(
            Event(
                "publish",
                CONTRATACOES.name,
                ctx.day,
                f"published {manifest.rows} rows to {CONTRATACOES.published_key(ctx.day)}",
                {"rows": manifest.rows},
            )
        )
