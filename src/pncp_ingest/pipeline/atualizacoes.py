"""``atualizacoes``: change capture. Keep ``pncp`` current with PNCP and every version in history.

For each update day U, three steps, each a :class:`~._day.DayJob` under its own lease:

1. **History** (``pncp_atualizacoes`` of U): list ``/v1/contratacoes/atualizacao`` for U with the
   listing machinery of ``contratacoes`` (every modalidade, every page, completeness passes) and
   commit each version not yet committed for U: one row per (contratação, version).
2. **Current state** (``pncp`` of each publication day P): the newest version of each listed
   contratação, read back from U's published history (so a rerun after a crash applies what
   an earlier run listed), goes to P when it is newer than what P holds (the versions are in
   P's commit meta). A version it replaces that is not yet in history (a first version landed
   by ``contratacoes``) is first copied to history under its own update day.
3. **Details** (``pncp_details`` of P): the changed contratações whose details are older than
   their current version are fetched again, every kind, and replace their row.

Each publication day's leases are held only while that day changes. A day held by another
run is retried after the others, then left pending: a failure named in the summary (exit 1)
and recorded in U's failures, so the next run over U applies it.

Why read the history back instead of keeping the listing in memory: U's history is exactly
what every run over U has listed, so the apply step is the same after a crash, a rerun, or a
run whose listing failed half-way; memory is one update day's versions.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.compute as pc

from ..config import Settings
from ..dates import utcnow
from ..errors import LeaseHeldError
from ..pncp import PncpClient
from ..records import Contratacao, bronze_row
from ..records.schema import ATUALIZACOES, CONTRATACOES, DETAILS, Row, version, version_text
from ..state import DayState, hold
from ..storage import ObjectStore
from ..writer import write_part
from ._day import Day, DayJob, RunContext, read_published, run_day
from ._run import DaySummary, Event, EventSink, Failure, RunSummary, each_day, recover
from .contratacoes import ListingJob, resolve_modalidades
from .details import DetailsDay, compra_of

# A publication day held by another run is tried again after the day's others, this many
# times, waiting a little longer each time, before it is left for the next run.
HELD_RETRY_WAITS_S = (1.0, 3.0, 6.0)


def _newer(candidate: str, than: str | None) -> bool:
    """Version texts compared as times ("" = no version, older than any)."""
    if than is None:
        return True
    if not candidate:
        return False
    return not than or datetime.fromisoformat(candidate) > datetime.fromisoformat(than)


class HistoryDay(ListingJob):
    """Update day U's listing: every version not yet in U's history."""

    dataset = ATUALIZACOES

    endpoint = " of /atualizacao"

    def __init__(self, client: PncpClient, codes: list[int]) -> None:
        super().__init__(client.atualizacoes_page, codes)

    def take(self, raw: dict[str, Any], day: Day) -> None:
        cid = self.listed_id(raw, day)
        if cid is None:
            return
        try:
            row = bronze_row(Contratacao, raw)
        except ValueError as exc:
            day.fail(cid, str(exc))
            return
        key = self.dataset.row_key(row)
        if key in self.known:
            return
        self.known.add(key)
        day.add(row)

    def describe(self, rows: int) -> str:
        return f"{rows} versions"

    def closing(self, day: Day) -> str:
        s = day.summary
        return f"{s.contratacoes} new versions of {s.listed} listed, {s.failed} failed"


async def copy_to_history(ctx: RunContext, rows: list[Row], fallback: date) -> int:
    """Put versions about to be replaced in ``pncp`` into history, each under its own update day.

    Each history day is changed under its lease (held only for this); a version already there is
    not written again. Raises LeaseHeldError if a history day is held: the caller retries later."""
    by_day: dict[date, list[Row]] = defaultdict(list)
    for row in rows:
        found = version(row)
        by_day[found.date() if found is not None else fallback].append(row)
    copied = 0
    for when, day_rows in sorted(by_day.items()):
        state = DayState(ctx.store, ATUALIZACOES, when)
        # Published already: nothing to do. Committed by a run killed before it published: the
        # publish below (recovery) makes it visible before pncp replaces the version.
        if not {ATUALIZACOES.row_key(r) for r in day_rows} - (await state.manifest()).keys:
            continue
        async with hold(ctx.store, ATUALIZACOES.name, when, ctx.run.run_id, ctx.settings.lease_ttl) as lease:
            await recover(state, ctx.run.run_id, ctx.on_event)
            known = await state.committed_keys()
            todo = [r for r in day_rows if ATUALIZACOES.row_key(r) not in known]
            if not todo:
                continue
            name = f"{utcnow():%Y%m%dT%H%M%S%f}-{ctx.run.run_id}-replaced"
            with tempfile.TemporaryDirectory(prefix="pncp-part-") as tmp:
                part = Path(tmp) / "part.parquet"
                await anyio.to_thread.run_sync(write_part, todo, ATUALIZACOES.schema, part)
                await lease.ensure()
                await state.commit(name, part, [ATUALIZACOES.row_key(r) for r in todo])
            # Published before the newer version replaces it in pncp: readers never miss a version.
            await state.publish(ctx.run.run_id)
            copied += len(todo)
            ctx.on_event(
                Event("checkpoint", ATUALIZACOES.name, when, f"kept {len(todo)} replaced versions of contratações")
            )
    return copied


class CurrentDay(DayJob[Row]):
    """Publication day P of ``pncp``: the listed versions newer than what P holds."""

    dataset = CONTRATACOES

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows
        self.todo: list[Row] = []
        self.replaced = 0
        self.current: dict[str, str] = {}  # the version P holds of each listed contratação, once done

    async def plan(self, day: Day) -> str | None:
        # After recovery everything committed for P is published: its file and meta agree.
        committed = await day.state.committed()
        versions: dict[str, str] = dict(committed.meta.get("versions", {}))
        if committed.keys - versions.keys():  # landed before versions were recorded: read them
            table = await read_published(
                day.state.store,
                CONTRATACOES,
                day.date,
                ["numeroControlePNCP", "dataAtualizacaoGlobal", "dataAtualizacao"],
            )
            for row in table.to_pylist() if table is not None else []:
                versions.setdefault(row["numeroControlePNCP"], version_text(row))
        self.todo = []
        for row in self.rows:
            cid = row["numeroControlePNCP"]
            held = versions.get(cid) if cid in committed.keys else None
            new = version_text(row)
            if _newer(new, held):
                self.todo.append(row)
                self.current[cid] = new
            else:
                self.current[cid] = held or new
        replaced = [r["numeroControlePNCP"] for r in self.todo if r["numeroControlePNCP"] in committed.keys]
        if replaced:
            table = await read_published(day.state.store, CONTRATACOES, day.date)
            assert table is not None  # keys are committed and recovery published them
            old = table.filter(pc.is_in(table.column("numeroControlePNCP"), value_set=pa.array(replaced))).to_pylist()
            self.replaced = await copy_to_history(day.ctx, old, day.date)
        if not self.todo:
            return None
        return f"{len(self.todo)} newer versions of {len(self.rows)} listed ({len(replaced)} replace older ones)"

    async def fetch(self, send: Callable[[Row], Awaitable[None]]) -> None:
        for row in self.todo:
            await send(row)

    def take(self, row: Row, day: Day) -> None:
        day.summary.listed += 1
        day.add(dict(row), {"versions": {row["numeroControlePNCP"]: version_text(row)}})

    def describe(self, rows: int) -> str:
        return f"{rows} newer versions"

    def closing(self, day: Day) -> str:
        return f"{day.summary.contratacoes} newer versions applied, {self.replaced} replaced versions kept in history"


@dataclass
class _Publication:
    """One publication day's share of an update day: its newest listed versions."""

    day: date
    rows: list[Row]
    held_by: str = ""


async def _apply(ctx: RunContext, client: PncpClient, pub: _Publication, details: bool) -> None:
    """Current state, then details, of one publication day (each under its own lease)."""
    summary = DaySummary(day=pub.day.isoformat(), dataset=CONTRATACOES.name)
    job = CurrentDay(pub.rows)
    await run_day(ctx, job, pub.day, summary)
    if summary.checkpoints or summary.failed:  # a day retried after a held lease shows once
        ctx.run.days.append(summary)
    if not details:
        return
    state = DayState(ctx.store, DETAILS, pub.day)
    done = await state.committed()
    fetched_versions: dict[str, str] = done.meta.get("versions", {})
    gone = done.meta.get("gone", {})
    compras = []
    for row in pub.rows:
        cid = row["numeroControlePNCP"]
        if cid in gone or fetched_versions.get(cid) == job.current[cid]:
            continue
        compra = compra_of(row)
        if compra is not None:
            compras.append(replace(compra, version=job.current[cid]))
    # A killed run's committed but unpublished details are published by the day's recovery, and
    # its leftovers removed: parts whose records a publish had already deleted when it was killed.
    if compras or await state.commits() or await state.staged_parts():
        detail_summary = DaySummary(day=pub.day.isoformat(), dataset=DETAILS.name)
        await run_day(ctx, DetailsDay(client, ("itens", "arquivos"), True, None, compras), pub.day, detail_summary)
        if compras:
            ctx.run.days.append(detail_summary)


def newest_by_publication(table: pa.Table, on_bad: Callable[[str], None]) -> dict[date, list[Row]]:
    """U's history rows → the newest version of each contratação, grouped by publication day."""
    newest: dict[str, Row] = {}
    for row in table.to_pylist():
        cid = row["numeroControlePNCP"]
        older = newest.get(cid)
        if older is None or _newer(version_text(row), version_text(older)):
            newest[cid] = row
    by_day: dict[date, list[Row]] = defaultdict(list)
    for cid, row in sorted(newest.items()):
        published = row.get("dataPublicacaoPncp")
        if not isinstance(published, datetime):
            on_bad(cid)
            continue
        by_day[published.date()].append(row)
    return dict(sorted(by_day.items()))


async def ingest_atualizacoes(
    settings: Settings,
    store: ObjectStore,
    client: PncpClient,
    days: list[date],
    summary: RunSummary,
    *,
    modalidades: list[int] | None = None,
    details: bool = True,
    on_event: EventSink,
    stop: anyio.Event | None = None,
) -> RunSummary:
    """Capture the changes listed on each update day of ``days``; fills and returns ``summary``."""
    codes = await resolve_modalidades(client, modalidades)
    ctx = RunContext(settings, store, summary, on_event, stop)

    def stopping() -> bool:
        return stop is not None and stop.is_set()

    async def day_body(update_day: date, day_summary: DaySummary) -> bool:
        await run_day(ctx, HistoryDay(client, codes), update_day, day_summary)
        if stopping():
            return False
        history = await read_published(store, ATUALIZACOES, update_day)
        if history is None:
            return True

        def no_publication_day(cid: str) -> None:
            summary.failures.append(Failure(update_day.isoformat(), cid, "no dataPublicacaoPncp: not applied"))
            day_summary.failed += 1

        pending = [_Publication(p, rows) for p, rows in newest_by_publication(history, no_publication_day).items()]
        for wait in (0.0, *HELD_RETRY_WAITS_S):
            if not pending or stopping():
                break
            if wait:
                on_event(
                    Event("notice", ATUALIZACOES.name, update_day, f"{len(pending)} held days: retrying in {wait:g} s")
                )
                await anyio.sleep(wait)  # waiting for another run to release a day, not for our own work
            held = []
            for pub in pending:
                if stopping():
                    held.append(pub)
                    continue
                try:
                    await _apply(ctx, client, pub, details)
                except LeaseHeldError as exc:
                    pub.held_by = str(exc)
                    held.append(pub)
            pending = held
        # Recorded with the update day's listing failures (just saved by its run): the next run
        # over this update day applies them, and ``status`` shows them meanwhile.
        state = DayState(store, ATUALIZACOES, update_day)
        failures = await state.failures()
        for pub in pending:
            reason = (
                f"held by another run ({pub.held_by}); left for the next run over {update_day}"
                if pub.held_by
                else f"not applied before the run stopped; left for the next run over {update_day}"
            )
            what = f"publication day {pub.day}"
            summary.failures.append(Failure(update_day.isoformat(), what, reason))
            failures[what] = {"reason": reason, "run_id": summary.run_id}
            day_summary.failed += 1
        if pending:
            await state.save_failures(failures)
        if day_summary.failed:
            day_summary.status = "partial"
        return not stopping()

    await each_day(days, ATUALIZACOES, store, summary, on_event, day_body, stop)
    return summary
