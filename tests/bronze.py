"""Test helpers that read the bronze layer the way a user's tools would, and run the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs


def filesystem(dest: str) -> tuple[pafs.FileSystem, str]:
    if dest.startswith("s3://"):
        endpoint = urlsplit(os.environ.get("PNCP_TEST_S3_ENDPOINT", "http://127.0.0.1:8333"))
        fs = pafs.S3FileSystem(
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            endpoint_override=endpoint.netloc,
            scheme=endpoint.scheme,
            region="us-east-1",
        )
        return fs, dest.removeprefix("s3://").rstrip("/")
    return pafs.LocalFileSystem(), os.path.abspath(dest)


def read_bronze(dest: str, dataset: str = "pncp") -> pa.Table:
    """The published dataset as pyarrow.dataset sees it (hive partitions, *.parquet only)."""
    fs, root = filesystem(dest)
    base = f"{root}/{dataset}"
    if fs.get_file_info(base).type == pafs.FileType.NotFound:
        return pa.table({"numeroControlePNCP": pa.array([], pa.string())})
    data = ds.dataset(
        base,
        filesystem=fs,
        format="parquet",
        partitioning="hive",
        exclude_invalid_files=False,
        ignore_prefixes=[".", "_"],
    )
    return data.to_table()


def ids(dest: str, dataset: str = "pncp") -> list[str]:
    return read_bronze(dest, dataset).column("numeroControlePNCP").to_pylist()


def list_keys(dest: str, prefix: str = "", hidden: bool = False) -> list[str]:
    """Every object under ``prefix``; ``hidden`` adds dot-files (a local write's temp file)."""
    fs, root = filesystem(dest)
    base = f"{root}/{prefix}".rstrip("/")
    info = fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    return sorted(
        i.path[len(root) + 1 :]
        for i in info
        if i.type == pafs.FileType.File and (hidden or not i.base_name.startswith("."))
    )


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


FAST_RETRIES = {
    "PNCP_BACKOFF_INITIAL": "0.01",
    "PNCP_BACKOFF_MAX": "0.1",
    "PNCP_THROTTLE_PAUSE": "0.05",
    "PNCP_CONSULTA_RATE": "0",
    "PNCP_RATE": "0",
    "PNCP_CONSULTA_CONCURRENCY": "4",
}


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PNCP_") or k == "PNCP_S3_ENDPOINT_URL"}
    env.update(FAST_RETRIES)
    env["PNCP_S3_ENDPOINT_URL"] = os.environ.get("PNCP_TEST_S3_ENDPOINT", "http://127.0.0.1:8333")
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pncp_ingest", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: str | None = None) -> Result:
    proc = subprocess.run(
        cli_command(*args), env=env or cli_env(), capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def wait_for(predicate: Any, deadline_s: float, what: str) -> None:
    """Poll ``predicate`` until it is true; fail after ``deadline_s`` (a condition, not a sleep)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def kill_at_a_random_moment(
    command: list[str],
    env: dict[str, str],
    rng: Any,
    progress: Any,
    *,
    commits: tuple[int, int],
    instant: tuple[float, float],
) -> bool:
    """Run ``command`` and SIGKILL it after a random number of further commits (``progress()``
    counts them) or at a random instant (mid-checkpoint, mid-publish, mid-request): a rerun must
    not care where it was stopped. True if it was killed (False: it finished first)."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if rng.random() < 0.5:
            target = progress() + rng.randint(*commits)
            wait_for(lambda: proc.poll() is not None or progress() >= target, 60, "commits")
        else:
            time.sleep(rng.uniform(*instant))  # a random instant is the input under test, not a wait
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return killed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
