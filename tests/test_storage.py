"""The ObjectStore contract, on both backends (a local folder and real S3: SeaweedFS on loopback).

No mocks: the ``[s3]`` variants need the server from ``bash scripts/s3-local.sh start``.
"""

from __future__ import annotations

import os
import re
import socket
import traceback
from pathlib import Path

import anyio
import pytest

from pncp_ingest.errors import ConfigError, StorageError, StorageUnreachableError
from pncp_ingest.storage import LocalStore, ObjectStore, S3Store, open_store
from pncp_ingest.storage._keys import is_temp_name, temp_name

pytestmark = pytest.mark.anyio


def _is_s3(store: ObjectStore) -> bool:
    return isinstance(store, S3Store)


# -- open_store ------------------------------------------------------------------------


def test_open_store_parses_destinations(tmp_path: Path) -> None:
    s = open_store("s3://my-bucket/bronze/", s3_endpoint="http://127.0.0.1:9000")
    assert isinstance(s, S3Store)
    assert (s.bucket, s.prefix, s.url, s.endpoint_url) == (
        "my-bucket",
        "bronze",
        "s3://my-bucket/bronze",
        "http://127.0.0.1:9000",
    )
    s = open_store("s3://my-bucket")
    assert isinstance(s, S3Store) and s.prefix == "" and s.url == "s3://my-bucket"
    s = open_store("s3://my.bucket-1/a/b")
    assert isinstance(s, S3Store) and s.prefix == "a/b"
    local = open_store(str(tmp_path / "bronze"))
    assert isinstance(local, LocalStore) and local.url == str(tmp_path / "bronze")
    assert local.local_path("a/b.parquet") == tmp_path / "bronze" / "a" / "b.parquet"


@pytest.mark.parametrize(
    ("dest", "needle"),
    [
        ("s3://", "no bucket name"),
        ("s3:///x", "no bucket name"),
        ("s3://Bad_Bucket/x", "'Bad_Bucket' is invalid"),
        ("s3://ab", "'ab' is invalid"),
        ("s3://192.168.1.1/x", "IP address"),
        ("s3://bucket/a//b", "empty"),
        ("s3://bucket/a/../b", "'..'"),
        ("gs://bucket/x", "unsupported scheme"),
        ("", "empty"),
    ],
)
def test_open_store_rejects_malformed_destinations(dest: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_store(dest)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg
    assert ": use " in msg or ": set " in msg  # names the fix


def test_open_store_rejects_bad_endpoint() -> None:
    with pytest.raises(ConfigError, match="not a URL"):
        open_store("s3://bucket/x", s3_endpoint="127.0.0.1:9000")


# -- the contract, on both backends ----------------------------------------------------


async def test_put_get_overwrite(store: ObjectStore) -> None:
    assert await store.get("a/b.json") is None
    await store.put("a/b.json", b"one")
    assert await store.get("a/b.json") == b"one"
    await store.put("a/b.json", b"two, longer")
    assert await store.get("a/b.json") == b"two, longer"
    await store.put("empty", b"")
    assert await store.get("empty") == b""
    assert await store.get("a") is None  # a "folder" is not an object
    assert await store.get("a/b.json/c") is None


async def test_invalid_keys_are_rejected(store: ObjectStore) -> None:
    for key in ["", "/abs", "a//b", "a/../b", "a/", "./a"]:
        with pytest.raises(ValueError):
            await store.put(key, b"x")


async def test_put_if_absent(store: ObjectStore) -> None:
    assert await store.put_if_absent("_state/lease.json", b"first") is True
    assert await store.put_if_absent("_state/lease.json", b"second") is False
    assert await store.get("_state/lease.json") == b"first"
    await store.delete(["_state/lease.json"])
    assert await store.put_if_absent("_state/lease.json", b"third") is True
    assert await store.get("_state/lease.json") == b"third"


async def test_put_if_absent_race_has_exactly_one_winner(store: ObjectStore) -> None:
    results: dict[int, bool] = {}

    async def writer(i: int) -> None:
        results[i] = await store.put_if_absent("_state/race.json", f"writer-{i}".encode() * 100)

    async with anyio.create_task_group() as tg:
        for i in range(32):
            tg.start_soon(writer, i)
    winners = [i for i, won in results.items() if won]
    assert len(results) == 32
    assert len(winners) == 1, winners
    assert await store.get("_state/race.json") == f"writer-{winners[0]}".encode() * 100


async def test_put_file_get_file_large(store: ObjectStore, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    src = tmp_path / "big.bin"
    data = os.urandom(20 * 1024 * 1024 + 123)
    src.write_bytes(data)
    await store.put_file("big/part-0.parquet", src)
    assert await store.list("big/") == ["big/part-0.parquet"]

    if isinstance(store, S3Store):  # uploaded in parts: the ETag of a multipart object ends in -<parts>
        client = request.getfixturevalue("s3_client")
        head = client.head_object(Bucket=store.bucket, Key=f"{store.prefix}/big/part-0.parquet")
        assert head["ContentLength"] == len(data)
        assert re.search(r"-\d+$", head["ETag"].strip('"')), head["ETag"]

    out = tmp_path / "out" / "copy.bin"
    assert await store.get_file("big/part-0.parquet", out) is True
    assert out.read_bytes() == data

    # Overwrite with put_file, read back again over the existing local file.
    small = tmp_path / "small.bin"
    small.write_bytes(b"small")
    await store.put_file("big/part-0.parquet", small)
    assert await store.get_file("big/part-0.parquet", out) is True
    assert out.read_bytes() == b"small"
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.bin"]  # no temp left behind


async def test_get_file_missing_writes_nothing(store: ObjectStore, tmp_path: Path) -> None:
    out = tmp_path / "dl" / "nothing.bin"
    assert await store.get_file("no/such/key", out) is False
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


async def test_list_is_a_plain_sorted_prefix_listing(store: ObjectStore) -> None:
    keys = ["ab", "abc/1", "abc/2/x.parquet", "abd", "b/ab", "_state/s.json"]
    for k in reversed(keys):
        await store.put(k, b"x")
    assert await store.list("") == sorted(keys)
    assert await store.list("abc/") == ["abc/1", "abc/2/x.parquet"]
    assert await store.list("ab") == ["ab", "abc/1", "abc/2/x.parquet", "abd"]
    assert await store.list("ab/") == []
    assert await store.list("abc/2/x") == ["abc/2/x.parquet"]
    assert await store.list("zzz") == []
    assert await store.list("b/") == ["b/ab"]


async def test_list_is_right_at_once_after_many_deletes(store: ObjectStore) -> None:
    # > 1000 keys: exercises list pagination and delete batching on S3.
    keys = [f"pncp/year=2025/d={i % 3}/k{i:04d}.json" for i in range(1003)]
    limiter = anyio.CapacityLimiter(16)

    async def put(k: str) -> None:
        async with limiter:
            await store.put(k, b"{}")

    async with anyio.create_task_group() as tg:
        for k in keys:
            tg.start_soon(put, k)
    assert await store.list("pncp/") == sorted(keys)

    gone = [k for k in keys if not k.endswith("7.json")]
    await store.delete(gone)
    kept = sorted(set(keys) - set(gone))
    assert await store.list("pncp/") == kept
    assert await store.list("pncp/year=2025/d=1/") == [k for k in kept if "/d=1/" in k]
    await store.delete(kept)
    assert await store.list("") == []
    assert await store.list("pncp/year=2025/") == []


async def test_delete_missing_is_ok(store: ObjectStore) -> None:
    await store.delete([])
    await store.delete(["never/was", "x"])
    await store.put("x", b"1")
    await store.delete(["x", "x", "nope"])
    assert await store.get("x") is None


async def test_messages_and_url_are_printable(store: ObjectStore, dest: str) -> None:
    assert store.url == dest
    assert "minioadmin" not in store.url


# -- local specifics -------------------------------------------------------------------


def test_temp_names_are_hidden_and_never_parquet() -> None:
    for name in ["part-0.parquet", "x.json", "a" * 300 + ".parquet"]:
        t = temp_name(name)
        assert t.startswith(".") and not t.endswith(".parquet") and is_temp_name(t)
        assert len(t.encode()) <= 255
    assert not is_temp_name("part-0.parquet") and not is_temp_name(".hidden")


async def test_local_temp_files_are_never_listed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bronze")
    await store.check()
    await store.put("y/part-0.parquet", b"data")
    await store.put_file("y/part-1.parquet", _write(tmp_path / "src.bin", b"more"))
    assert await store.put_if_absent("y/lease", b"l") is True
    assert await store.put_if_absent("y/lease", b"l2") is False
    folder = tmp_path / "bronze" / "y"
    assert sorted(os.listdir(folder)) == ["lease", "part-0.parquet", "part-1.parquet"]  # no temp left
    # A temp file a crashed writer left behind is invisible to list() and to *.parquet globs.
    leftover = folder / temp_name("part-2.parquet")
    leftover.write_bytes(b"partial")
    assert await store.list("") == ["y/lease", "y/part-0.parquet", "y/part-1.parquet"]
    assert sorted(p.name for p in folder.glob("*.parquet")) == ["part-0.parquet", "part-1.parquet"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def test_local_check_leaves_nothing_and_the_first_write_makes_the_root(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "bronze"
    store = LocalStore(root)
    await store.check()
    assert list(tmp_path.iterdir()) == []  # a run that fails before writing leaves no empty folder
    await store.put("k", b"1")
    assert root.is_dir() and os.listdir(root) == ["k"]


async def test_local_check_path_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    store = LocalStore(tmp_path / "file" / "bronze")
    with pytest.raises(ConfigError) as info:
        await store.check()
    msg = str(info.value)
    assert msg.startswith(f"destination {tmp_path / 'file' / 'bronze'} is not writable (")
    assert msg.endswith(": choose a writable --dest or fix its permissions")

    with pytest.raises(ConfigError, match="it is a file"):
        await LocalStore(tmp_path / "file").check()


async def test_local_check_unwritable_system_path() -> None:
    with pytest.raises(ConfigError, match="is not writable"):
        await LocalStore("/proc/pncp-ingest-test/bronze").check()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
async def test_local_check_read_only_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match=r"Permission denied"):
            await LocalStore(ro / "bronze").check()
    finally:
        ro.chmod(0o700)


# -- S3 check() ------------------------------------------------------------------------


@pytest.mark.s3
async def test_s3_check_writes_nothing(s3_endpoint: str, s3_bucket: str, s3_client) -> None:
    async with open_store(f"s3://{s3_bucket}/bronze", s3_endpoint=s3_endpoint) as store:
        await store.check()
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


@pytest.mark.s3
async def test_s3_check_missing_bucket(s3_endpoint: str) -> None:
    async with open_store("s3://no-such-bucket-pncp-test/bronze", s3_endpoint=s3_endpoint) as store:
        with pytest.raises(ConfigError) as info:
            await store.check()
    assert str(info.value) == (
        f"bucket 'no-such-bucket-pncp-test' does not exist at {s3_endpoint}: create it or fix PNCP_DEST"
    )


@pytest.mark.s3
async def test_s3_missing_bucket_in_operations(s3_endpoint: str) -> None:
    async with open_store("s3://no-such-bucket-pncp-test/bronze", s3_endpoint=s3_endpoint) as store:
        with pytest.raises(StorageError, match="does not exist"):
            await store.put("x", b"1")


WRONG_KEY = "AKIAPNCPWRONGKEY0001"
WRONG_SECRET = "wr0ng/S3cret+ValueThatMustNeverLeak0123"


def _full_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


@pytest.mark.s3
@pytest.mark.parametrize("which", ["secret", "key"])
async def test_s3_check_wrong_credentials(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    if which == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", WRONG_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    async with open_store(f"s3://{s3_bucket}/bronze", s3_endpoint=s3_endpoint) as store:
        with pytest.raises(ConfigError) as info:
            await store.check()
        msg = str(info.value)
        assert msg.startswith(f"S3 credentials were rejected by {s3_endpoint}")
        assert "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" in msg
        # Every other operation fails as StorageError, and no message carries a credential.
        errors: list[BaseException] = [info.value]
        for op in (
            store.get("k"),
            store.put("k", b"1"),
            store.put_if_absent("k", b"1"),
            store.list(""),
            store.delete(["k"]),
        ):
            with pytest.raises(StorageError) as op_info:
                await op
            errors.append(op_info.value)
    for err in errors:
        text = _full_text(err)
        assert WRONG_SECRET not in text
        assert WRONG_KEY not in text
        assert "minioadmin" not in text
        assert "Signature=" not in text


@pytest.mark.s3
async def test_s3_check_no_credentials(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    async with open_store(f"s3://{s3_bucket}/bronze", s3_endpoint=s3_endpoint) as store:
        with pytest.raises(ConfigError, match="S3 credentials not found"):
            await store.check()
        with pytest.raises(ConfigError, match="S3 credentials not found"):
            await store.get("k")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.s3
async def test_s3_check_unreachable_endpoint(s3_endpoint: str) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with open_store("s3://some-bucket/bronze", s3_endpoint=url) as store:
        with pytest.raises(StorageUnreachableError) as info:
            await store.check()
    assert str(info.value).startswith(f"S3 endpoint {url} is unreachable: ")
    assert info.value.exit_code == 4
