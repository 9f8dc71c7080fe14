"""``details``: itens and arquivos for every committed contratação of a day, exactly once.

Per day, under the ``pncp_details`` lease: clean a crashed run's debris and publish what it had
committed, read the day's published contratações, work out what is still to fetch per kind
(itens and arquivos are tracked separately), fetch it concurrently within the detail API's
limits, checkpoint every ``checkpoint_every`` contratações, publish every
``PUBLISH_AFTER_COMMITS`` commits or ``publish_every`` seconds, and at the end.

Details read only the *published* contratações file, which is replaced atomically, so a
``contratacoes`` run on the same day can run at the same time: details sees what it had
published when details started, and the next details run picks up the rest.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

import anyio
import pyarrow.parquet as pq
from anyio.abc import ObjectSendStream

from ..config import Settings
from ..dates import utcnow
from ..errors import ApiError, NotFoundError
from ..pncp import PncpClient
from ..records import DETAIL_KINDS
from ..records.schema import CONTRATACOES, DETAILS
from ..state import DayState, Lease, hold
from ..storage import ObjectStore
from ..writer import write_part
from ._run import DaySummary, Event, EventSink, Failure, RunSummary, cancel_on, each_day, recover

Kind = Literal["itens", "arquivos"]
# Publishing merges pending parts in memory: publishing every N commits bounds that memory.
PUBLISH_AFTER_COMMITS = 20
_ID = re.compile(r"^([0-9A-Z]{14})-1-(\d{1,6})/(\d{4})$")


@dataclass(frozen=True)
class Compra:
    """The address of a contratação in the detail API."""

    id: str
    cnpj: str
    ano: int
    sequencial: int


@dataclass
class Fetched:
    """What one contratação's detail requests gave: records per kind, failures, or gone."""

    compra: Compra
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    gone: str | None = None


async def committed_compras(store: ObjectStore, day: date) -> list[Compra] | None:
    """The day's published contratações, addressed by their own fields (the id as fallback).

    None if the day has no published contratações file yet."""
    key = CONTRATACOES.published_key(day)
    with tempfile.TemporaryDirectory(prefix="pncp-details-") as tmp:
        path = store.local_path(key)
        if path is None or not path.exists():
            path = Path(tmp) / "pncp.parquet"
            if not await store.get_file(key, path):
                return None
        table = await anyio.to_thread.run_sync(
            lambda: pq.read_table(
                path, columns=["numeroControlePNCP", "orgaoEntidade", "anoCompra", "sequencialCompra"]
            )
        )
    compras = []
    for row in table.to_pylist():
        cnpj = (row.get("orgaoEntidade") or {}).get("cnpj")
        ano, sequencial = row.get("anoCompra"), row.get("sequencialCompra")
        if not (cnpj and ano and sequencial):
            match = _ID.match(row["numeroControlePNCP"])
            if match is None:
                continue
            cnpj, sequencial, ano = match.group(1), int(match.group(2)), int(match.group(3))
        compras.append(Compra(row["numeroControlePNCP"], cnpj, int(ano), int(sequencial)))
    return compras


def plan(
    compras: list[Compra], done: dict[str, Any], kinds: tuple[Kind, ...], resume: bool
) -> list[tuple[Compra, tuple[Kind, ...]]]:
    """Which kinds each contratação still needs. Gone compras are not retried unless --no-resume."""
    if not resume:
        return [(c, kinds) for c in compras]
    gone = done.get("gone", {})
    finished = {kind: set(done.get(kind, [])) for kind in kinds}
    todo = []
    for compra in compras:
        if compra.id in gone:
            continue
        missing = tuple(k for k in kinds if compra.id not in finished[k])
        if missing:
            todo.append((compra, missing))
    return todo


async def fetch_details(client: PncpClient, compra: Compra, kinds: tuple[Kind, ...]) -> Fetched:
    fetched = Fetched(compra)
    # One kind after the other: the client's limiter, not this function, decides how many requests
    # fly (the caller runs enough of these at once), no task group per compra on the hot path, and
    # a compra found gone costs one request, not two.
    for kind in kinds:
        # Bronze rows straight from the response bytes: parsed and validated in one pass.
        fetch = client.itens_rows if kind == "itens" else client.arquivos_rows
        try:
            fetched.records[kind] = await fetch(compra.cnpj, compra.ano, compra.sequencial)
        except NotFoundError as exc:
            fetched.gone = str(exc)
            fetched.records.clear()
            break
        except ApiError as exc:
            fetched.failed[kind] = str(exc)
    return fetched


def details_row(fetched: Fetched, run_id: str, now: Any) -> dict[str, Any]:
    """One ``pncp_details`` row: a kind not fetched is null, fetched-and-empty is []."""
    compra = fetched.compra
    row: dict[str, Any] = {
        "numeroControlePNCP": compra.id,
        "cnpj": compra.cnpj,
        "anoCompra": compra.ano,
        "sequencialCompra": compra.sequencial,
        "_ingested_at": now,
        "_run_id": run_id,
    }
    metadata: dict[str, Any] = {"fetch_timestamp": now}
    for kind in DETAIL_KINDS:
        rows = fetched.records.get(kind)  # already bronze rows (the client's *_rows methods)
        row[kind] = rows
        metadata[f"total_{kind}"] = None if rows is None else len(rows)
    row["metadata"] = metadata
    return row


@dataclass
class _Batch:
    rows: list[dict[str, Any]] = field(default_factory=list)
    done: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in DETAIL_KINDS})
    gone: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows) + len(self.gone)


async def ingest_details(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    days: list[date],
    summary: RunSummary,
    *,
    resume: bool = True,
    batch_size: int | None = None,
    only: Kind | None = None,
    on_event: EventSink,
    stop: anyio.Event | None = None,
) -> RunSummary:
    kinds: tuple[Kind, ...] = (only,) if only else ("itens", "arquivos")
    budget = batch_size

    async def day_body(day: date, day_summary: DaySummary) -> bool:
        nonlocal budget
        async with hold(store, DETAILS.name, day, summary.run_id, settings.lease_ttl) as lease:
            taken = await _ingest_day(
                settings, store, client, day, kinds, resume, budget, lease, summary, day_summary, on_event, stop
            )
        if budget is not None:
            budget -= taken
        return budget is None or budget > 0

    await each_day(days, DETAILS, store, summary, on_event, day_body, stop)
    return summary


async def _ingest_day(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    day: date,
    kinds: tuple[Kind, ...],
    resume: bool,
    budget: int | None,
    lease: Lease,
    run: RunSummary,
    summary: DaySummary,
    on_event: EventSink,
    stop: anyio.Event | None = None,
) -> int:
    state = DayState(store, DETAILS, day)
    await recover(state, run.run_id, on_event)
    compras = await committed_compras(store, day)
    if compras is None:
        summary.status = "skipped"
        on_event(
            Event(
                "day_end",
                DETAILS.name,
                day,
                "no published contratações for this day: run `pncp-ingest contratacoes` first",
            )
        )
        return 0
    todo = plan(compras, (await state.committed()).meta, kinds, resume)
    summary.pending = len(todo)
    if budget is not None:
        todo = todo[:budget]
    on_event(
        Event(
            "day_start",
            DETAILS.name,
            day,
            f"{len(todo)} of {len(compras)} contratações to fetch ({', '.join(kinds)}{'' if resume else ', no resume'})",
        )
    )
    on_event(Event("progress", DETAILS.name, day, "", {"compras_planned": len(todo)}))
    failures = await state.failures()
    batch = _Batch()
    commits_since_publish = 0
    last_publish = time.monotonic()
    handled = 0

    async def checkpoint() -> None:
        nonlocal batch, commits_since_publish
        if not len(batch):
            return
        summary.checkpoints += 1
        now = utcnow()
        name = f"{now:%Y%m%dT%H%M%S%f}-{run.run_id}-{summary.checkpoints:05d}"
        keys = [r["numeroControlePNCP"] for r in batch.rows]
        with tempfile.TemporaryDirectory(prefix="pncp-part-") as tmp:
            part = Path(tmp) / "part.parquet" if batch.rows else None
            if part is not None:
                await anyio.to_thread.run_sync(write_part, batch.rows, DETAILS.schema, part)
            await lease.ensure()
            await state.commit(name, part, keys, {**batch.done, "gone": batch.gone})
        summary.contratacoes += len(batch.rows)
        summary.itens += sum(len(r["itens"] or []) for r in batch.rows)
        summary.arquivos += sum(len(r["arquivos"] or []) for r in batch.rows)
        on_event(
            Event(
                "checkpoint",
                DETAILS.name,
                day,
                f"committed details of {len(batch.rows)} contratações (checkpoint {summary.checkpoints})",
                {"rows": len(batch.rows), "name": name},
            )
        )
        batch = _Batch()
        commits_since_publish += 1

    # Room for a few rounds of results: the fetchers keep the API busy while a checkpoint or a
    # publish holds the loop below (a publish stalled every fetcher with one round of room).
    send, receive = anyio.create_memory_object_stream[Fetched](max_buffer_size=4 * settings.concurrency)
    work: Iterator[tuple[Compra, tuple[Kind, ...]]] = iter(todo)

    async def worker(out: ObjectSendStream[Fetched]) -> None:
        async with out:
            for compra, needed in work:  # one shared iterator: each contratação goes to one worker
                await out.send(await fetch_details(client, compra, needed))

    async def fetch_all() -> None:
        async with send, anyio.create_task_group() as tg:
            # fetch_details asks for one kind at a time: a worker per in-flight place (and two spare)
            # keeps every place of the detail family busy.
            for _ in range(min(len(todo), settings.concurrency + 2)):
                tg.start_soon(worker, send.clone())

    async with anyio.create_task_group() as tg:
        tg.start_soon(cancel_on, stop, fetch_all)
        async with receive:
            async for fetched in receive:
                on_event(Event("progress", DETAILS.name, day, "", {"compras_done": 1}))
                handled += 1
                cid = fetched.compra.id
                if fetched.gone:
                    batch.gone[cid] = fetched.gone
                    summary.gone += 1
                    failures.pop(cid, None)
                    on_event(
                        Event(
                            "failure",
                            DETAILS.name,
                            day,
                            f"{cid} is gone from PNCP ({fetched.gone}); recorded, not retried",
                        )
                    )
                else:
                    if fetched.failed:
                        summary.failed += 1
                        failures[cid] = {"kinds": fetched.failed, "run_id": run.run_id, "at": utcnow().isoformat()}
                        for kind, reason in fetched.failed.items():
                            run.failures.append(Failure(day.isoformat(), f"{cid} {kind}", reason))
                    else:
                        failures.pop(cid, None)
                    if fetched.records:
                        batch.rows.append(details_row(fetched, run.run_id, utcnow()))
                        for kind in fetched.records:
                            batch.done[kind].append(cid)
                if len(batch) >= settings.checkpoint_every:
                    await checkpoint()
                # --no-resume replaces the day in one publish at the end: no mixed intermediate states.
                due = (
                    commits_since_publish >= PUBLISH_AFTER_COMMITS
                    or time.monotonic() - last_publish >= settings.publish_every
                )
                if resume and due and commits_since_publish:
                    await _publish(state, run, summary, on_event)
                    commits_since_publish, last_publish = 0, time.monotonic()
    await checkpoint()
    await lease.ensure()
    await _publish(state, run, summary, on_event)
    await state.save_failures(failures)
    if summary.failed:
        summary.status = "partial"
    on_event(
        Event(
            "day_end",
            DETAILS.name,
            day,
            f"details of {summary.contratacoes} contratações ({summary.itens} itens, {summary.arquivos} arquivos), "
            f"{summary.failed} failed, {summary.gone} gone, {summary.pending - handled} left for later runs",
            {"summary": summary},
        )
    )
    return len(todo)


async def _publish(state: DayState, run: RunSummary, summary: DaySummary, on_event: EventSink) -> None:
    if await state.publish(run.run_id):
        manifest = await state.manifest()
        summary.published_rows = manifest.rows
        on_event(
            Event(
                "publish",
                DETAILS.name,
                state.day,
                f"published {manifest.rows} rows to {DETAILS.published_key(state.day)}",
                {"rows": manifest.rows},
            )
        )
