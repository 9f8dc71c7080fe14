"""``contratacoes``: list every modalidade's pages for each day and commit the new contratações.

A :class:`~._day.DayJob`: the day-engine holds the lease, recovers, checkpoints and publishes;
this module lists the pages (page 1 of a modalidade says how many there are, the rest are
fetched concurrently within the consulta family's limits), checks each modalidade against
PNCP's ``totalRegistros`` and lists it again when they disagree, and keeps only contratações
not already committed for the day, so an hourly run on today's date adds just the new ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import anyio

from ..errors import ApiError, UnknownModalidadeError
from ..pncp import ConsultaPage, PncpClient
from ..records import Contratacao, bronze_row
from ..records.schema import CONTRATACOES, version_text
from ._day import Day, DayJob, RunContext, each_day, run_day
from ._summary import DaySummary

Send = Callable[[dict[str, Any]], Awaitable[None]]
# Listing a modalidade again costs as many pages as it has; three passes let a day that is still
# being published settle, and then the modalidade is a failure the next run retries.
MAX_PASSES = 3


async def resolve_modalidades(client: PncpClient, requested: list[int] | None) -> list[int]:
    """The modalidades to list: all the API serves, or the requested ones if the API knows them."""
    served = await client.modalidades()
    if not requested:
        return served
    unknown = sorted(set(requested) - set(served))
    if unknown:
        raise UnknownModalidadeError(unknown, served)
    return sorted(set(requested))


Page = Callable[[date, int, int], Awaitable[ConsultaPage]]


class ListingJob(DayJob[dict[str, Any]]):
    """A day job that lists a consulta endpoint (every modalidade, every page, completeness
    passes) into the writer; subclasses say which endpoint (``page``) and what a record becomes.

    The listed day is the job's day: ``/publicacao`` for ``contratacoes``, ``/atualizacao`` for
    the update day of ``atualizacoes``."""

    buffer = 400  # eight pages' worth of records
    day: Day
    endpoint = ""  # how the day's start line names what is listed

    def __init__(self, page: Page, codes: list[int]) -> None:
        self.page = page
        self.codes = codes
        self.known: set[str] = set()  # keys committed for the day: listed again, written once
        # Per modalidade, the records its passes' first pages announced: once every modalidade's
        # page 1 is in, the day's size is known (``remaining``).
        self.announced: dict[int, int] = {}
        self.listed = 0

    async def plan(self, day: Day) -> str:
        # Each run lists every page again, so the day's failures start empty and replace the last run's.
        self.day = day
        self.known = (await day.committed()).keys
        return f"listing {len(self.codes)} modalidades{self.endpoint}"

    def remaining(self) -> int | None:
        """Records still to come, once every modalidade's page 1 said how many it has: an upper
        bound of the rows (a record already committed makes none)."""
        if len(self.announced) < len(self.codes):
            return None
        return max(0, sum(self.announced.values()) - self.listed)

    async def fetch(self, send: Send) -> None:
        async with anyio.create_task_group() as tg:
            for code in self.codes:
                tg.start_soon(self._modalidade, code, send)

    def listed_id(self, raw: Any, day: Day) -> str | None:
        """Count a listed record; its ``numeroControlePNCP``, or None (a failed record) if it has none."""
        self.listed += 1
        day.count(listed=1)
        key = raw.get("numeroControlePNCP") if isinstance(raw, dict) else None
        if not isinstance(key, str) or not key:
            day.fail("record", f"a listed record without numeroControlePNCP: {str(raw)[:120]}")
            return None
        return key

    async def _modalidade(self, code: int, send: Send) -> None:
        """List a modalidade until one pass finds as many distinct ids as PNCP says it has.

        PNCP gives no order guarantee and keeps publishing while we page, so a record can move
        across a page boundary between two page fetches and be missed (or seen twice) in one
        pass. A pass is consistent when its distinct ids equal the ``totalRegistros`` last
        reported; otherwise the modalidade is listed again (a stable listing costs nothing extra),
        and after ``MAX_PASSES`` the modalidade is a failure with the counts, retried next run.
        """
        day = self.day
        for number in range(1, MAX_PASSES + 1):
            listed = await self._pass(code, send)
            if listed is None:
                return  # a page failed: recorded as such, the next run lists the modalidade again
            ids, total = listed
            if len(ids) == total:
                return
            day.event(
                "notice",
                f"modalidade {code}: pass {number} found {len(ids)} distinct contratações, PNCP reports {total}"
                + ("; listing it again" if number < MAX_PASSES else ""),
            )
        day.fail(
            f"modalidade {code} listing",
            f"listed {len(ids)} distinct contratações but PNCP reports {total}, after {MAX_PASSES} passes "
            "(PNCP was still changing the listing): the next run lists it again",
        )

    async def _pass(self, code: int, send: Send) -> tuple[set[str], int] | None:
        """One pass over a modalidade's pages: page 1 says how many, the rest go concurrently.

        Returns the distinct ids seen and the ``totalRegistros`` of the page that arrived last,
        or None if a page failed."""
        day = self.day
        ids: set[str] = set()
        totals: list[tuple[int, int]] = []  # (totalRegistros, totalPaginas) in order of arrival
        failed = False

        async def fetch(pagina: int) -> None:
            nonlocal failed
            try:
                page = await self.page(day.date, code, pagina)
            except ApiError as exc:
                day.fail(f"modalidade {code} page {pagina}", str(exc))
                failed = True
                return
            day.count(pages=1)
            if totals and totals[-1] != (page.total_registros, page.total_paginas):
                day.event(
                    "notice",
                    f"modalidade {code} page {pagina}: PNCP now reports {page.total_registros} records "
                    f"in {page.total_paginas} pages (was {totals[-1][0]} in {totals[-1][1]})",
                )
            totals.append((page.total_registros, page.total_paginas))
            for record in page.records:
                key = record.get("numeroControlePNCP")
                if isinstance(key, str):
                    ids.add(key)
                await send(record)
            day.event("progress", pages_done=1)

        day.event("progress", pages_planned=1)
        await fetch(1)
        if failed:
            return None
        self.announced[code] = self.announced.get(code, 0) + totals[0][0]
        pages = totals[0][1]
        if pages > 1:
            day.event("progress", pages_planned=pages - 1)
        async with anyio.create_task_group() as tg:
            for pagina in range(2, pages + 1):
                tg.start_soon(fetch, pagina)
        return None if failed else (ids, totals[-1][0])


class ContratacoesDay(ListingJob):
    """One day's listing: raw records in, new contratações' bronze rows out."""

    dataset = CONTRATACOES

    def __init__(self, client: PncpClient, codes: list[int]) -> None:
        super().__init__(client.contratacoes_page, codes)

    def take(self, raw: dict[str, Any], day: Day) -> None:
        key = self.listed_id(raw, day)
        if key is None or key in self.known:
            return
        try:
            row = bronze_row(Contratacao, raw)
        except ValueError as exc:
            day.fail(key, str(exc))
            return
        self.known.add(key)
        # The manifest then knows each contratação's version without reading Parquet (atualizacoes).
        day.add(row, {"versions": {key: version_text(row)}})

    def describe(self, rows: int) -> str:
        return f"{rows} contratações"

    def committed(self, rows: list[dict[str, Any]], summary: DaySummary) -> None:
        summary.contratacoes += len(rows)

    def closing(self, day: Day) -> str:
        s = day.summary
        return f"{s.contratacoes} new of {s.listed} listed, {s.failed} failed"


async def ingest_contratacoes(ctx: RunContext, days: list[date], modalidades: list[int] | None = None) -> None:
    """Ingest the contratações of ``days`` into the run's destination.

    When the run's stop is set, listing stops, what was listed is committed and published, and
    the remaining days are left for the next run."""
    codes = await resolve_modalidades(ctx.client, modalidades)

    async def day_body(day: date, day_summary: DaySummary) -> bool:
        await run_day(ctx, ContratacoesDay(ctx.client, codes), day, day_summary)
        return True

    await each_day(ctx, days, CONTRATACOES, day_body)
