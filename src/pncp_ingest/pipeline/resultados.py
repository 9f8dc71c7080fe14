"""``resultados``: bring the resultados of each day's contratações up to date, polling only what is due.

Results appear when PNCP homologates items, weeks or months after publication, and PNCP does not
promise to list that at ``/atualizacao``. So, per publication day, under the ``pncp_details``
lease of the day-engine (same checkpoint, publish and crash rules as ``details``):

- a *settled* contratação (no item in progress) costs no request;
- an unsettled one is polled when due by its schedule (``_schedule``: 1, 2, 4 … days apart, up
  to ``resultados_poll_max_days``, until ``resultados_max_age_days`` after publication), and at
  once when its version in ``pncp`` is not the one its details were fetched at (``atualizacoes
  --no-details`` saw it change); ``--force`` polls every unsettled one, due or not;
- a contratação whose resultados were never fetched (details ran before them, or ``--only itens``)
  is due at once;
- a poll fetches ``/itens``, then the ``/resultados`` of the items that are new with results or
  changed since (the others' are reused), and replaces the contratação's ``pncp_details`` row
  (arquivos kept as they were).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..records.schema import CONTRATACOES, DETAILS, Row
from . import _schedule
from ._day import Day, RunContext, each_day, run_day
from ._summary import DaySummary
from .details import COMPRA_COLUMNS, Compra, DetailsDay, Fetched, compras_of, not_listed

_NEVER: dict[str, Any] = {}  # no schedule yet


class PollDay(DetailsDay):
    """One publication day's due contratações: fresh itens, the resultados of what changed."""

    records_versions = False  # arquivos are not refetched: the details are not wholly at the new version

    def __init__(self, ctx: RunContext, *, force: bool = False) -> None:
        super().__init__(ctx, ("itens", "resultados"))
        self.force = force
        self.polls: dict[str, _schedule.Poll] = {}
        self.before: dict[str, Row] = {}  # the due contratações' published details rows
        self.next_due: datetime | None = None
        self.homologated = 0  # items newly with results
        self.landed = 0  # resultados not in bronze before
        self.expired = 0
        self.unsettled = 0  # after this run: not due, past the maximum age, or polled and still in progress

    async def plan(self, day: Day) -> str | None:
        table = await day.read(CONTRATACOES, COMPRA_COLUMNS)
        if table is None:
            day.mark("skipped")
            return None
        published = compras_of(table.to_pylist())
        meta = (await day.committed()).meta
        self.polls = meta.get("polls", {})
        gone = meta.get("gone", {})
        fetched = set(meta.get("resultados", []))
        settled = 0
        due: list[Compra] = []
        for compra in published:
            cid = compra.id
            if cid in gone:
                continue
            poll = self.polls.get(cid, _NEVER)
            changed = bool(compra.version) and poll.get("version") != compra.version
            if cid not in fetched or poll is _NEVER or changed:
                due.append(compra)
            elif _schedule.is_settled(poll):
                settled += 1
            elif _schedule.expired(day.date, self.now, self.settings):
                self.expired += 1
            elif self.force or _schedule.due(poll, self.now):
                due.append(compra)
            else:
                self.unsettled += 1
                self._due_at(datetime.fromisoformat(poll["due"]))
        day.count(settled=settled)
        if not due:
            return None
        # Rows whose resultados were fetched with their itens: a poll reuses those of unchanged items.
        self.before = await _rows(day, [c.id for c in due])
        self.previous = {cid: row for cid, row in self.before.items() if self.polls.get(cid, _NEVER).get("resultados")}
        self.todo = [(c, self.kinds) for c in due]
        forced = ", forced" if self.force else ""
        return self._planned(
            day, f"{{}} of {len(published)} contratações due for resultados ({settled} settled{forced})"
        )

    def _due_at(self, when: datetime) -> None:
        if self.next_due is None or when < self.next_due:
            self.next_due = when

    def poll(self, fetched: Fetched, itens: list[Row]) -> _schedule.Poll:
        """Count what the poll found; the schedule backs off whatever it found (see ``_schedule``)."""
        cid = fetched.compra.id
        previous = self.before.get(cid) or {}
        before = {i.get("numeroItem"): i for i in previous.get("itens") or []}
        self.homologated += sum(
            1
            for item in itens
            if item.get("temResultado") and not (before.get(item.get("numeroItem")) or {}).get("temResultado")
        )
        had = {(r.get("numeroItem"), r.get("sequencialResultado")) for r in previous.get("resultados") or []}
        resultados = fetched.records.get("resultados") or []
        self.landed += sum((r.get("numeroItem"), r.get("sequencialResultado")) not in had for r in resultados)
        poll = _schedule.next_poll(itens, self.now, fetched.compra.version, self.settings, self.polls.get(cid))
        _schedule.with_resultados(poll, "resultados" in fetched.records)
        if "due" in poll:
            self.unsettled += 1
            self._due_at(datetime.fromisoformat(poll["due"]))
        return poll

    def closing(self, day: Day) -> str:
        s = day.summary
        if s.status == "skipped":
            return "the day's listing found no contratações: nothing to poll"
        day.count(polled=self.handled - s.failed - s.gone, homologated=self.homologated, landed=self.landed)
        # Still unsettled: not due, past the maximum age, polled and still in progress, failed, or not reached.
        day.count(pending=self.unsettled + self.expired + s.failed + self.outstanding - self.handled)
        s.next_due = self.next_due.isoformat() if self.next_due is not None else None
        expired = f" ({self.expired} past the maximum age, no longer polled)" if self.expired else ""
        return (
            f"{s.settled} settled (no request), {s.polled} polled: {s.homologated} items newly homologated, "
            f"{s.landed} resultados landed, {s.failed} failed; {s.pending} still pending{expired}, "
            f"next due {s.next_due or '-'}"
        )


async def _rows(day: Day, ids: list[str]) -> dict[str, Row]:
    """The published details rows of ``ids`` (their itens and resultados), to compare a poll with."""
    table = await day.read(DETAILS, ["numeroControlePNCP", "itens", "resultados"])
    if table is None:
        return {}
    table = table.filter(pc.is_in(table.column("numeroControlePNCP"), value_set=pa.array(ids, pa.string())))
    return {row["numeroControlePNCP"]: row for row in table.to_pylist()}


async def ingest_resultados(ctx: RunContext, days: list[date], *, force: bool = False) -> None:
    """Bring the resultados of each publication day of ``days`` up to date (see the module docstring).

    A day with no published contratações at this destination is skipped quietly: a nightly
    ``--back 365`` over a destination that holds fewer days is not a failure."""

    async def day_body(day: date, day_summary: DaySummary) -> bool:
        if await not_listed(ctx.store, day):
            day_summary.status = "missing"
            return True
        await run_day(ctx, PollDay(ctx, force=force), day, day_summary)
        return True

    await each_day(ctx, days, DETAILS, day_body)
