"""Listing datasets as declarations: contratações, contratos and atas differ in data, not code.

A :class:`Listing` says where PNCP lists a dataset by publication day and by update day, the
page size those endpoints take, whether they must be asked per modalidade, which field keys a
record, and which bronze datasets hold its current versions and its history. The day-engine
(``_day.run_day``) runs every one of them the same way: :class:`PublicationDay` lists a day
into the current dataset (``pncp-ingest contratacoes``, ``contratos``), and ``atualizacoes``
lists an update day into the history and brings the current dataset up to date.

A :class:`ListingJob` lists every part of a day (every modalidade for contratações; the whole
day for the others), page 1 first to learn how many pages there are, the rest concurrently
within the consulta family's limits, and checks each part against PNCP's ``totalRegistros``,
listing it again when they disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import anyio

from ..errors import ApiError, UnknownModalidadeError
from ..pncp import ConsultaPage, PncpClient
from ..records import Ata, Contratacao, Contrato, Record, bronze_row
from ..records.schema import (
    ATAS,
    ATAS_ATUALIZACOES,
    ATUALIZACOES,
    CONTRATACOES,
    CONTRATOS,
    CONTRATOS_ATUALIZACOES,
    Dataset,
    version_text,
)
from ._day import Day, DayJob, RunContext, each_day, run_day
from ._summary import DaySummary

Send = Callable[[dict[str, Any]], Awaitable[None]]
# Listing a part again costs as many pages as it has; three passes let a day that is still being
# published settle, and then the part is a failure the next run retries.
MAX_PASSES = 3


@dataclass(frozen=True)
class Listing:
    """A dataset PNCP lists by day (consulta API), declared once."""

    name: str
    """What commands and ``--dataset`` call it: ``contratacoes``, ``contratos``, ``atas``."""
    noun: str
    """What the operator reads: "contratações", "contratos", "atas"."""
    model: type[Record]
    key: str
    """The field that identifies a record (``numeroControlePNCP``; ``numeroControlePNCPAta``)."""
    current: Dataset
    """Newest version of each record, partitioned by its publication day."""
    history: Dataset
    """Every version listed, partitioned by the update day that listed it."""
    updates_path: str
    page_size: int
    publication_path: str | None = None
    """None: PNCP cannot list the dataset by publication day (``/v1/atas`` filters by vigência)."""
    by_modalidade: bool = False
    """The endpoints require ``codigoModalidadeContratacao``: each modalidade is listed on its own."""


CONTRATACOES_LISTING = Listing(
    name="contratacoes",
    noun="contratações",
    model=Contratacao,
    key="numeroControlePNCP",
    current=CONTRATACOES,
    history=ATUALIZACOES,
    publication_path="/consulta/v1/contratacoes/publicacao",
    updates_path="/consulta/v1/contratacoes/atualizacao",
    page_size=50,  # the contratações endpoints answer 400 above 50
    by_modalidade=True,
)
CONTRATOS_LISTING = Listing(
    name="contratos",
    noun="contratos",
    model=Contrato,
    key="numeroControlePNCP",
    current=CONTRATOS,
    history=CONTRATOS_ATUALIZACOES,
    publication_path="/consulta/v1/contratos",
    updates_path="/consulta/v1/contratos/atualizacao",
    page_size=500,
)
ATAS_LISTING = Listing(
    name="atas",
    noun="atas",
    model=Ata,
    key="numeroControlePNCPAta",
    current=ATAS,
    history=ATAS_ATUALIZACOES,
    updates_path="/consulta/v1/atas/atualizacao",
    page_size=500,
)
LISTINGS: dict[str, Listing] = {x.name: x for x in (CONTRATACOES_LISTING, CONTRATOS_LISTING, ATAS_LISTING)}

Part = int | None  # a modalidade code, or None for a listing that is not split


async def listing_parts(client: PncpClient, listing: Listing, modalidades: list[int] | None = None) -> list[Part]:
    """What one day's listing is made of: every modalidade PNCP serves (or the requested ones, if
    PNCP knows them) for a listing split by modalidade; the whole day otherwise."""
    if not listing.by_modalidade:
        return [None]
    served = await client.modalidades()
    unknown = sorted(set(modalidades or []) - set(served))
    if unknown:
        raise UnknownModalidadeError(unknown, served)
    parts: list[Part] = [*(sorted(set(modalidades)) if modalidades else served)]
    return parts


def _part_name(part: Part) -> str:
    return "the listing" if part is None else f"modalidade {part}"


class ListingJob(DayJob[dict[str, Any]]):
    """A day job that lists one endpoint of a :class:`Listing` (every part, every page,
    completeness passes) into the writer; subclasses say what a listed record becomes.

    The listed day is the job's day: publication day for ``contratacoes`` and ``contratos``,
    the update day for ``atualizacoes``."""

    buffer = 400  # several pages' worth of records
    day: Day

    def __init__(self, listing: Listing, client: PncpClient, path: str, parts: list[Part]) -> None:
        self.listing = listing
        self.client = client
        self.path = path
        self.parts = parts
        self.known: set[str] = set()  # keys committed for the day: listed again, written once
        # Per part, the records its passes' first pages announced: once every part's page 1 is
        # in, the day's size is known (``remaining``).
        self.announced: dict[Part, int] = {}
        self.listed = 0

    async def plan(self, day: Day) -> str:
        # Each run lists every page again, so the day's failures start empty and replace the last run's.
        self.day = day
        self.known = (await day.committed()).keys
        endpoint = self.path.rsplit("/v1/", 1)[-1]
        return (
            f"listing {len(self.parts)} modalidades of {endpoint}"
            if self.listing.by_modalidade
            else f"listing {endpoint}"
        )

    def remaining(self) -> int | None:
        """Records still to come, once every part's page 1 said how many it has: an upper bound
        of the rows (a record already committed makes none)."""
        if len(self.announced) < len(self.parts):
            return None
        return max(0, sum(self.announced.values()) - self.listed)

    async def page(self, day: date, part: Part, pagina: int) -> ConsultaPage:
        return await self.client.listing_page(self.path, day, pagina, page_size=self.listing.page_size, modalidade=part)

    async def fetch(self, send: Send) -> None:
        async with anyio.create_task_group() as tg:
            for part in self.parts:
                tg.start_soon(self._part, part, send)

    def listed_id(self, raw: Any, day: Day) -> str | None:
        """Count a listed record; its key, or None (a failed record) if it has none."""
        self.listed += 1
        day.count(listed=1)
        key = raw.get(self.listing.key) if isinstance(raw, dict) else None
        if not isinstance(key, str) or not key:
            day.fail("record", f"a listed record without {self.listing.key}: {str(raw)[:120]}")
            return None
        return key

    def parse(self, raw: Any, day: Day, skip: set[str] | None = None) -> tuple[str, dict[str, Any]] | None:
        """A listed record's key and bronze row; None if its key is in ``skip`` (nothing to do), or
        if it has no key or does not fit its model (a failed record, saved with its reason)."""
        key = self.listed_id(raw, day)
        if key is None or (skip is not None and key in skip):
            return None
        try:
            return key, bronze_row(self.listing.model, raw)
        except ValueError as exc:
            day.fail(key, str(exc))
            return None

    async def _part(self, part: Part, send: Send) -> None:
        """List a part until one pass finds as many distinct records as PNCP says it has.

        PNCP gives no order guarantee and keeps publishing while we page, so a record can move
        across a page boundary between two page fetches and be missed (or seen twice) in one
        pass. A pass is consistent when its distinct keys equal the ``totalRegistros`` last
        reported; otherwise the part is listed again (a stable listing costs nothing extra),
        and after ``MAX_PASSES`` it is a failure with the counts, retried next run.
        """
        day, noun = self.day, self.listing.noun
        for number in range(1, MAX_PASSES + 1):
            listed = await self._pass(part, send)
            if listed is None:
                return  # a page failed: recorded as such, the next run lists the part again
            keys, total = listed
            if len(keys) == total:
                return
            day.event(
                "notice",
                f"{_part_name(part)}: pass {number} found {len(keys)} distinct {noun}, PNCP reports {total}"
                + ("; listing it again" if number < MAX_PASSES else ""),
            )
        day.fail(
            f"{_part_name(part)} listing",
            f"listed {len(keys)} distinct {noun} but PNCP reports {total}, after {MAX_PASSES} passes "
            "(PNCP was still changing the listing): the next run lists it again",
        )

    async def _pass(self, part: Part, send: Send) -> tuple[set[str], int] | None:
        """One pass over a part's pages: page 1 says how many, the rest go concurrently.

        Returns the distinct keys seen and the ``totalRegistros`` of the page that arrived last,
        or None if a page failed."""
        day, field = self.day, self.listing.key
        keys: set[str] = set()
        totals: list[tuple[int, int]] = []  # (totalRegistros, totalPaginas) in order of arrival
        failed = False

        async def fetch(pagina: int) -> None:
            nonlocal failed
            try:
                page = await self.page(day.date, part, pagina)
            except ApiError as exc:
                day.fail(f"{_part_name(part)} page {pagina}", str(exc))
                failed = True
                return
            day.count(pages=1)
            if totals and totals[-1] != (page.total_registros, page.total_paginas):
                day.event(
                    "notice",
                    f"{_part_name(part)} page {pagina}: PNCP now reports {page.total_registros} records "
                    f"in {page.total_paginas} pages (was {totals[-1][0]} in {totals[-1][1]})",
                )
            totals.append((page.total_registros, page.total_paginas))
            for record in page.records:
                key = record.get(field) if isinstance(record, dict) else None
                if isinstance(key, str):
                    keys.add(key)
                await send(record)
            day.event("progress", pages_done=1)

        day.event("progress", pages_planned=1)
        await fetch(1)
        if failed:
            return None
        self.announced[part] = self.announced.get(part, 0) + totals[0][0]
        pages = totals[0][1]
        if pages > 1:
            day.event("progress", pages_planned=pages - 1)
        async with anyio.create_task_group() as tg:
            for pagina in range(2, pages + 1):
                tg.start_soon(fetch, pagina)
        return None if failed else (keys, totals[-1][0])


class PublicationDay(ListingJob):
    """One publication day's listing: raw records in, the new records' bronze rows out."""

    def __init__(self, listing: Listing, client: PncpClient, parts: list[Part]) -> None:
        assert listing.publication_path is not None, f"{listing.name} cannot be listed by publication day"
        super().__init__(listing, client, listing.publication_path, parts)
        self.dataset = listing.current

    def take(self, raw: dict[str, Any], day: Day) -> None:
        found = self.parse(raw, day, skip=self.known)
        if found is None:
            return
        key, row = found
        self.known.add(key)
        # The manifest then knows each record's version without reading Parquet (atualizacoes).
        day.add(row, {"versions": {key: version_text(row)}})

    def describe(self, rows: int) -> str:
        return f"{rows} {self.listing.noun}"

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        summary.add(self.listing.name, len(rows))

    def closing(self, day: Day) -> str:
        s = day.summary
        return f"{s.counted(self.listing.name)} new {self.listing.noun} of {s.listed} listed, {s.failed} failed"


async def ingest_listing(
    ctx: RunContext, days: list[date], *, listing: Listing, modalidades: list[int] | None = None
) -> None:
    """List ``days`` by publication into the listing's current dataset, adding the records not
    already committed for each day (so an hourly run on today adds just the new ones).

    When the run's stop is set, listing stops, what was listed is committed and published, and
    the remaining days are left for the next run."""
    parts = await listing_parts(ctx.client, listing, modalidades)

    async def day_body(day: date, day_summary: DaySummary) -> bool:
        await run_day(ctx, PublicationDay(listing, ctx.client, parts), day, day_summary)
        return True

    await each_day(ctx, days, listing.current, day_body)
