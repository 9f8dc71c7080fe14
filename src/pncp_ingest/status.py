"""``pncp-ingest status``: what is committed, failed, pending and held, per day, from the state alone.

No API request is made and no data file is read: each day costs a handful of small state
reads (done concurrently), so a year's status is quick even on S3.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import anyio

from .config import Settings
from .dates import BRASILIA, utcnow
from .errors import ConfigError
from .records.schema import CONTRATACOES, CONTRATOS, DETAILS
from .state import DayState, Lease
from .storage import ObjectStore, open_store


@dataclass
class DayStatus:
    """One day's state. ``itens_done`` / ``arquivos_done`` count contratações whose itens / arquivos
    are committed (not items or documents); ``never_run`` means no run left any state for the day."""

    day: str
    never_run: bool = False
    contratacoes: int = 0
    contratacoes_failed: int = 0
    details: int = 0
    itens_done: int = 0
    arquivos_done: int = 0
    details_failed: int = 0
    gone: int = 0
    pending: int = 0
    details_stale: int = 0  # details fetched for an older version than pncp holds (atualizacoes refetches them)
    resultados_pending: int = 0  # contratações with an item still in progress: `resultados` polls them
    contratos: int = 0
    contratos_failed: int = 0
    parts: int = 0
    held_by: dict[str, str] = field(default_factory=dict)
    last_run: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def listed_cleanly(self) -> bool:
        """The last contratações run of the day listed every page and nothing failed."""
        return self.last_run.get(CONTRATACOES.name, {}).get("outcome") == "ok" and not self.contratacoes_failed

    @property
    def listed_after_the_day(self) -> bool:
        """That listing started once the day had ended in Brasília. A listing taken while PNCP was
        still publishing the day misses what came later, so only such a listing is final."""
        started = listing_started(self.last_run.get(CONTRATACOES.name, {}))
        return started is not None and started >= day_end(date.fromisoformat(self.day))

    @property
    def listed(self) -> bool:
        """The day's listing is final: clean, and taken after the day had ended."""
        return self.listed_cleanly and self.listed_after_the_day

    @property
    def contratos_listed(self) -> bool:
        """The day's contratos were listed for good: cleanly, after the day had ended."""
        return final(self.last_run.get(CONTRATOS.name), date.fromisoformat(self.day)) and not self.contratos_failed

    @property
    def contratacoes_complete(self) -> bool:
        """Listed for good, every contratação has both kinds of details (or is gone), nothing held,
        and no staged part left (unpublished commits, or a killed publish's leftovers: a run cleans them)."""
        return self.listed and self.pending == 0 and not self.details_failed and not self.held_by and not self.parts

    @property
    def complete(self) -> bool:
        """Nothing left to fetch for the day: its contratações with their details, and its contratos."""
        return self.contratacoes_complete and self.contratos_listed

    @property
    def open_because(self) -> str | None:
        """Why the day is not complete, in a few words (None when it is); the most pressing reason
        first. The counts are in the other fields."""
        if self.complete:
            return None
        if self.never_run:
            return "never run"
        if self.held_by:
            return "held by a run"
        listing = self.last_run.get(CONTRATACOES.name)
        if self.contratacoes_failed:
            return "listing failed"
        if not listing:
            return "not listed"
        if not self.listed_cleanly:
            return f"listing {str(listing.get('outcome')).split(':')[0]}"
        if self.details_failed:
            return "details failed"
        if self.pending:
            return "details pending"
        if self.parts:
            return "staged parts left"
        if utcnow() < day_end(date.fromisoformat(self.day)):
            return "day not over"
        if not self.listed:
            return "listed before day end"
        if self.contratos_failed:
            return "contratos listing failed"
        return "contratos not listed"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete, "open_because": self.open_because}


def day_end(day: date) -> datetime:
    """When ``day`` ends in Brasília: PNCP's day is Brasília's."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=BRASILIA)


def final(run: dict[str, Any] | None, day: date) -> bool:
    """A recorded run of ``day`` ended cleanly and started after the day had ended in Brasília:
    nothing PNCP lists for that day can be missing from it."""
    if not run or run.get("outcome") != "ok":
        return False
    started = listing_started(run)
    return started is not None and started >= day_end(day)


def listing_started(run: dict[str, Any]) -> datetime | None:
    """When a day's recorded run started: its end less its duration (None for no or an unreadable record)."""
    try:
        finished = datetime.fromisoformat(str(run["finished_at"]))
        return finished - timedelta(seconds=float(run.get("duration_s") or 0.0))
    except (KeyError, TypeError, ValueError):
        return None


async def day_status(store: ObjectStore, day: date) -> DayStatus:
    status = DayStatus(day.isoformat())
    listing = DayState(store, CONTRATACOES, day)
    details = DayState(store, DETAILS, day)
    contratacoes = await listing.committed()
    done = await details.committed()
    status.contratacoes = len(contratacoes.keys)
    status.contratacoes_failed = len(await listing.failures())
    status.details = len(done.keys)
    itens, arquivos = set(done.meta.get("itens", [])), set(done.meta.get("arquivos", []))
    gone = set(done.meta.get("gone", {}))
    status.itens_done, status.arquivos_done, status.gone = len(itens), len(arquivos), len(gone)
    status.details_failed = len(await details.failures())
    status.pending = len(contratacoes.keys - (itens & arquivos) - gone)
    current, fetched = contratacoes.meta.get("versions", {}), done.meta.get("versions", {})
    status.details_stale = sum(1 for cid, v in fetched.items() if current.get(cid, v) != v)
    status.resultados_pending = sum(1 for poll in done.meta.get("polls", {}).values() if "due" in poll)
    contratos = DayState(store, CONTRATOS, day)
    status.contratos = len((await contratos.committed()).keys)
    status.contratos_failed = len(await contratos.failures())
    status.parts = await listing.staged_parts() + await details.staged_parts() + await contratos.staged_parts()
    leases = 0
    for state in (listing, details, contratos):
        name = state.dataset.name
        _, doc = await Lease(store, name, day, "status", 0).current()
        leases += doc is not None
        if Lease.is_live(doc):
            assert doc is not None
            status.held_by[name] = Lease.describe(doc)
        run = await state.last_run()
        if run:
            status.last_run[name] = {
                k: run.get(k) for k in ("run_id", "command", "outcome", "finished_at", "duration_s")
            }
    # Any run of the day takes a lease first, so no lease and nothing else means nothing ever ran.
    status.never_run = not (
        leases
        or status.last_run
        or contratacoes.keys
        or done.keys
        or status.contratos
        or status.contratacoes_failed
        or status.parts
    )
    return status


async def read_status(store: ObjectStore, days: list[date], concurrency: int = 16) -> list[DayStatus]:
    """Status of each day, in order."""
    results: dict[date, DayStatus] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(day: date) -> None:
        async with limiter:
            results[day] = await day_status(store, day)

    async with anyio.create_task_group() as tg:
        for day in days:
            tg.start_soon(one, day)
    return [results[d] for d in days]


async def read_dest_status(settings: Settings, days: list[date]) -> list[DayStatus]:
    """Status of each day at the configured destination, without creating anything there."""
    store = open_store(settings.dest, s3_endpoint=settings.s3_endpoint)
    async with store:
        state = store.local_path("_state")
        if state is not None and not state.parent.is_dir():
            raise ConfigError(
                f"destination {settings.dest} does not exist: nothing was ever ingested there; check --dest / PNCP_DEST"
            )
        if state is None:
            await store.check()  # S3: a missing bucket or bad credentials is an error, not "nothing yet"
        return await read_status(store, days)
