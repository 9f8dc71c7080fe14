"""The Airflow integration, run by Airflow itself (its own venv, ``.venv-airflow``, made by ``make test``).

Airflow stays out of the core venv: these tests drive ``.venv-airflow/bin/python`` and
``.venv-airflow/bin/airflow`` as subprocesses, against the simulator and the S3 server of the
rest of the suite. Without that venv they skip, unless ``PNCP_TEST_REQUIRE_AIRFLOW=1`` (as
``make test`` sets) makes that a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from bronze import cli_env, ids, list_keys, read_bronze, run_cli, wait_for

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW_VENV = Path(os.environ.get("PNCP_AIRFLOW_VENV", ROOT / ".venv-airflow"))
PYTHON = AIRFLOW_VENV / "bin" / "python"
AIRFLOW = AIRFLOW_VENV / "bin" / "airflow"
DAGS = ROOT / "examples" / "airflow"
DAYS = ["2025-10-20", "2025-10-21", "2025-10-22"]
DAY = DAYS[-1]


@pytest.fixture(scope="module", autouse=True)
def airflow_venv() -> None:
    if not AIRFLOW.exists():
        msg = f"no Airflow venv at {AIRFLOW_VENV}: `make airflow-venv` creates it (make test does)"
        if os.environ.get("PNCP_TEST_REQUIRE_AIRFLOW") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The core suite's CLI environment (fast retries, the test S3 endpoint) plus an isolated Airflow."""
    home.mkdir(parents=True, exist_ok=True)
    return cli_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        **extra,
    )


def in_airflow(script: str, env: dict[str, str], timeout: float = 120) -> dict:
    """Run ``script`` with the Airflow venv's Python; it prints one JSON object as its last line."""
    proc = subprocess.run(
        [str(PYTHON), "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=env["AIRFLOW_HOME"],
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_example_dags_load_with_the_expected_tasks_pools_and_retries(tmp_path):
    found = in_airflow(
        f"""
        import json
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(DAGS)!r})
        print(json.dumps({{
            "errors": {{k: str(v) for k, v in bag.import_errors.items()}},
            "dags": {{
                d.dag_id: {{
                    t.task_id: [t.pool, t.retries, t.retry_delay.total_seconds(), t.multiple_outputs]
                    for t in d.tasks
                }}
                for d in bag.dags.values()
            }},
        }}))
        """,
        airflow_env(tmp_path),
    )
    assert found["errors"] == {}
    assert found["dags"] == {
        "pncp_daily": {
            "contratacoes_today": ["pncp_consulta", 3, 1200, False],
            "details_today": ["pncp_detail", 3, 1200, False],
            "contratos_today": ["pncp_consulta", 3, 1200, False],
            "contratacoes_yesterday": ["pncp_consulta", 3, 1200, False],
            "details_yesterday": ["pncp_detail", 3, 1200, False],
            "contratos_yesterday": ["pncp_consulta", 3, 1200, False],
            "atualizacoes": ["pncp_consulta", 3, 1200, False],
            "resultados": ["pncp_detail", 3, 1200, False],
        },
        "pncp_backfill": {
            "plan": ["default_pool", 0, 300, False],
            "day.contratacoes": ["pncp_consulta", 5, 600, False],
            "day.details": ["pncp_detail", 5, 600, False],
            "day.contratos": ["pncp_consulta", 5, 600, False],
        },
    }


def test_exit_codes_become_airflow_outcomes(sim_factory, tmp_path):
    """Held (3) → reschedule; failures (1) → fail and retry; usage (2) → fail without retries."""
    sim = sim_factory(seed=5, per_day=10)
    dest = str(tmp_path / "bronze")
    outcomes = in_airflow(
        f"""
        import json, anyio
        from datetime import UTC, date, datetime, timedelta
        from airflow.sdk.exceptions import AirflowRescheduleException
        from pncp_ingest.airflow import backfill_dag, daily_dag, ingest_contratacoes, ingest_details
        from pncp_ingest.state import Lease
        from pncp_ingest.storage import open_store

        def outcome(call):
            try:
                return call()["status"]
            except AirflowRescheduleException as exc:  # with the delay it asks for, in minutes
                return f"{{type(exc).__name__}} {{(exc.reschedule_date - datetime.now(UTC)).total_seconds() / 60:.1f}}"
            except Exception as exc:
                return type(exc).__name__

        settings = {{"dest": {dest!r}, "base_url": {sim.base_url!r}, "max_retries": 0}}
        result = {{"usage": outcome(lambda: ingest_contratacoes("2025-02-30", settings=settings))}}
        result["config"] = outcome(lambda: ingest_contratacoes("2025-10-22", settings={{**settings, "concurrency": 0}}))
        open({str(tmp_path / "a-file")!r}, "w").close()
        result["dest"] = outcome(lambda: ingest_details("2025-10-22", settings={{**settings, "dest": {str(tmp_path / "a-file")!r}}}))
        result["ok"] = outcome(lambda: ingest_contratacoes("2025-10-22", settings=settings))

        async def hold_and_run():
            async with open_store({dest!r}) as store:
                lease = Lease(store, "pncp", date(2025, 10, 23), "someone-else", 600)
                await lease.acquire()
                result["held"] = await anyio.to_thread.run_sync(
                    lambda: outcome(lambda: ingest_contratacoes("2025-10-23", settings=settings))
                )
                # The factories' held_delay reaches their tasks (the daily one's day: its data interval's).
                wait = timedelta(minutes=7)
                daily = daily_dag("d", settings=settings, held_delay=wait).get_task("contratacoes_today")
                backfill = backfill_dag("b", settings=settings, held_delay=wait).get_task("day.contratacoes")
                end = datetime(2025, 10, 24, 1, 15, tzinfo=UTC)  # 22:15 on the 23rd in Brasília
                result["held_daily"] = await anyio.to_thread.run_sync(
                    lambda: outcome(lambda: daily.python_callable(data_interval_end=end))
                )
                result["held_backfill"] = await anyio.to_thread.run_sync(
                    lambda: outcome(lambda: backfill.python_callable(days=["2025-10-23"]))
                )
                await lease.release()
        anyio.run(hold_and_run)

        import httpx
        httpx.put({sim.root_url!r} + "/_sim/faults", json={{"rate_5xx": 1.0, "families": ["detail"]}}).raise_for_status()
        result["failures"] = outcome(lambda: ingest_details("2025-10-22", settings=settings))
        print(json.dumps(result))
        """,
        airflow_env(tmp_path / "home"),
    )
    assert outcomes == {
        "usage": "AirflowFailException",
        "config": "AirflowFailException",
        "dest": "AirflowFailException",
        "ok": "ok",
        "held": "AirflowRescheduleException 5.0",
        "held_daily": "AirflowRescheduleException 7.0",
        "held_backfill": "AirflowRescheduleException 7.0",
        "failures": "AirflowException",
    }


README = ROOT / "README.md"
README_MARK = "<!-- tests/test_airflow.py runs the next block as it stands, in a fresh AIRFLOW_HOME -->"


def readme_setup_block() -> str:
    """The README's Airflow install and set-up lines: the first ```sh block after its marker."""
    after = README.read_text(encoding="utf-8").split(README_MARK, 1)[1]
    block = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert block is not None, "the README's marked Airflow block is gone"
    return block.group(1)


@pytest.fixture(scope="module")
def readme_home(tmp_path_factory) -> dict[str, str]:
    """A fresh AIRFLOW_HOME set up by running the README's block as it stands, from the checkout, with
    the Airflow venv first on PATH (Airflow's Python environment active, as the README asks)."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PNCP_", "AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PATH=f"{AIRFLOW_VENV / 'bin'}{os.pathsep}{os.environ['PATH']}",
    )
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_setup_block()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"the README's Airflow steps failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    env["SETUP_S"] = f"{time.monotonic() - started:.1f}"
    return env


def airflow_db(env: dict[str, str], query: str, *args: object) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")) as db:
        return db.execute(query, args).fetchall()


def dags_test(env: dict[str, str], *args: str) -> str:
    """``airflow dags test ...`` (every task in-process, no scheduler); its output, after success."""
    proc = subprocess.run(
        [str(AIRFLOW), "dags", "test", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=env["AIRFLOW_HOME"],
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "state=success" in out, f"airflow dags test {' '.join(args)}:\n{out[-5000:]}"
    return out


def test_the_readme_steps_leave_a_fresh_airflow_home_ready(readme_home):
    """Pools need ``db migrate`` first; a triggered run of a paused DAG waits for ever: both are unpaused."""
    assert dict(airflow_db(readme_home, "select pool, slots from slot_pool where pool like 'pncp_%'")) == {
        "pncp_consulta": 1,
        "pncp_detail": 1,
    }
    assert dict(airflow_db(readme_home, "select dag_id, is_paused from dag")) == {"pncp_daily": 0, "pncp_backfill": 0}


def task_log(out: str, level: str, text: str) -> list[str]:
    """Lines our tasks logged at ``level`` containing ``text`` (Airflow's rendering of a log record)."""
    return [line for line in out.splitlines() if f"[{level}" in line and text in line and "[pncp_ingest." in line]


@pytest.mark.s3
def test_a_mapped_backfill_succeeds_then_its_complete_days_cost_no_request(readme_home, sim_factory, s3_dest, capsys):
    sim = sim_factory(seed=11, per_day=20)
    env = cli_env(**readme_home, PNCP_BASE_URL=sim.base_url, PNCP_DEST=s3_dest, PNCP_CHECKPOINT_EVERY="8")
    params = json.dumps({"from": DAYS[0], "to": DAYS[-1]})
    started = time.monotonic()
    out = dags_test(env, "pncp_backfill", "-c", params)
    first_s = time.monotonic() - started

    listing = read_bronze(s3_dest, "pncp").column("numeroControlePNCP").to_pylist()
    details = {r["numeroControlePNCP"]: r for r in read_bronze(s3_dest, "pncp_details").to_pylist()}
    truth = [sim.truth(day) for day in DAYS]
    assert sorted(listing) == sorted(r["numeroControlePNCP"] for t in truth for r in t["contratacoes"])
    assert {cid: len(r["itens"]) for cid, r in details.items()} == {
        cid: n for t in truth for cid, n in t["itens"].items() if cid not in t["gone"]
    }
    contratos = read_bronze(s3_dest, "pncp_contratos").column("numeroControlePNCP").to_pylist()
    assert sorted(contratos) == sorted(
        r["numeroControlePNCP"] for d in DAYS for r in sim.truth_contratos(d)["contratos"]
    )

    # One XCom entry per task instance: the summary, whose pending is what its log line says is left.
    (run_id,) = airflow_db(env, "select run_id from dag_run where dag_id = 'pncp_backfill'")[0]
    xcoms = airflow_db(env, "select task_id, map_index, key, value from xcom where run_id = ?", run_id)
    assert sorted((t, m, k) for t, m, k, _ in xcoms) == [
        (task, i, "return_value")
        for task in ("day.contratacoes", "day.contratos", "day.details")
        for i in range(len(DAYS))
    ] + [("plan", -1, "return_value")]
    summaries = [json.loads(v) for t, _, _, v in xcoms if t == "day.details"]
    assert [d["pending"] for s in summaries for d in s["days"]] == [0] * len(DAYS)
    assert "0 left for later runs" in out

    # The task log: our lines as INFO records (not stderr, which Airflow marks as errors), each
    # checkpoint with its day's progress; no colour codes, no credential.
    total = len(truth[-1]["contratacoes"])
    checkpoints = task_log(out, "info", f"pncp_details {DAY}: committed details of")
    assert [line.rsplit(": ", 1)[1].split(" [")[0] for line in checkpoints] == [
        f"{n} of {total} contratações committed" for n in (8, 16, total)
    ]
    assert task_log(out, "info", f"pncp_details {DAY}: details of {total} contratações")
    assert task_log(out, "info", "end details status=ok")
    assert not [line for line in out.splitlines() if "[error" in line and "[pncp_ingest." in line]
    assert "\x1b[" not in out
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in out

    # Triggered again over the same (complete) days: no request reaches PNCP.
    sim.reset_stats()
    started = time.monotonic()
    again = dags_test(env, "pncp_backfill", "-c", params)
    rerun_s = time.monotonic() - started
    requests = sim.stats()["requests"]
    assert sum(requests.values()) == 0, requests
    assert len(task_log(again, "info", "already complete: skipped")) == 3 * len(DAYS)
    with capsys.disabled():
        print(
            f"\n[airflow] README steps {readme_home['SETUP_S']}s; backfill of {len(DAYS)} days, "
            f"{len(listing)} contratações: {first_s:.1f}s; rerun over complete days: {rerun_s:.1f}s, "
            f"{sum(requests.values())} PNCP requests",
            file=sys.stderr,
        )


def test_the_daily_dag_ingests_the_days_of_its_data_interval(readme_home, sim_factory, tmp_path):
    """A run stands for its data interval, whatever the wall clock says: 01:15 UTC on the 23rd is
    22:15 on the 22nd in Brasília, so that run's days are the 22nd (today) and the 21st (yesterday)."""
    sim = sim_factory(seed=12, per_day=15)
    dest = str(tmp_path / "bronze")
    env = cli_env(**readme_home, PNCP_BASE_URL=sim.base_url, PNCP_DEST=dest)
    out = dags_test(env, "pncp_daily", "2025-10-23T01:15:00+00:00")
    days = ["2025-10-21", "2025-10-22"]
    # The nightly resultados over the year before: the two days' details were just fetched, so
    # nothing is due yet; the run still succeeds over days that were never listed here.
    assert task_log(out, "info", "end resultados status=ok")

    def partitions(dataset: str) -> set[str]:
        return {"-".join(p.split("=")[1] for p in k.split("/")[1:4]) for k in list_keys(dest, f"{dataset}/")}

    contratos = {r["numeroControlePNCP"] for d in days for r in sim.truth_contratos(d)["contratos"]}
    assert set(ids(dest, "pncp_contratos")) >= contratos  # (and what updates brought from other days)
    # The updates of the day before and the three before it, for each dataset.
    for history in ("pncp_atualizacoes", "pncp_contratos_atualizacoes"):
        assert partitions(history) == {"2025-10-18", "2025-10-19", "2025-10-20", "2025-10-21"}
    truth = {r["numeroControlePNCP"] for d in days for r in sim.truth(d)["contratacoes"]}
    assert set(ids(dest, "pncp")) >= truth
    assert {cid for cid in ids(dest, "pncp_details") if cid in truth} == truth


@pytest.mark.s3
def test_a_missing_bucket_fails_the_task_for_good_before_any_request(s3_endpoint, sim, tmp_path):
    """Checking which days are complete reads the destination first: a bucket that does not exist is
    the run's own configuration error (no retries), not a storage outage to retry."""
    found = in_airflow(
        """
        import json
        from pncp_ingest.airflow import ingest_contratacoes
        try:
            ingest_contratacoes("2025-10-22", settings={"dest": "s3://no-such-bucket-here/bronze"})
            print(json.dumps("ok"))
        except Exception as exc:
            print(json.dumps(f"{type(exc).__name__}: {exc}"))
        """,
        airflow_env(tmp_path, PNCP_BASE_URL=sim.base_url),
    )
    assert found.startswith("AirflowFailException: ") and "no-such-bucket-here" in found, found
    assert sum(sim.stats()["requests"].values()) == 0


def test_sigterm_in_a_task_winds_down_then_the_retry_finishes(sim_factory, tmp_path):
    """What Airflow does when it kills a task: SIGTERM to the task process. The task commits what is
    complete, releases the lease and fails (so Airflow retries); Airflow's own handler is back after."""
    sim = sim_factory(seed=9, per_day=150, latency_ms=40)
    dest = str(tmp_path / "bronze")
    env = airflow_env(tmp_path / "home", PNCP_DEST=dest, PNCP_BASE_URL=sim.base_url, PNCP_CONCURRENCY="2")
    assert run_cli("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    script = textwrap.dedent(
        """
        import json, logging, signal, sys
        from pncp_ingest.airflow import ingest_details

        # What Airflow's task runner does with the task's log records: keep them, with their level.
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)

        def airflows_handler(signum, frame):
            pass

        signal.signal(signal.SIGTERM, airflows_handler)
        try:
            outcome = ingest_details(sys.argv[1], settings={"checkpoint_every": 5})["status"]
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"outcome": outcome, "handler_restored": signal.getsignal(signal.SIGTERM) is airflows_handler}))
        """
    )
    proc = subprocess.Popen(
        [str(PYTHON), "-c", script, DAY], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(
            lambda: proc.poll() is not None or any("/commits/" in k for k in list_keys(dest, "_state/pncp_details")),
            60,
            "a details commit",
        )
        assert proc.poll() is None, "the task finished before SIGTERM: make the day slower"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["outcome"].startswith("AirflowException: details stopped by SIGTERM"), err[-2000:]
    assert doc["handler_restored"]
    assert "WARNING pncp_ingest.airflow: SIGTERM received: committing what is complete" in err
    partial = ids(dest, "pncp_details")
    assert 0 < len(partial) < 150 and len(partial) == len(set(partial))
    retry = in_airflow(
        f"""
        import json
        from pncp_ingest.airflow import ingest_details
        print(json.dumps(ingest_details({DAY!r})))
        """,
        env,
    )
    assert retry["status"] == "ok" and retry["contratacoes"] == 150 - len(partial)
    assert sorted(ids(dest, "pncp_details")) == sorted(r["numeroControlePNCP"] for r in sim.truth(DAY)["contratacoes"])
