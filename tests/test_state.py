"""Leases and the checkpoint/publish protocol, on a local folder and on S3."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import anyio
import pyarrow.parquet as pq
import pytest

from pncp_ingest.errors import LeaseHeldError, LeaseLostError
from pncp_ingest.records.schema import CONTRATACOES
from pncp_ingest.state import DayState, Lease, create
from pncp_ingest.writer import write_part

DAY = date(2025, 10, 22)


def lease_doc(**over) -> bytes:
    now = datetime.now(UTC)
    doc = {
        "state": "held",
        "run_id": "other-run",
        "host": "another-host",
        "pid": 1,
        "acquired_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=10)).isoformat(),
    }
    doc.update(over)
    return json.dumps(doc).encode()


async def test_a_live_lease_blocks_and_a_released_one_does_not(store):
    first = Lease(store, "pncp", DAY, "run-a", ttl=60)
    await first.acquire()
    with pytest.raises(LeaseHeldError, match="run-a"):
        await Lease(store, "pncp", DAY, "run-b", ttl=60).acquire()
    await first.release()
    second = Lease(store, "pncp", DAY, "run-b", ttl=60)
    await second.acquire()
    await second.ensure()


async def test_an_expired_lease_of_another_host_is_taken_over(store):
    expired = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await store.put(f"_state/pncp/{DAY}/lease/0000000001.json", lease_doc(expires_at=expired))
    await Lease(store, "pncp", DAY, "run-b", ttl=60).acquire()


async def test_a_live_lease_of_another_host_is_respected(store):
    await store.put(f"_state/pncp/{DAY}/lease/0000000001.json", lease_doc())
    with pytest.raises(LeaseHeldError, match="another-host"):
        await Lease(store, "pncp", DAY, "run-b", ttl=60).acquire()


async def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)

    await store.put(f"_state/pncp/{DAY}/lease/0000000001.json", lease_doc(host=socket.gethostname(), pid=pid))
    await Lease(store, "pncp", DAY, "run-b", ttl=60).acquire()


async def test_a_holder_whose_lease_was_taken_over_stops(store):
    stalled = Lease(store, "pncp", DAY, "run-a", ttl=0.01)
    await stalled.acquire()
    await anyio.sleep(0.05)  # let the lease expire: this is the condition under test, not a wait for one
    await Lease(store, "pncp", DAY, "run-b", ttl=60).acquire()
    with pytest.raises(LeaseLostError):
        await stalled.ensure()


async def test_racing_runs_exactly_one_wins(store):
    winners, losers = [], []

    async def contend(n: int) -> None:
        try:
            await Lease(store, "pncp", DAY, f"run-{n}", ttl=60).acquire()
            winners.append(n)
        except LeaseHeldError:
            losers.append(n)

    async with anyio.create_task_group() as tg:
        for n in range(12):
            tg.start_soon(contend, n)
    assert len(winners) == 1 and len(losers) == 11


def rows(keys: list[str], run: str = "r") -> list[dict]:
    now = datetime.now(UTC)
    return [
        {"numeroControlePNCP": k, "objetoCompra": f"{k} from {run}", "_ingested_at": now, "_run_id": run} for k in keys
    ]


async def test_commit_publish_and_crash_debris(store, tmp_path: Path):
    state = DayState(store, CONTRATACOES, DAY)
    part = tmp_path / "p.parquet"
    write_part(rows(["a", "b"]), CONTRATACOES.schema, part)
    await state.commit("0001", part, ["a", "b"])
    # A crashed run's part with no commit record: debris, not data.
    await store.put_file(f"{state.prefix}/parts/0002.parquet", part)
    assert await state.remove_uncommitted() == 1
    assert await state.committed_keys() == {"a", "b"}
    assert await state.publish("r") == 1
    # Publishing again with nothing pending changes nothing; a new part with an overlapping key wins.
    assert await state.publish("r") == 0
    write_part(rows(["b", "c"], run="r2"), CONTRATACOES.schema, part)
    await state.commit("0003", part, ["b", "c"])
    assert await state.publish("r2") == 1
    manifest = await state.manifest()
    assert manifest.keys == {"a", "b", "c"} and manifest.rows == 3
    assert await store.list(f"{state.prefix}/parts/") == []
    local = tmp_path / "published.parquet"
    assert await store.get_file(CONTRATACOES.published_key(DAY), local)
    table = pq.read_table(local)
    got = dict(
        zip(table.column("numeroControlePNCP").to_pylist(), table.column("objetoCompra").to_pylist(), strict=True)
    )
    assert got == {"a": "a from r", "b": "b from r2", "c": "c from r2"}


async def test_a_publish_interrupted_before_cleanup_is_not_duplicated(store, tmp_path: Path):
    state = DayState(store, CONTRATACOES, DAY)
    part = tmp_path / "p.parquet"
    write_part(rows(["a", "b"]), CONTRATACOES.schema, part)
    await state.commit("0001", part, ["a", "b"])
    await state.publish("r")
    # Simulate a crash after the published file was replaced but before the manifest:
    # the commit record and part are back, the manifest is the old one.
    await store.put_file(f"{state.prefix}/parts/0001.parquet", part)
    await store.put(f"{state.prefix}/commits/0001.json", json.dumps({"name": "0001", "keys": ["a", "b"]}).encode())
    await store.delete([f"{state.prefix}/manifest.json"])
    assert await state.publish("r") == 1
    local = tmp_path / "published.parquet"
    await store.get_file(CONTRATACOES.published_key(DAY), local)
    assert sorted(pq.read_table(local).column("numeroControlePNCP").to_pylist()) == ["a", "b"]


async def test_leftovers_of_interrupted_writes_are_swept(store, tmp_path: Path):
    state = DayState(store, CONTRATACOES, DAY)
    local = store.local_path(f"{state.prefix}/parts/x")
    if local is not None:  # a local write killed between temp file and rename
        local.parent.mkdir(parents=True, exist_ok=True)
        (local.parent / ".0009.parquet.tmp-0123456789abcdef").write_bytes(b"half")
        published = store.local_path(CONTRATACOES.published_key(DAY))
        published.parent.mkdir(parents=True, exist_ok=True)
        (published.parent / ".part-0.parquet.tmp-0123456789abcdef").write_bytes(b"half")
        assert await state.remove_uncommitted() == 2
        assert list(local.parent.iterdir()) == [] and list(published.parent.iterdir()) == []
    else:
        assert await state.remove_uncommitted() == 0


async def test_a_create_that_finds_its_own_bytes_is_ours_and_anyone_elses_is_a_conflict(store):
    """What a retried create sees when its first attempt was carried out but its answer lost."""

    key = f"_state/pncp/{DAY}/commits/0001.json"
    assert await create(store, key, b'{"run_id": "a"}') is True
    assert await create(store, key, b'{"run_id": "a"}') is True  # the same write, again
    assert await create(store, key, b'{"run_id": "b"}') is False
    assert await store.get(key) == b'{"run_id": "a"}'
