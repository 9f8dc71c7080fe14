"""Per-day state in ``{dest}/_state/``: leases, staged parts, commit records, the manifest.

Layout for one (dataset, day), e.g. ``_state/pncp/2025-10-22/``::

    lease/0000000007.json      lease epochs; the highest one says who holds the day
    parts/<commit>.parquet     staged checkpoint data (invisible to readers)
    commits/<commit>.json      commit record: names its part and the keys in it
    manifest.json              what the published file holds (keys, rows, commits folded in)

The protocol: a part is written, then its commit record (a conditional create); only then
are its rows "done". A part without a commit record is debris from a crash and is removed
by the next run of the day. Publishing merges the published file with the committed parts
into a new published file (one atomic replace), then writes the manifest, then deletes the
folded parts and records. A crash between any two steps leaves either state readable, and
re-doing a publish is harmless because the merge is keyed.

Lost answers: a storage request can be carried out and its answer lost (a dropped connection,
a timeout); the S3 client then sends it again. Every step must read right when that happens:

* Plain writes (parts, the published file, the manifest, lease renewals) replace an object
  whole, so writing it twice is writing it once.
* Exclusive creates (commit records, lease epochs) go through :func:`create`: when the store
  answers "already exists", what is there is read back, and if it holds exactly the bytes
  this write sent, the create was ours and succeeded. Each document carries its run's id and
  the instant it was made (to the microsecond), so no other writer sends the same bytes;
  only someone else's object is a conflict.
* Deletes: a key that is already gone is deleted, whoever removed it (the stores treat a
  missing key as done).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa

from .dates import utcnow
from .errors import LeaseHeldError, LeaseLostError
from .records.schema import Dataset
from .storage import ObjectStore
from .writer import merge

STATE_ROOT = "_state"


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()


def accumulate(meta: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Fold a commit's meta into an aggregate: lists are unioned (sorted), dicts updated."""
    out = dict(meta)
    for name, value in more.items():
        if isinstance(value, list):
            out[name] = sorted(set(out.get(name, [])) | set(value))
        elif isinstance(value, dict):
            out[name] = {**out.get(name, {}), **value}
        else:
            out[name] = value
    return out


async def create(store: ObjectStore, key: str, data: bytes) -> bool:
    """Create ``key`` holding ``data`` if it does not exist: True if it now holds our write.

    "Already exists" with our own bytes is our write whose answer was lost and retried (see
    the protocol above): it succeeded. ``data`` must be unique to this write."""
    if await store.put_if_absent(key, data):
        return True
    return await store.get(key) == data


@dataclass
class Manifest:
    """What the published file of a day holds, plus the dataset's aggregated commit meta."""

    keys: set[str] = field(default_factory=set)
    rows: int = 0
    folded: list[str] = field(default_factory=list)
    published_at: str | None = None
    run_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes | None) -> Manifest:
        if not data:
            return cls()
        doc = json.loads(data)
        return cls(
            set(doc.get("keys", [])),
            doc.get("rows", 0),
            doc.get("folded", []),
            doc.get("published_at"),
            doc.get("run_id"),
            doc.get("meta", {}),
        )

    def dump(self) -> bytes:
        return _dumps(
            {
                "keys": sorted(self.keys),
                "rows": self.rows,
                "folded": self.folded,
                "published_at": self.published_at,
                "run_id": self.run_id,
                "meta": self.meta,
            }
        )


@dataclass(frozen=True)
class Commit:
    name: str
    keys: list[str]
    meta: dict[str, Any]


class DayState:
    """The state of one dataset's day, and the checkpoint/publish protocol over it."""

    def __init__(self, store: ObjectStore, dataset: Dataset, day: date) -> None:
        self.store = store
        self.dataset = dataset
        self.day = day
        self.prefix = f"{STATE_ROOT}/{dataset.name}/{day.isoformat()}"

    def _part_key(self, name: str) -> str:
        return f"{self.prefix}/parts/{name}.parquet"

    def _commit_key(self, name: str) -> str:
        return f"{self.prefix}/commits/{name}.json"

    async def manifest(self) -> Manifest:
        return Manifest.parse(await self.store.get(f"{self.prefix}/manifest.json"))

    async def commits(self) -> list[Commit]:
        """Commit records not yet deleted, oldest first (names sort by time)."""
        keys = await self.store.list(f"{self.prefix}/commits/")
        found = []
        for key in keys:
            data = await self.store.get(key)
            if data is None:
                continue
            doc = json.loads(data)
            found.append(Commit(doc["name"], doc["keys"], doc.get("meta", {})))
        return sorted(found, key=lambda c: c.name)

    async def committed(self) -> Manifest:
        """Everything done for this day: the published manifest plus the committed, unpublished parts."""
        done = await self.manifest()
        for commit in await self.commits():
            done.keys.update(commit.keys)
            done.meta = accumulate(done.meta, commit.meta)
        return done

    async def committed_keys(self) -> set[str]:
        """Keys that are done for this day: published or in a committed part."""
        return (await self.committed()).keys

    async def commit(self, name: str, part: Path | None, keys: list[str], meta: dict[str, Any] | None = None) -> None:
        """Stage ``part`` and commit it: after this returns, its rows survive any crash.

        ``part`` may be None for a commit that only records meta (e.g. compras found gone)."""
        if part is not None:
            await self.store.put_file(self._part_key(name), part)
        record = {
            "name": name,
            "part": self._part_key(name) if part is not None else None,
            "keys": keys,
            "rows": len(keys),
            "meta": meta or {},
            "committed_at": utcnow().isoformat(),
        }
        if not await create(self.store, self._commit_key(name), _dumps(record)):
            raise RuntimeError(f"commit {name} already exists with other content")  # names are unique per run: a bug

    async def last_run(self) -> dict[str, Any] | None:
        """The outcome of the last run that finished (or failed) on this day, for ``status``."""
        data = await self.store.get(f"{self.prefix}/last_run.json")
        return json.loads(data) if data else None

    async def record_run(self, doc: dict[str, Any]) -> None:
        await self.store.put(f"{self.prefix}/last_run.json", _dumps(doc))

    async def staged_parts(self) -> int:
        return len(await self.store.list(f"{self.prefix}/parts/"))

    async def failures(self) -> dict[str, Any]:
        """Work of this day that failed on its last attempt, with reasons (not done: retried next run)."""
        data = await self.store.get(f"{self.prefix}/failures.json")
        return json.loads(data) if data else {}

    async def save_failures(self, failures: dict[str, Any]) -> None:
        await self.store.put(f"{self.prefix}/failures.json", _dumps(failures))

    async def remove_uncommitted(self) -> int:
        """Delete what a crashed run left half-done: parts without a commit record, and the
        temp files / unfinished uploads of writes it was in the middle of. Call under the lease."""
        committed = {c.name for c in await self.commits()}
        debris = [
            k
            for k in await self.store.list(f"{self.prefix}/parts/")
            if k.rsplit("/", 1)[-1].removesuffix(".parquet") not in committed
        ]
        await self.store.delete(debris)
        leftovers = await self.store.remove_debris(f"{self.prefix}/")
        leftovers += await self.store.remove_debris(f"{self.dataset.partition(self.day)}/")
        return len(debris) + leftovers

    async def publish(self, run_id: str) -> int:
        """Fold committed parts into the published file. Returns how many commits were folded."""
        manifest = await self.manifest()
        commits = await self.commits()
        done = [c for c in commits if c.name in manifest.folded]
        pending = [c for c in commits if c.name not in manifest.folded]
        if not pending:
            await self._forget(done)
            return 0
        with_rows = [c for c in pending if c.keys]
        rows, keys = manifest.rows, list(manifest.keys)
        if with_rows:
            rows, keys = await self._merge(with_rows)
        meta = manifest.meta
        for commit in pending:
            meta = accumulate(meta, commit.meta)
        new = Manifest(set(keys), rows, [c.name for c in pending], utcnow().isoformat(), run_id, meta)
        await self.store.put(f"{self.prefix}/manifest.json", new.dump())
        await self._forget(done + pending)
        return len(pending)

    async def _merge(self, pending: list[Commit]) -> tuple[int, list[str]]:
        published_key = self.dataset.published_key(self.day)
        with tempfile.TemporaryDirectory(prefix="pncp-publish-") as tmp:
            workdir = Path(tmp)
            published = await self._fetch(published_key, workdir / "published.parquet")
            parts = [await self._fetch(self._part_key(c.name), workdir / f"{c.name}.parquet") for c in pending]
            missing = [c.name for c, p in zip(pending, parts, strict=True) if p is None]
            if missing:
                raise RuntimeError(f"committed parts are missing from {self.store.url}: {missing}")
            out = workdir / "out.parquet"
            rows, keys = await anyio.to_thread.run_sync(
                merge, published, [p for p in parts if p is not None], out, self.dataset
            )
            await self.store.put_file(published_key, out)
        # Arrow's allocator keeps freed pages for reuse; a merge's are not needed until the next one.
        pa.default_memory_pool().release_unused()
        return rows, keys

    async def _fetch(self, key: str, path: Path) -> Path | None:
        local = self.store.local_path(key)
        if local is not None:
            return local if local.exists() else None
        return path if await self.store.get_file(key, path) else None

    async def _forget(self, commits: list[Commit]) -> None:
        # Records first: a part without a record is debris, a record without its part is not.
        await self.store.delete([self._commit_key(c.name) for c in commits])
        await self.store.delete([self._part_key(c.name) for c in commits])


# -- leases ------------------------------------------------------------------------------------


def _holder() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _process_gone(doc: dict[str, Any]) -> bool:
    """True if the holder ran on this host and its process no longer exists (killed, crashed)."""
    if doc.get("host") != socket.gethostname() or not isinstance(doc.get("pid"), int):
        return False
    try:
        os.kill(doc["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    """One writer per (dataset, day).

    Leases are a log of epochs, each created with a conditional create, so exactly one run
    wins each epoch: a run takes the day by creating epoch N+1 when epoch N is released,
    expired, or held by a process that is gone from this host. The holder renews epoch N in
    place and checks nobody has created N+1 before it writes (a stalled holder whose lease
    was taken over stops with LeaseLostError instead of writing over the new holder).
    """

    def __init__(self, store: ObjectStore, dataset: str, day: date, run_id: str, ttl: float) -> None:
        self.store = store
        self.prefix = f"{STATE_ROOT}/{dataset}/{day.isoformat()}/lease/"
        self.what = f"{dataset} {day.isoformat()}"
        self.run_id = run_id
        self.ttl = ttl
        self.epoch: int | None = None

    def _key(self, epoch: int) -> str:
        return f"{self.prefix}{epoch:010d}.json"

    def _doc(self, state: str) -> bytes:
        now = utcnow()
        return _dumps(
            {
                "state": state,
                "run_id": self.run_id,
                **_holder(),
                "acquired_at": now.isoformat(),
                "expires_at": (now + timedelta(seconds=self.ttl)).isoformat(),
            }
        )

    async def current(self) -> tuple[int, dict[str, Any] | None]:
        """The highest epoch and its document (0, None when the day was never leased)."""
        keys = await self.store.list(self.prefix)
        epochs = sorted(int(k.rsplit("/", 1)[-1].split(".")[0]) for k in keys if k.endswith(".json"))
        if not epochs:
            return 0, None
        data = await self.store.get(self._key(epochs[-1]))
        return epochs[-1], (json.loads(data) if data else None)

    @staticmethod
    def describe(doc: dict[str, Any]) -> str:
        return f"run {doc.get('run_id')} (pid {doc.get('pid')} on {doc.get('host')}, lease expires {doc.get('expires_at')})"

    @staticmethod
    def is_live(doc: dict[str, Any] | None) -> bool:
        if not doc or doc.get("state") != "held":
            return False
        if datetime.fromisoformat(doc["expires_at"]) <= utcnow():
            return False
        return not _process_gone(doc)

    async def acquire(self) -> None:
        epoch, doc = await self.current()
        if self.is_live(doc):
            assert doc is not None
            raise LeaseHeldError(
                f"{self.what} is held by {self.describe(doc)}: wait for it to finish, or run another day"
            )
        if not await create(self.store, self._key(epoch + 1), self._doc("held")):
            _, winner = await self.current()
            raise LeaseHeldError(f"{self.what} was just taken by {self.describe(winner or {})}: wait for it to finish")
        self.epoch = epoch + 1
        await self.store.delete([self._key(e) for e in range(max(1, epoch - 2), epoch + 1)])

    async def ensure(self) -> None:
        """Raise LeaseLostError if another run has taken the day since we acquired it."""
        assert self.epoch is not None
        if await self.store.get(self._key(self.epoch + 1)) is not None:
            raise LeaseLostError(
                f"{self.what}: our lease expired and another run took the day; stopping without writing more"
            )

    async def renew(self) -> None:
        await self.ensure()
        assert self.epoch is not None
        await self.store.put(self._key(self.epoch), self._doc("held"))

    async def release(self) -> None:
        if self.epoch is not None:
            await self.store.put_if_absent(self._key(self.epoch + 1), self._doc("released"))
            self.epoch = None


@asynccontextmanager
async def hold(store: ObjectStore, dataset: str, day: date, run_id: str, ttl: float) -> AsyncIterator[Lease]:
    """Hold the (dataset, day) lease for the body, renewing it in the background."""
    lease = Lease(store, dataset, day, run_id, ttl)
    await lease.acquire()
    try:
        async with anyio.create_task_group() as tg:

            async def renew_forever() -> None:
                while True:
                    await anyio.sleep(ttl / 3)
                    await lease.renew()

            tg.start_soon(renew_forever)
            try:
                yield lease
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await lease.release()
