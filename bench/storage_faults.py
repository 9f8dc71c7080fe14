"""Runs needed when S3 loses answers: the real CLI against SeaweedFS behind the fault proxy.

For each fault share (half ``503 SlowDown`` without forwarding, half carried out with the
connection dropped before any response byte; ``pncp_ingest.testing.s3_faults``) and each seed:
``contratacoes`` then ``details`` over a few days, each repeated until it exits 0; prints the exit
codes of every run and checks that the bronze layer then holds each contratação and its details
exactly once. Needs an S3 server (``bash scripts/s3-local.sh start``)::

    python bench/storage_faults.py                                  # 5 % and 25 %, seeds 1-3
    python bench/storage_faults.py --shares 0.25 --seeds 1 2 --days 2 --per-day 80
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta

import boto3
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from botocore.config import Config

from pncp_ingest.testing import SimulatorProcess
from pncp_ingest.testing.s3_faults import S3FaultProxy

KEYS = {"AWS_ACCESS_KEY_ID": "minioadmin", "AWS_SECRET_ACCESS_KEY": "minioadmin", "AWS_REGION": "us-east-1"}


def landed(endpoint: str, bucket: str, dataset: str) -> list[str]:
    host = endpoint.split("://", 1)[1]
    fs = pafs.S3FileSystem(
        access_key=KEYS["AWS_ACCESS_KEY_ID"],
        secret_key=KEYS["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=host,
        scheme="http",
        region="us-east-1",
    )
    data = ds.dataset(f"{bucket}/bronze/{dataset}", filesystem=fs, partitioning="hive", ignore_prefixes=[".", "_"])
    ids: list[str] = data.to_table(columns=["numeroControlePNCP"]).column(0).to_pylist()
    return ids


def one(endpoint: str, share: float, seed: int, days: int, per_day: int) -> dict[str, object]:
    client = boto3.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    bucket = f"bench-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    first = date(2025, 10, 20)
    last = first + timedelta(days=days - 1)
    codes: dict[str, list[int]] = {}
    started = time.monotonic()
    with (
        SimulatorProcess(seed=seed, per_day=per_day) as sim,
        S3FaultProxy(endpoint, slowdown=share / 2, drop=share / 2, seed=seed) as proxy,
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PNCP_")}
        env.update(KEYS, PNCP_S3_ENDPOINT_URL=proxy.url, PNCP_CONSULTA_RATE="0", PNCP_RATE="0")
        common = ["--date", first.isoformat(), "--to", last.isoformat(), "--dest", f"s3://{bucket}/bronze"]
        for command in ("contratacoes", "details"):
            runs = codes.setdefault(command, [])
            while not runs or runs[-1] != 0:
                if len(runs) == 20:
                    raise SystemExit(f"{command} did not exit 0 in 20 runs: {runs}")
                proc = subprocess.run(
                    [sys.executable, "-m", "pncp_ingest", command, *common, "--base-url", sim.base_url],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                runs.append(proc.returncode)
                bad = "unexpected" in proc.stderr or "Traceback" in proc.stderr or proc.returncode not in (0, 1, 4)
                if bad:
                    raise SystemExit(f"{command} exit {proc.returncode}:\n{proc.stderr}")
        truth = sorted(
            r["numeroControlePNCP"]
            for d in range(days)
            for r in sim.truth((first + timedelta(days=d)).isoformat())["contratacoes"]
        )
        stats = dict(proxy.stats)
    exact = all(sorted(landed(endpoint, bucket, name)) == truth for name in ("pncp", "pncp_details"))
    return {"codes": codes, "exact": exact, "rows": len(truth), "proxy": stats, "s": time.monotonic() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default=os.environ.get("PNCP_TEST_S3_ENDPOINT", "http://127.0.0.1:8333"))
    parser.add_argument("--shares", type=float, nargs="+", default=[0.05, 0.25])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--per-day", type=int, default=80)
    args = parser.parse_args()
    os.environ.update(KEYS)  # for boto3 here and the CLI's children
    print("| faults | seed | contratacoes exits | details exits | exact | rows | requests (slowdown, dropped) | s |")
    print("|---|---|---|---|---|---|---|---|")
    for share in args.shares:
        for seed in args.seeds:
            r = one(args.endpoint, share, seed, args.days, args.per_day)
            codes, stats = r["codes"], r["proxy"]
            assert isinstance(codes, dict) and isinstance(stats, dict)
            total = sum(stats.values())
            print(
                f"| {share:.0%} | {seed} | {codes['contratacoes']} | {codes['details']} | {r['exact']} | {r['rows']} "
                f"| {total} ({stats['slowdown']}, {stats['dropped']}) | {r['s']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
