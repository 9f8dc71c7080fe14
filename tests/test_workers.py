"""Several independent workers on one bucket: every day exactly once.

N ``pncp-ingest backfill`` processes (as N Airflow workers on N hosts would run them) backfill
overlapping ranges of days into one S3 bucket at the same time, against one simulator. The
bronze must equal the simulator's truth, with no row twice, each detail request made once (no
two workers fetching the same day), and every day complete at the end, held days included.
"""

from __future__ import annotations

import json
import random
import resource
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

import anyio
import pytest
from bronze import cli_command, cli_env, list_keys, read_bronze, run_cli, wait_for
from fixtures_s3 import _empty_and_delete_bucket

FIRST = date(2025, 3, 3)
DAYS = [(FIRST + timedelta(days=i)).isoformat() for i in range(8)]
DETAIL_KINDS = ("itens", "arquivos")
# Overlapping ranges, each starting somewhere else, so workers meet on days in every phase.
RANGES = [(DAYS[0], DAYS[5]), (DAYS[2], DAYS[7]), (DAYS[0], DAYS[7]), (DAYS[4], DAYS[7])]


@dataclass
class Worker:
    index: int
    days: tuple[str, str]
    proc: subprocess.Popen[str]
    code: int | None = None
    stdout: str = ""
    stderr: str = ""

    @property
    def summary(self) -> dict:
        return json.loads(self.stdout)


def start_worker(index: int, days: tuple[str, str], sim, dest: str) -> Worker:
    args = ["backfill", "--from", days[0], "--to", days[1], "--dest", dest, "--base-url", sim.base_url]
    proc = subprocess.Popen(
        cli_command(*args, "--checkpoint-every", "10", "--json"),
        env=cli_env(PNCP_CONCURRENCY="8"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Worker(index, days, proc)


def finish(worker: Worker, timeout: float = 240) -> Worker:
    try:
        worker.stdout, worker.stderr = worker.proc.communicate(timeout=timeout)
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.communicate()
    worker.code = worker.proc.returncode
    return worker


def detail_requests(stats: dict) -> int:
    return sum(stats["requests"][k] for k in DETAIL_KINDS)


def assert_exactly_the_truth(sim, dest: str) -> tuple[int, int]:
    """Every day's contratações and details equal the simulator's, no row twice; (contratações, itens)."""
    listing = read_bronze(dest, "pncp").column("numeroControlePNCP").to_pylist()
    detail_rows = read_bronze(dest, "pncp_details").to_pylist()
    assert len(listing) == len(set(listing)), "a contratação landed twice"
    by_id = {r["numeroControlePNCP"]: r for r in detail_rows}
    assert len(by_id) == len(detail_rows), "a contratação has two details rows"
    expected_listing: set[str] = set()
    expected_details: dict[str, tuple[int, int]] = {}
    for day in DAYS:
        truth = sim.truth(day)
        ids = {r["numeroControlePNCP"] for r in truth["contratacoes"]}
        expected_listing |= ids
        for cid in ids - set(truth["gone"]):
            expected_details[cid] = (truth["itens"][cid], truth["arquivos"][cid])
    assert set(listing) == expected_listing
    assert {cid: (len(r["itens"]), len(r["arquivos"])) for cid, r in by_id.items()} == expected_details
    return len(listing), sum(n for n, _ in expected_details.values())


def assert_every_day_complete(dest: str) -> None:
    result = run_cli("status", "--date", DAYS[0], "--to", DAYS[-1], "--dest", dest, "--json")
    assert result.code == 0, result.stderr
    incomplete = [d for d in result.json["days"] if not d["complete"]]
    assert incomplete == [], f"days left incomplete: {incomplete}"


@pytest.fixture
def second_bucket(s3_client) -> Iterator[str]:
    """Another fresh bucket, for the single-worker baseline."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    _empty_and_delete_bucket(s3_client, name)


def children_cpu() -> float:
    """CPU seconds used by the finished (reaped) child processes: the workers, not the simulator."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline(sim, bucket: str) -> tuple[int, int, float, float]:
    """One worker alone over every day: (detail requests, listing requests, wall s, CPU s)."""
    sim.reset_stats()
    started, cpu = time.monotonic(), children_cpu()
    worker = finish(start_worker(0, (DAYS[0], DAYS[-1]), sim, f"s3://{bucket}/bronze"))
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    assert worker.code == 0, worker.stderr
    stats = sim.stats()
    return detail_requests(stats), stats["requests"]["contratacoes"], wall, cpu


def report(capsys: pytest.CaptureFixture[str], title: str, lines: list[str]) -> None:
    """The figures go to the terminal even without -s: they are what the README quotes."""
    with capsys.disabled():
        print(f"\n[{title}]", *lines, sep="\n  ", file=sys.stderr)


@pytest.mark.s3
def test_workers_on_overlapping_ranges_land_every_day_exactly_once(sim_factory, s3_dest, second_bucket, capsys):
    sim = sim_factory(seed=31, per_day=40, big_items=True, latency_ms=10)
    single_detail, single_listing, single_wall, single_cpu = baseline(sim, second_bucket)

    sim.reset_stats()
    started, cpu = time.monotonic(), children_cpu()
    workers = [start_worker(i, days, sim, s3_dest) for i, days in enumerate(RANGES)]
    for worker in workers:
        finish(worker)
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    stats = sim.stats()

    for worker in workers:
        assert worker.code in (0, 3), f"worker {worker.index} exited {worker.code}: {worker.stderr[-2000:]}"
    contratacoes, itens = assert_exactly_the_truth(sim, s3_dest)
    # Each detail request made once, as by a single worker: no two workers fetched the same day.
    assert detail_requests(stats) == single_detail
    fetched_by: dict[str, list[int]] = {}
    for worker in workers:
        for day in worker.summary["days"]:
            if day["dataset"] == "pncp_details" and day["contratacoes"]:
                fetched_by.setdefault(day["day"], []).append(worker.index)
    assert {day: who for day, who in fetched_by.items() if len(who) > 1} == {}
    assert sorted(fetched_by) == DAYS
    # Days a worker met held were finished (by it, after the range, or by their holder).
    held = {d["day"] for w in workers if w.code == 3 for d in w.summary["days"] if d["status"] == "held"}
    assert_every_day_complete(s3_dest)
    sets_aside = sum(w.stderr.count("coming back after the range") for w in workers)
    report(
        capsys,
        "N workers on one bucket",
        [
            f"workers {len(workers)}, days {len(DAYS)} (ranges {', '.join(f'{a}..{b}' for a, b in RANGES)})",
            f"contratações {contratacoes}, itens {itens}",
            f"detail requests {detail_requests(stats)} vs {single_detail} for a single worker",
            f"listing requests {stats['requests']['contratacoes']} vs {single_listing} for a single worker",
            f"wall {wall:.1f} s vs {single_wall:.1f} s for a single worker; "
            f"workers' CPU {cpu:.1f} s vs {single_cpu:.1f} s",
            f"exit codes {[w.code for w in workers]}; days set aside as held and finished later: {sets_aside}; "
            f"left held at exit: {sorted(held)}",
        ],
    )


def commits(dest: str) -> int:
    return len([k for k in list_keys(dest, "_state") if "/commits/" in k])


@pytest.mark.s3
def test_workers_killed_at_random_instants_then_a_rerun_gives_exactly_the_truth(sim_factory, s3_dest, capsys):
    sim = sim_factory(seed=37, per_day=40, big_items=True, latency_ms=10)
    rng = random.Random(2027)
    started = time.monotonic()
    workers = [start_worker(i, days, sim, s3_dest) for i, days in enumerate(RANGES[:3])]
    kills = 0
    try:
        for victim in rng.sample(workers, 2):
            # A random amount of committed work first (a condition), then a random instant (the input).
            target = commits(s3_dest) + rng.randint(1, 8)
            wait_for(lambda: victim.proc.poll() is not None or commits(s3_dest) >= target, 120, f"{target} commits")
            time.sleep(rng.uniform(0, 0.3))  # a random instant is the input under test, not a wait
            if victim.proc.poll() is None:
                victim.proc.send_signal(signal.SIGKILL)
                kills += 1
    finally:
        for worker in workers:
            finish(worker)
    killed = [w.index for w in workers if w.code == -signal.SIGKILL]
    for worker in workers:
        if worker.index not in killed:
            assert worker.code in (0, 3), f"worker {worker.index} exited {worker.code}: {worker.stderr[-2000:]}"
    assert kills >= 1, "every worker finished before it could be killed: make the days slower"
    during = sim.stats()

    rerun = run_cli(
        "backfill", "--from", DAYS[0], "--to", DAYS[-1], "--dest", s3_dest, "--base-url", sim.base_url, "--json"
    )
    assert rerun.code == 0, rerun.stderr
    contratacoes, itens = assert_exactly_the_truth(sim, s3_dest)
    assert_every_day_complete(s3_dest)
    assert [k for k in list_keys(s3_dest, "_state") if "/parts/" in k or "/commits/" in k] == []
    report(
        capsys,
        "N workers on one bucket, SIGKILLs",
        [
            f"workers {len(workers)}, killed {killed}, days {len(DAYS)}; contratações {contratacoes}, itens {itens}",
            f"detail requests {detail_requests(during)} before the rerun, {detail_requests(sim.stats())} in all",
            f"wall {time.monotonic() - started:.1f} s including the rerun ({rerun.json['duration_s']:.1f} s)",
        ],
    )


def hold_day(dest: str, day: str, dataset: str = "pncp"):
    """A live lease held by this (test) process, as another worker's run would hold it."""
    from pncp_ingest.state import Lease
    from pncp_ingest.storage import open_store

    async def acquire() -> Lease:
        store = open_store(dest)
        await store.check()
        lease = Lease(store, dataset, date.fromisoformat(day), "another-worker", 600)
        await lease.acquire()
        return lease

    return anyio.run(acquire)


def release(lease) -> None:
    async def go() -> None:
        await lease.release()
        await lease.store.aclose()

    anyio.run(go)


def test_a_day_held_through_the_whole_wait_leaves_the_backfill_exiting_3_naming_it(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    lease = hold_day(dest, DAYS[1])
    try:
        result = run_cli(
            "backfill",
            "--from",
            DAYS[0],
            "--to",
            DAYS[2],
            "--dest",
            dest,
            "--base-url",
            sim.base_url,
            "--json",
            env=cli_env(PNCP_LEASE_TTL="1"),
        )
    finally:
        release(lease)
    assert result.code == 3, result.stderr
    held = [d for d in result.json["days"] if d["status"] == "held"]
    assert [d["day"] for d in held] == [DAYS[1]] and "another-worker" in held[0]["held_by"]
    assert "coming back after the range" in result.stderr
    status = run_cli("status", "--date", DAYS[0], "--to", DAYS[2], "--dest", dest, "--json").json
    assert [d["complete"] for d in status["days"]] == [True, False, True]


def test_a_day_released_while_the_backfill_waits_is_finished_by_it(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    lease = hold_day(dest, DAYS[0], "pncp_details")
    proc = subprocess.Popen(
        cli_command(
            "backfill", "--from", DAYS[0], "--to", DAYS[2], "--dest", dest, "--base-url", sim.base_url, "--json"
        ),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def later_days_complete() -> bool:
            days = run_cli("status", "--date", DAYS[1], "--to", DAYS[2], "--dest", dest, "--json").json["days"]
            return all(d["complete"] for d in days)

        wait_for(lambda: proc.poll() is not None or later_days_complete(), 60, "the days after the held one")
        assert proc.poll() is None, "the backfill ended instead of waiting for the held day"
        release(lease)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "coming back after the range" in err
    doc = json.loads(out)
    assert all(d["status"] != "held" for d in doc["days"])
    status = run_cli("status", "--date", DAYS[0], "--to", DAYS[2], "--dest", dest, "--json").json
    assert all(d["complete"] for d in status["days"])
