"""Storage that loses answers: the real CLI and the store against SeaweedFS behind a proxy that
answers ``503 SlowDown`` without forwarding, or carries a request out and drops the connection
before any response byte (``pncp_ingest.testing.s3_faults``).

A retried conditional create that finds its own object is ours; only someone else's is a
conflict. A storage error that outlasts the client's retries exits 4 with one line.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError
from bronze import cli_command, cli_env, kill_at_a_random_moment, list_keys, read_bronze, run_cli
from exactness import assert_recoverable
from fixtures_s3 import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY

from pncp_ingest.errors import StorageError
from pncp_ingest.records.schema import CONTRATACOES, CONTRATACOES_SCHEMA, DETAILS_SCHEMA
from pncp_ingest.state import DayState, Lease, create
from pncp_ingest.storage import S3Store, open_store
from pncp_ingest.testing.s3_faults import S3FaultProxy
from pncp_ingest.writer import write_part

pytestmark = pytest.mark.s3

DAY = "2025-10-22"
DAYS = ["2025-10-20", "2025-10-21", "2025-10-22"]


# -- the proxy itself --------------------------------------------------------------------


def raw_client(endpoint: str) -> Any:
    """One attempt, no retries: what the proxy does is what the client sees."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_the_proxy_answers_slowdown_without_forwarding(s3_faults: S3FaultProxy, s3_bucket: str, s3_client) -> None:
    s3_faults.set_faults(slowdown=1.0)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(f"{s3_faults.url}/{s3_bucket}/k", data=b"x", method="PUT"))
    assert info.value.code == 503
    assert b"<Code>SlowDown</Code>" in info.value.read()
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    assert s3_faults.stats == {"forwarded": 0, "slowdown": 1, "dropped": 0}


def test_a_dropped_request_was_carried_out_but_its_answer_never_arrives(
    s3_faults: S3FaultProxy, s3_bucket: str, s3_client
) -> None:
    client = raw_client(s3_faults.url)
    s3_faults.fail_next("dropped", method="PUT")
    with pytest.raises(ConnectionClosedError):
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"landed", IfNoneMatch="*")
    assert s3_client.get_object(Bucket=s3_bucket, Key="k")["Body"].read() == b"landed"
    # Relayed untouched otherwise: the second create is refused by S3 itself.
    with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=s3_bucket, Key="k", Body=b"again", IfNoneMatch="*")
    assert client.head_object(Bucket=s3_bucket, Key="k")["ContentLength"] == len(b"landed")


def test_the_shares_are_seeded(s3_endpoint: str) -> None:
    def fates(seed: int) -> list[int]:
        with S3FaultProxy(s3_endpoint, slowdown=0.3, seed=seed) as proxy:
            return [status(f"{proxy.url}/healthz") for _ in range(60)]

    assert fates(3) == fates(3) != fates(4)
    assert set(fates(3)) == {200, 503} and 8 < fates(3).count(503) < 30


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def row(key: str) -> dict[str, Any]:
    return {"numeroControlePNCP": key, "_ingested_at": datetime.now(UTC), "_run_id": "r"}


# -- conditional creates whose answer is lost -------------------------------------------


@pytest.fixture
async def faulty_store(s3_faults: S3FaultProxy, s3_bucket: str, anyio_backend) -> Any:
    store = open_store(f"s3://{s3_bucket}/bronze", s3_endpoint=s3_faults.url)
    await store.check()
    yield store
    await store.aclose()


@pytest.mark.anyio
async def test_a_create_whose_answer_was_lost_is_ours(faulty_store: S3Store, s3_faults: S3FaultProxy) -> None:
    # The bare conditional PUT cannot tell: S3 carried it out, the retry is answered 412.
    s3_faults.fail_next("dropped", method="PUT", path_contains="/bare")
    assert await faulty_store.put_if_absent("_state/bare", b"mine") is False
    assert await faulty_store.get("_state/bare") == b"mine"
    # create() reads back what is there: our own bytes are our write.
    s3_faults.fail_next("dropped", method="PUT", path_contains="/record")
    assert await create(faulty_store, "_state/record", b"mine") is True
    # Someone else's object is still a conflict.
    assert await create(faulty_store, "_state/record", b"theirs") is False
    assert await faulty_store.get("_state/record") == b"mine"
    assert s3_faults.stats["dropped"] == 2


@pytest.mark.anyio
async def test_a_commit_whose_record_answer_was_lost_is_committed(
    faulty_store: S3Store, s3_faults: S3FaultProxy, tmp_path: Path
) -> None:
    state = DayState(faulty_store, CONTRATACOES, date.fromisoformat(DAY))
    part = tmp_path / "p.parquet"
    write_part([row("a"), row("b")], CONTRATACOES.schema, part)
    s3_faults.fail_next("dropped", method="PUT", path_contains="/commits/")
    await state.commit("0001", part, ["a", "b"])
    assert await state.committed_keys() == {"a", "b"}
    assert await state.publish("r") == 1
    assert (await state.manifest()).keys == {"a", "b"}


@pytest.mark.anyio
async def test_a_lease_whose_create_answer_was_lost_is_held_by_us(
    faulty_store: S3Store, s3_faults: S3FaultProxy
) -> None:
    lease = Lease(faulty_store, "pncp", date.fromisoformat(DAY), "run-a", ttl=60)
    s3_faults.fail_next("dropped", method="PUT", path_contains="/lease/")
    await lease.acquire()
    await lease.ensure()
    assert lease.epoch == 1 and s3_faults.stats["dropped"] == 1
    await lease.release()


@pytest.mark.anyio
async def test_a_delete_whose_answer_was_lost_is_done(faulty_store: S3Store, s3_faults: S3FaultProxy) -> None:
    await faulty_store.put("_state/gone", b"x")
    s3_faults.fail_next("dropped", method="POST")  # DeleteObjects
    await faulty_store.delete(["_state/gone"])
    assert await faulty_store.get("_state/gone") is None and s3_faults.stats["dropped"] == 1


@pytest.mark.anyio
async def test_an_upload_whose_connections_all_drop_is_one_storage_error_naming_the_key(
    faulty_store: S3Store, s3_faults: S3FaultProxy, tmp_path: Path
) -> None:
    # (Every attempt backs off up to 2**n s: one operation here; the CLI test below covers SlowDown.)
    part = tmp_path / "f.bin"
    part.write_bytes(b"x" * 1000)
    s3_faults.set_faults(drop=1.0)
    with pytest.raises(StorageError) as info:
        await faulty_store.put_file("_state/f.parquet", part)
    message = str(info.value)
    assert info.value.exit_code == 4 and "\n" not in message
    assert message.startswith(f"S3 upload of s3://{faulty_store.bucket}/bronze/_state/f.parquet failed "), message
    assert "(after the client's retries)" in message and "ConnectionClosedError" in message, message
    assert s3_faults.stats["dropped"] >= 6


# -- the CLI against faulty storage ------------------------------------------------------


def faulty_env(proxy: S3FaultProxy) -> dict[str, str]:
    return cli_env(PNCP_S3_ENDPOINT_URL=proxy.url, PNCP_CONCURRENCY="8")


def until_ok(args: list[str], env: dict[str, str], limit: int = 15) -> list[int]:
    """Run the CLI until it exits 0; every run must end in 0, 1 or 4, with no bug and no traceback."""
    codes: list[int] = []
    for _ in range(limit):
        result = run_cli(*args, env=env, timeout=300)
        codes.append(result.code)
        assert "unexpected" not in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert result.code in (0, 1, 4), (codes, result.stderr)
        if result.code == 4:
            (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
            assert "S3" in line, line
        if result.code == 0:
            return codes
    raise AssertionError(f"no run exited 0 in {limit}: {codes}")


def commands(sim: Any, dest: str) -> dict[str, list[str]]:
    common = ["--date", DAYS[0], "--to", DAYS[-1], "--dest", dest, "--base-url", sim.base_url]
    return {
        "contratacoes": ["contratacoes", *common, "--checkpoint-every", "10"],
        "details": ["details", *common, "--checkpoint-every", "5"],
    }


def assert_exactly_truth(sim: Any, dest: str) -> None:
    """Each contratação and its details landed once, every value exact (the exactness oracle)."""
    contratacoes = read_bronze(dest).to_pylist()
    details = read_bronze(dest, "pncp_details").to_pylist()
    by_id = {r["numeroControlePNCP"]: r for r in contratacoes}
    details_by_id = {r["numeroControlePNCP"]: r for r in details}
    assert len(by_id) == len(contratacoes) and len(details_by_id) == len(details), "a row landed twice"
    expected: set[str] = set()
    for day in DAYS:
        truth = sim.truth(day, details=True, exact=True)
        for raw in truth["contratacoes"]:
            cid = raw["numeroControlePNCP"]
            expected.add(cid)
            assert_recoverable(CONTRATACOES_SCHEMA, raw, by_id[cid])
            for kind in ("itens", "arquivos"):
                element = DETAILS_SCHEMA.field(kind).type.value_type
                sent, landed = truth["details"][cid][kind], details_by_id[cid][kind]
                assert len(sent) == len(landed), (cid, kind)
                for raw_element, row in zip(sent, landed, strict=True):
                    assert_recoverable(element, raw_element, row)
    assert set(by_id) == expected == set(details_by_id)
    assert [k for k in list_keys(dest, "_state", hidden=True) if "/parts/" in k or "/commits/" in k] == []


def test_at_a_quarter_of_requests_faulted_runs_end_in_0_1_or_4_and_reruns_end_exactly_at_truth(
    sim_factory, s3_faults: S3FaultProxy, s3_dest: str
) -> None:
    sim = sim_factory(seed=17, per_day=40)
    s3_faults.set_faults(slowdown=0.125, drop=0.125)
    env = faulty_env(s3_faults)
    runs = {name: until_ok(args, env) for name, args in commands(sim, s3_dest).items()}
    assert s3_faults.stats["dropped"] > 20 and s3_faults.stats["slowdown"] > 20, s3_faults.stats
    print(f"exit codes at 25% faults: {json.dumps(runs)}; proxy {s3_faults.stats}")
    s3_faults.set_faults()
    assert_exactly_truth(sim, s3_dest)


def test_at_five_percent_of_requests_faulted_every_run_exits_0_at_its_first_try(
    sim_factory, s3_faults: S3FaultProxy, s3_dest: str
) -> None:
    sim = sim_factory(seed=19, per_day=40)
    s3_faults.set_faults(slowdown=0.025, drop=0.025)
    env = faulty_env(s3_faults)
    runs = {name: until_ok(args, env, limit=1) for name, args in commands(sim, s3_dest).items()}
    assert s3_faults.stats["dropped"] and s3_faults.stats["slowdown"], s3_faults.stats
    print(f"exit codes at 5% faults: {json.dumps(runs)}; proxy {s3_faults.stats}")
    s3_faults.set_faults()
    assert_exactly_truth(sim, s3_dest)


def test_sigkill_at_random_instants_with_storage_faults_still_ends_exactly_at_truth(
    sim_factory, s3_faults: S3FaultProxy, s3_dest: str
) -> None:
    sim = sim_factory(seed=23, per_day=40, latency_ms=5)
    s3_faults.set_faults(slowdown=0.1, drop=0.1)
    env = faulty_env(s3_faults)
    rng = random.Random(2027)
    kills = 0
    for name, args in commands(sim, s3_dest).items():

        def progress(dataset: str = "pncp" if name == "contratacoes" else "pncp_details") -> int:
            return len([k for k in list_keys(s3_dest, f"_state/{dataset}/") if "/commits/" in k])

        for _ in range(2):
            kills += kill_at_a_random_moment(cli_command(*args), env, rng, progress, commits=(1, 3), instant=(1, 4))
        until_ok(args, env)
    assert kills >= 2, "the runs finished before they could be killed: make the days slower"
    s3_faults.set_faults()
    assert_exactly_truth(sim, s3_dest)


def test_storage_that_keeps_failing_exits_4_with_one_line_and_no_traceback(
    sim, s3_faults: S3FaultProxy, s3_dest: str
) -> None:
    # The bucket check passes; then the lease's create is answered SlowDown at every attempt.
    for _ in range(6):
        s3_faults.fail_next("slowdown", method="PUT", path_contains="/lease/")
    result = run_cli(
        "contratacoes", "--date", DAY, "--dest", s3_dest, "--base-url", sim.base_url, env=faulty_env(s3_faults)
    )
    assert result.code == 4, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert f"{s3_dest}/_state/pncp/{DAY}/lease/" in line and "SlowDown" in line and "after 6 attempts" in line, line
    # Nothing answers at all: the bucket check gives up after its attempts, the same way.
    s3_faults.set_faults(slowdown=1.0)
    result = run_cli(
        "contratacoes", "--date", DAY, "--dest", s3_dest, "--base-url", sim.base_url, env=faulty_env(s3_faults)
    )
    assert result.code == 4 and "Traceback" not in result.stderr, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert s3_dest in line and "503" in line and "after 3 attempts" in line, line
