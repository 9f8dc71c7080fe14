"""``atualizacoes``: change capture. Keep each listing's current dataset up to date with PNCP and
every version in its history, for contratações, contratos and atas alike (``listing.Listing``).

For each update day U and each listing, three steps, each a :class:`~._day.DayJob` under its
own lease:

1. **History** (e.g. ``pncp_atualizacoes`` of U): list the listing's ``/atualizacao`` for U with
   the listing machinery (every part, every page, completeness passes) and commit each version
   not yet committed for U: one row per (record, version).
2. **Current state** (e.g. ``pncp`` of each publication day P): the newest version of each
   listed record, read back from U's published history (so a rerun after a crash applies what
   an earlier run listed), goes to P when it is newer than what P holds (the versions are in
   P's commit meta). A version it replaces that is not yet in history (a first version landed
   by ``contratacoes`` or ``contratos``) is first committed to history under its own update
   day, through the same engine path; P's job then replaces only versions it knows are kept.
3. **Details** (contratações only, ``pncp_details`` of P): the changed contratações whose
   details are older than their current version are fetched again, every kind (resultados included).

Each publication day's leases are held only while that day changes. A day held by another
run is retried after the others, then left pending: a failure named in the summary (exit 1)
and recorded in U's failures, so the next run over U applies it.

Why read the history back instead of keeping the listing in memory: U's history is exactly
what every run over U has listed, so the apply step is the same after a crash, a rerun, or a
run whose listing failed half-way; memory is one update day's versions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import anyio
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import LeaseHeldError
from ..pncp import PncpClient
from ..records import DETAIL_KINDS
from ..records.schema import DETAILS, Row, version, version_text
from ..state import DayState
from ._day import Day, DayJob, RunContext, commit_rows, each_day, read_published, run_day
from ._summary import DaySummary, Failure
from .details import DetailsDay, compra_of
from .listing import CONTRATACOES_LISTING, Listing, ListingJob, Part, listing_parts

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

    def __init__(self, listing: Listing, client: PncpClient, parts: list[Part]) -> None:
        super().__init__(listing, client, listing.updates_path, parts)
        self.dataset = listing.history

    def take(self, raw: dict[str, Any], day: Day) -> None:
        found = self.parse(raw, day)
        if found is None:
            return
        row = found[1]
        key = self.dataset.row_key(row)
        if key in self.known:
            return
        self.known.add(key)
        day.add(row)

    def describe(self, rows: int) -> str:
        return f"{rows} versions"

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        summary.versions += len(rows)

    def closing(self, day: Day) -> str:
        s = day.summary
        return f"{s.versions} new versions of {s.listed} listed, {s.failed} failed"


Kept = set[tuple[str, str]]  # (record key, version text) of versions known to be in history


async def keep_replaced(ctx: RunContext, listing: Listing, day: date, rows: list[Row]) -> Kept:
    """Commit to history, each under its own update day, the versions publication day ``day``
    holds that ``rows`` (newer listed versions) will replace; return those versions.

    Runs before the day's own job, outside its lease: history is keyed by (contratação,
    version), so a version kept twice is written once, and one P gains meanwhile (a crashed
    run's commit that P's recovery publishes) is caught by :class:`CurrentDay`, which replaces
    only versions in ``kept``. Raises LeaseHeldError if a history day is held."""
    key = listing.key
    state = DayState(ctx.store, listing.current, day)
    held = await state.manifest()
    versions: dict[str, str] = held.meta.get("versions", {})
    listed = {r[key]: version_text(r) for r in rows}
    # Meta names each version (a contratação landed before versions were recorded has none: look).
    candidates = [
        cid for cid, new in listed.items() if cid in held.keys and (cid not in versions or _newer(new, versions[cid]))
    ]
    if not candidates:
        return set()
    table = await read_published(ctx.store, listing.current, day)
    if table is None:
        return set()
    table = table.filter(pc.is_in(table.column(key), value_set=pa.array(candidates)))
    old = [r for r in table.to_pylist() if _newer(listed[r[key]], version_text(r))]
    by_day: dict[date, list[Row]] = defaultdict(list)
    for row in old:
        found = version(row)
        by_day[found.date() if found is not None else day].append(row)
    for when, day_rows in sorted(by_day.items()):
        kept = await commit_rows(ctx, listing.history, when, day_rows, "replaced versions")
        if kept.checkpoints:
            ctx.run.days.append(kept)
    return {(r[key], version_text(r)) for r in old}


class CurrentDay(DayJob[Row]):
    """Publication day P of a current dataset: the listed versions newer than what P holds, each
    applied only once the version it replaces is in history (``kept``)."""

    def __init__(self, listing: Listing, rows: list[Row], kept: Kept) -> None:
        self.listing = listing
        self.dataset = listing.current
        self.rows = rows
        self.kept = kept
        self.todo: list[Row] = []
        self.unkept = 0  # newer versions not applied: what they replace is not yet in history
        self.current: dict[str, str] = {}  # the version P holds of each listed record, once done

    async def plan(self, day: Day) -> str | None:
        # After recovery everything committed for P is published: its file and meta agree.
        key = self.listing.key
        committed = await day.committed()
        versions: dict[str, str] = dict(committed.meta.get("versions", {}))
        if committed.keys - versions.keys():  # landed before versions were recorded: read them
            table = await day.read(self.dataset, [key, "dataAtualizacaoGlobal", "dataAtualizacao"])
            for row in table.to_pylist() if table is not None else []:
                versions.setdefault(row[key], version_text(row))
        self.todo, self.unkept = [], 0
        for row in self.rows:
            cid = row[key]
            held = versions.get(cid) if cid in committed.keys else None
            new = version_text(row)
            if not _newer(new, held):
                self.current[cid] = held or new
            elif held is None or (cid, held) in self.kept:
                self.todo.append(row)
                self.current[cid] = new
            else:
                self.unkept += 1
                self.current[cid] = held
        if not self.todo:
            return None
        return f"{len(self.todo)} newer versions of {len(self.rows)} listed"

    async def fetch(self, send: Callable[[Row], Awaitable[None]]) -> None:
        for row in self.todo:
            await send(row)

    def take(self, row: Row, day: Day) -> None:
        day.count(listed=1)
        day.add(dict(row), {"versions": {row[self.listing.key]: version_text(row)}})

    def describe(self, rows: int) -> str:
        return f"{rows} newer versions"

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        summary.add(self.listing.name, len(rows))

    def closing(self, day: Day) -> str | None:
        if not self.todo:
            return None
        return f"{day.summary.counted(self.listing.name)} newer versions of {self.listing.noun} applied"


@dataclass
class _Publication:
    """One publication day's share of an update day: its newest listed versions."""

    day: date
    rows: list[Row]
    held_by: str = ""


# Rounds of (keep what will be replaced, apply): a second is needed only when P's recovery
# published a version nobody had kept yet.
APPLY_ROUNDS = 3


async def _apply(ctx: RunContext, listing: Listing, pub: _Publication, details: bool) -> None:
    """Current state, then (contratações) details, of one publication day (each under its own lease)."""
    summary = DaySummary(day=pub.day.isoformat(), dataset=listing.current.name)
    kept: Kept = set()
    for _ in range(APPLY_ROUNDS):
        kept |= await keep_replaced(ctx, listing, pub.day, pub.rows)
        job = CurrentDay(listing, pub.rows, kept)
        await run_day(ctx, job, pub.day, summary)
        if not job.unkept:
            break
    else:
        reason = f"{job.unkept} newer versions not applied: the next run applies them"
        ctx.run.failures.append(Failure(pub.day.isoformat(), listing.current.name, reason))
        summary.failed += job.unkept
    if summary.checkpoints or summary.failed:  # a day retried after a held lease shows once
        ctx.run.days.append(summary)
    if not details or listing is not CONTRATACOES_LISTING:
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
        await run_day(ctx, DetailsDay(ctx, DETAIL_KINDS, compras=compras), pub.day, detail_summary)
        if compras:
            ctx.run.days.append(detail_summary)


def newest_by_publication(listing: Listing, table: pa.Table, on_bad: Callable[[str], None]) -> dict[date, list[Row]]:
    """U's history rows → the newest version of each record, grouped by publication day."""
    newest: dict[str, Row] = {}
    for row in table.to_pylist():
        cid = row[listing.key]
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
    ctx: RunContext,
    days: list[date],
    *,
    listings: list[Listing] | None = None,
    modalidades: list[int] | None = None,
    details: bool = True,
) -> None:
    """Capture the changes listed on each update day of ``days``, for each of ``listings``
    (default: contratações, contratos and atas), one listing after the other."""
    for listing in listings or [CONTRATACOES_LISTING]:
        if ctx.stopping():
            return
        await _capture(ctx, listing, days, modalidades, details)


async def _capture(
    ctx: RunContext, listing: Listing, days: list[date], modalidades: list[int] | None, details: bool
) -> None:
    parts = await listing_parts(ctx.client, listing, modalidades)
    run = ctx.run

    async def day_body(update_day: date, day_summary: DaySummary) -> bool:
        await run_day(ctx, HistoryDay(listing, ctx.client, parts), update_day, day_summary)
        if ctx.stopping():
            return False
        history = await read_published(ctx.store, listing.history, update_day)
        if history is None:
            return True

        def no_publication_day(cid: str) -> None:
            run.failures.append(Failure(update_day.isoformat(), cid, "no dataPublicacaoPncp: not applied"))
            day_summary.failed += 1

        by_day = newest_by_publication(listing, history, no_publication_day)
        pending = [_Publication(p, rows) for p, rows in by_day.items()]
        for wait in (0.0, *HELD_RETRY_WAITS_S):
            if not pending or ctx.stopping():
                break
            if wait:
                ctx.event("notice", listing.history, update_day, f"{len(pending)} held days: retrying in {wait:g} s")
                await anyio.sleep(wait)  # waiting for another run to release a day, not for our own work
            held = []
            for pub in pending:
                if ctx.stopping():
                    held.append(pub)
                    continue
                try:
                    await _apply(ctx, listing, pub, details)
                except LeaseHeldError as exc:
                    pub.held_by = str(exc)
                    held.append(pub)
            pending = held
        # Recorded with the update day's listing failures (just saved by its run): the next run
        # over this update day applies them, and ``status`` shows them meanwhile.
        state = DayState(ctx.store, listing.history, update_day)
        failures = await state.failures()
        for pub in pending:
            reason = (
                f"held by another run ({pub.held_by}); left for the next run over {update_day}"
                if pub.held_by
                else f"not applied before the run stopped; left for the next run over {update_day}"
            )
            what = f"{listing.noun} of publication day {pub.day}"
            run.failures.append(Failure(update_day.isoformat(), what, reason))
            failures[what] = {"reason": reason, "run_id": run.run_id}
            day_summary.failed += 1
        if pending:
            await state.save_failures(failures)
        if day_summary.failed:
            day_summary.status = "partial"
        return not ctx.stopping()

    await each_day(ctx, days, listing.history, day_body)
