"""``details``: itens, arquivos and resultados for every committed contratação of a day, exactly once.

A :class:`~._day.DayJob`: the day-engine holds the ``pncp_details`` lease, recovers,
checkpoints and publishes; this module reads the day's published contratações, works out
what is still to fetch per kind (itens, arquivos and resultados are tracked separately in the
commit meta), and fetches it concurrently within the detail API's limits.

Resultados are per item: those of every item whose ``temResultado`` is true, so fetching them
fetches the compra's itens too (and lands them: the row's itens are the ones its resultados
belong to). Each details row also sets the contratação's resultados polling schedule
(``_schedule``), which ``resultados`` follows.

Details read only the *published* contratações file, which is replaced atomically, so a
``contratacoes`` run on the same day can run at the same time: details sees what it had
published when details started, and the next details run picks up the rest.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import anyio

from ..dates import utcnow
from ..errors import ApiError, NotFoundError
from ..pncp import PncpClient
from ..records import DETAIL_KINDS, DetailKind
from ..records.schema import CONTRATACOES, DETAILS, Row, version_text
from ..state import DayState
from ..storage import ObjectStore
from . import _schedule
from ._day import Day, DayJob, RunContext, each_day, run_day
from ._summary import DaySummary, Failure

_ID = re.compile(r"^([0-9A-Z]{14})-1-(\d{1,6})/(\d{4})$")


@dataclass(frozen=True)
class Compra:
    """The address of a contratação in the detail API."""

    id: str
    cnpj: str
    ano: int
    sequencial: int
    version: str = ""  # of the contratação whose details these are (``records.schema.version_text``)


@dataclass
class Fetched:
    """What one contratação's detail requests gave: records per kind, failures, or gone."""

    compra: Compra
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    reported: dict[str, int] = field(default_factory=dict)  # PNCP's /quantidade, where it was asked
    failed: dict[str, str] = field(default_factory=dict)
    gone: str | None = None


def compras_of(rows: list[dict[str, Any]]) -> list[Compra]:
    """Published contratações as detail-API addresses (a row without one is left out)."""
    return [c for c in map(compra_of, rows) if c is not None]


async def not_listed(store: ObjectStore, day: date) -> bool:
    """Whether the day has no published contratações here and no clean listing says why: most
    often a mistyped destination, or details scheduled before their listing. Two small state
    reads, and nothing written, so such a run leaves the destination as it found it."""
    listing = DayState(store, CONTRATACOES, day)
    if (await listing.manifest()).published_at is not None:
        return False
    run = await listing.last_run()
    return run is None or run.get("outcome") != "ok"


COMPRA_COLUMNS = [
    "numeroControlePNCP",
    "orgaoEntidade",
    "anoCompra",
    "sequencialCompra",
    "dataAtualizacaoGlobal",
    "dataAtualizacao",
]


def compra_of(row: dict[str, Any]) -> Compra | None:
    """A contratação's address in the detail API from its own fields (the id as fallback)."""
    cnpj = (row.get("orgaoEntidade") or {}).get("cnpj")
    ano, sequencial = row.get("anoCompra"), row.get("sequencialCompra")
    if not (cnpj and ano and sequencial):
        match = _ID.match(row["numeroControlePNCP"])
        if match is None:
            return None
        cnpj, sequencial, ano = match.group(1), int(match.group(2)), int(match.group(3))
    return Compra(row["numeroControlePNCP"], cnpj, int(ano), int(sequencial), version_text(row))


def plan(
    compras: list[Compra], done: dict[str, Any], kinds: tuple[DetailKind, ...], resume: bool
) -> list[tuple[Compra, tuple[DetailKind, ...]]]:
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


async def fetch_details(
    client: PncpClient, compra: Compra, kinds: tuple[DetailKind, ...], previous: Row | None = None
) -> Fetched:
    """The ``kinds`` of one compra. Resultados need its itens (fetched too when not asked for);
    given ``previous`` (its details row), an item's resultados are reused while the item has not
    changed since (same ``dataAtualizacao``), so polling an unsettled compra costs its ``/itens``
    and the ``/resultados`` of what changed."""
    fetched = Fetched(compra)
    wanted = [k for k in DETAIL_KINDS if k in kinds]
    if "resultados" in wanted and "itens" not in wanted:
        wanted.insert(0, "itens")
    # One kind after the other: the client's limiter, not this function, decides how many requests
    # fly (the caller runs enough of these at once), no task group per compra on the hot path, and
    # a compra found gone costs one request, not two.
    for kind in wanted:
        # Bronze rows straight from the response bytes: parsed and validated in one pass.
        try:
            if kind == "resultados":
                itens = fetched.records.get("itens")
                if itens is None:
                    fetched.failed[kind] = "not fetched: its itens failed"
                    continue
                try:
                    fetched.records[kind] = await _resultados(client, compra, itens, previous)
                except ApiError as exc:
                    # Itens and their resultados land together: a row never holds items newer than its results.
                    fetched.failed[kind] = str(exc)
                    fetched.records.pop("itens")
                continue
            detail = await client.detail(kind, compra.cnpj, compra.ano, compra.sequencial)
            fetched.records[kind] = detail.rows
            if detail.reported is not None:
                fetched.reported[kind] = detail.reported
        except NotFoundError as exc:
            fetched.gone = str(exc)
            fetched.records.clear()
            fetched.failed.clear()
            break
        except ApiError as exc:
            fetched.failed[kind] = str(exc)
    return fetched


async def _resultados(
    client: PncpClient, compra: Compra, itens: list[Row], previous: Row | None
) -> list[dict[str, Any]]:
    """The resultados of the items with ``temResultado``, in item order (a failure raises: never a
    partial list). Given ``previous``, a row whose resultados were fetched with its itens, an
    item's resultados (none included) are reused while it has not changed (same ``dataAtualizacao``)."""
    known: dict[Any, list[dict[str, Any]]] = {}
    before: dict[Any, Any] = {}
    if previous is not None and previous.get("resultados") is not None:
        for item in previous.get("itens") or []:
            before[item.get("numeroItem")] = item.get("dataAtualizacao")
            if item.get("temResultado"):
                known[item.get("numeroItem")] = []
        for resultado in previous["resultados"]:
            known.setdefault(resultado.get("numeroItem"), []).append(resultado)
    found: list[list[dict[str, Any]]] = []
    asks: list[tuple[int, int]] = []  # (place in found, numeroItem) still to ask PNCP
    for item in itens:
        numero = item.get("numeroItem")
        if not item.get("temResultado") or numero is None:
            continue
        if numero in known and before.get(numero) == item.get("dataAtualizacao"):
            found.append(known[numero])
        else:
            asks.append((len(found), numero))
            found.append([])
    if len(asks) == 1:  # the common case: no task group on the hot path
        place, numero = asks[0]
        found[place] = await client.resultados(compra.cnpj, compra.ano, compra.sequencial, numero)
    elif asks:
        # One request per item: all asked at once, the client's limiter decides how many fly (a
        # compra with hundreds of homologated items would otherwise take hundreds of round trips).
        failed: list[ApiError] = []

        async def ask(place: int, numero: int) -> None:
            try:
                found[place] = await client.resultados(compra.cnpj, compra.ano, compra.sequencial, numero)
            except ApiError as exc:  # the other items are still asked; the compra fails as one
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            for place, numero in asks:
                tg.start_soon(ask, place, numero)
        if failed:
            raise failed[0]
    return [resultado for results in found for resultado in results]


def details_row(fetched: Fetched) -> dict[str, Any]:
    """One ``pncp_details`` row: a kind not fetched is null, fetched-and-empty is []."""
    compra = fetched.compra
    row: dict[str, Any] = {
        "numeroControlePNCP": compra.id,
        "cnpj": compra.cnpj,
        "anoCompra": compra.ano,
        "sequencialCompra": compra.sequencial,
    }
    metadata: dict[str, Any] = {"fetch_timestamp": utcnow()}
    for kind in DETAIL_KINDS:
        rows = fetched.records.get(kind)  # already bronze rows (the client's *_rows methods)
        row[kind] = rows
        # What PNCP said (its /quantidade) when it had to be asked; otherwise what the pages held.
        metadata[f"total_{kind}"] = fetched.reported.get(kind, None if rows is None else len(rows))
    row["metadata"] = metadata
    return row


class DetailsDay(DayJob[Fetched]):
    """One day's details: the day's published contratações in, one ``pncp_details`` row each out."""

    dataset = DETAILS
    keeps_failures = True  # a run fetches only what is still to do: others' failures stand until refetched
    # Whether a complete fetch records the contratação's version as the one its details belong to
    # (not when only some kinds are refreshed: ``resultados`` leaves arquivos as they were).
    records_versions = True

    def __init__(
        self,
        ctx: RunContext,
        kinds: tuple[DetailKind, ...],
        resume: bool = True,
        budget: int | None = None,
        compras: list[Compra] | None = None,
    ) -> None:
        self.client = ctx.client
        self.settings = ctx.settings
        # Given (by atualizacoes: the contratações whose version changed), exactly these are
        # fetched again, every kind, instead of what the day's published contratações still need.
        self.compras = compras
        self.kinds = kinds
        self.resume = resume
        # --no-resume replaces the day in one publish at the end: no mixed intermediate states.
        self.publish_while_running = resume
        self.budget = budget
        concurrency = ctx.settings.concurrency
        # Room for a few rounds of results, so the fetchers keep the API busy while a checkpoint
        # or a publish holds the writer.
        self.buffer = 4 * concurrency
        # fetch_details asks for one kind at a time: two workers per in-flight place (and two
        # spare) keep every place of the detail family busy while some wait out a retry's backoff.
        self.workers = 2 * concurrency + 2
        self.todo: list[tuple[Compra, tuple[DetailKind, ...]]] = []
        self.previous: dict[str, Row] = {}  # details rows whose unchanged items' resultados are reused
        self.outstanding = 0  # work the day had before this run's budget cut it
        self.handled = 0
        self.now = _schedule.now(ctx.settings)

    async def plan(self, day: Day) -> str | None:
        compras = self.compras
        if compras is not None:
            if not compras:
                return None
            self.todo = [(c, self.kinds) for c in compras]
            return self._planned(day, f"{len(compras)} changed contratações to fetch again ({', '.join(self.kinds)})")
        table = await day.read(CONTRATACOES, COMPRA_COLUMNS)
        if table is None:  # the listing ran cleanly and found nothing (``not_listed`` ruled out the rest)
            day.mark("skipped")
            return None
        published = compras_of(table.to_pylist())
        self.todo = plan(published, (await day.committed()).meta, self.kinds, self.resume)
        no_resume = "" if self.resume else ", no resume"
        return self._planned(
            day, f"{{}} of {len(published)} contratações to fetch ({', '.join(self.kinds)}{no_resume})"
        )

    def _planned(self, day: Day, message: str) -> str:
        """Cut ``self.todo`` to the budget; ``message`` with {} for what this run takes on."""
        self.outstanding = len(self.todo)
        if self.budget is not None:
            self.todo = self.todo[: self.budget]
        self.workers = min(len(self.todo), self.workers)
        day.count(planned=len(self.todo))
        day.event("progress", compras_planned=len(self.todo))
        return message.format(len(self.todo))

    async def fetch(self, send: Callable[[Fetched], Awaitable[None]]) -> None:
        work: Iterator[tuple[Compra, tuple[DetailKind, ...]]] = iter(self.todo)

        async def worker() -> None:
            for compra, needed in work:  # one shared iterator: each contratação goes to one worker
                await send(await fetch_details(self.client, compra, needed, self.previous.get(compra.id)))

        async with anyio.create_task_group() as tg:
            for _ in range(self.workers):
                tg.start_soon(worker)

    def take(self, fetched: Fetched, day: Day) -> None:
        day.event("progress", compras_done=1)
        self.handled += 1
        cid = fetched.compra.id
        day.resolved(cid)
        if fetched.gone:
            day.count(gone=1)
            day.event("failure", f"{cid} is gone from PNCP ({fetched.gone}); recorded, not retried")
            day.add(None, {"gone": {cid: fetched.gone}})
            return
        if fetched.failed:
            kinds = ", ".join(fetched.failed)
            day.fail(cid, "; ".join(f"{kind}: {reason}" for kind, reason in fetched.failed.items()), f"{cid} {kinds}")
        if fetched.records:
            meta: dict[str, Any] = {kind: [cid] for kind in fetched.records}
            if not fetched.failed and self.records_versions:
                # The version these details belong to: ``status`` counts contratações whose details are older.
                meta["versions"] = {cid: fetched.compra.version}
            itens = fetched.records.get("itens")
            if itens is not None:  # (a failed resultados takes its itens back: never one without the other)
                meta["polls"] = {cid: self.poll(fetched, itens)}
            day.add(details_row(fetched), meta)

    def poll(self, fetched: Fetched, itens: list[Row]) -> _schedule.Poll:
        """The contratação's resultados schedule from fresh itens: due in a day unless settled (a
        refetch, as ``atualizacoes`` makes of a changed contratação, starts it over)."""
        poll = _schedule.next_poll(itens, self.now, fetched.compra.version, self.settings, None)
        return _schedule.with_resultados(poll, "resultados" in fetched.records)

    def remaining(self) -> int:
        return len(self.todo) - self.handled

    def describe(self, rows: int) -> str:
        return f"details of {rows} contratações"

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        summary.contratacoes += len(rows)
        summary.itens += sum(len(r["itens"] or []) for r in rows)
        summary.arquivos += sum(len(r["arquivos"] or []) for r in rows)
        summary.resultados += sum(len(r["resultados"] or []) for r in rows)

    def closing(self, day: Day) -> str:
        s = day.summary
        if s.status == "skipped":
            return "the day's listing found no contratações: nothing to fetch"
        # Left for later runs: beyond this run's budget, failed, or not reached before a stop.
        day.count(pending=self.outstanding - self.handled + s.failed)
        return (
            f"details of {s.contratacoes} contratações ({s.itens} itens, {s.arquivos} arquivos, "
            f"{s.resultados} resultados), "
            f"{s.failed} failed, {s.gone} gone, {s.pending} left for later runs"
        )


async def ingest_details(
    ctx: RunContext,
    days: list[date],
    *,
    resume: bool = True,
    batch_size: int | None = None,
    only: DetailKind | None = None,
) -> None:
    """Fetch the details of each day's published contratações, at most ``batch_size`` in all."""
    kinds: tuple[DetailKind, ...] = (only,) if only else DETAIL_KINDS
    budget = batch_size

    async def day_body(day: date, day_summary: DaySummary) -> bool:
        nonlocal budget
        if await not_listed(ctx.store, day):
            reason = f"no contratações are published for {day} at {ctx.store.url}: their listing has not run there"
            ctx.run.failures.append(Failure(day.isoformat(), "contratacoes", reason, code="not_listed"))
            day_summary.failed += 1
            day_summary.status = "missing"
            ctx.event("day_end", DETAILS, day, reason, summary=day_summary)
            return True
        job = DetailsDay(ctx, kinds, resume, budget)
        await run_day(ctx, job, day, day_summary)
        if budget is not None:
            budget -= len(job.todo)
        return budget is None or budget > 0

    await each_day(ctx, days, DETAILS, day_body)
