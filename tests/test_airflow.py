"""The Airflow integration, run by Airflow itself (its own venv, ``.venv-airflow``, made by ``make test``).

Airflow stays out of the core venv: these tests drive ``.venv-airflow/bin/python`` and
``.venv-airflow/bin/airflow`` as subprocesses, against the simulator and the S3 server of the
rest of the suite. Without that venv they skip, unless ``PNCP_TEST_REQUIRE_AIRFLOW=1`` (as
``make test`` sets) makes that a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
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
                d.dag_id: {{t.task_id: [t.pool, t.retries] for t in d.tasks}} for d in bag.dags.values()
            }},
        }}))
        """,
        airflow_env(tmp_path),
    )
    assert found["errors"] == {}
    assert found["dags"] == {
        "pncp_daily": {
            "contratacoes_today": ["pncp_consulta", 3],
            "details_today": ["pncp_detail", 3],
            "contratacoes_yesterday": ["pncp_consulta", 3],
            "details_yesterday": ["pncp_detail", 3],
        },
        "pncp_backfill": {
            "plan": ["default_pool", 0],
            "day.contratacoes": ["pncp_consulta", 5],
            "day.details": ["pncp_detail", 5],
        },
    }


def test_exit_codes_become_airflow_outcomes(sim_factory, tmp_path):
    """Held (3) → reschedule; failures (1) → fail and retry; usage (2) → fail without retries."""
    sim = sim_factory(seed=5, per_day=10)
    dest = str(tmp_path / "bronze")
    outcomes = in_airflow(
        f"""
        import json, anyio
        from datetime import date
        from pncp_ingest.airflow import ingest_contratacoes, ingest_details
        from pncp_ingest.state import Lease
        from pncp_ingest.storage import open_store

        def outcome(call):
            try:
                return call()["status"]
            except Exception as exc:
                return type(exc).__name__

        settings = {{"dest": {dest!r}, "base_url": {sim.base_url!r}, "max_retries": 0}}
        result = {{"usage": outcome(lambda: ingest_contratacoes("2025-02-30", settings=settings))}}
        result["config"] = outcome(lambda: ingest_contratacoes("2025-10-22", settings={{**settings, "concurrency": 0}}))
        result["ok"] = outcome(lambda: ingest_contratacoes("2025-10-22", settings=settings))

        async def hold_and_run():
            async with open_store({dest!r}) as store:
                lease = Lease(store, "pncp", date(2025, 10, 23), "someone-else", 600)
                await lease.acquire()
                result["held"] = await anyio.to_thread.run_sync(
                    lambda: outcome(lambda: ingest_contratacoes("2025-10-23", settings=settings))
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
        "ok": "ok",
        "held": "AirflowRescheduleException",
        "failures": "AirflowException",
    }


@pytest.mark.s3
def test_a_backfill_runs_end_to_end_under_airflow_dags_test(sim_factory, s3_dest, tmp_path, capsys):
    sim = sim_factory(seed=11, per_day=20)
    env = airflow_env(
        tmp_path / "home",
        PNCP_BASE_URL=sim.base_url,
        PNCP_DEST=s3_dest,
    )

    def airflow(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(AIRFLOW), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=env["AIRFLOW_HOME"]
        )
        assert proc.returncode == 0, f"airflow {' '.join(args)}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    airflow("db", "migrate")
    airflow("pools", "set", "pncp_consulta", "2", "PNCP consulta API (listings)")
    airflow("pools", "set", "pncp_detail", "4", "PNCP detail API (itens, arquivos)")
    airflow("dags", "reserialize")  # Airflow 3 runs serialized DAGs only
    run = airflow("dags", "test", "pncp_backfill", "-c", json.dumps({"from": DAYS[0], "to": DAYS[-1]}))
    log = run.stdout + run.stderr
    assert "state=success" in log
    assert "run_type=manual" in log

    listing = read_bronze(s3_dest, "pncp").column("numeroControlePNCP").to_pylist()
    details = {r["numeroControlePNCP"]: r for r in read_bronze(s3_dest, "pncp_details").to_pylist()}
    truth = [sim.truth(day) for day in DAYS]
    assert sorted(listing) == sorted(r["numeroControlePNCP"] for t in truth for r in t["contratacoes"])
    assert {cid: len(r["itens"]) for cid, r in details.items()} == {
        cid: n for t in truth for cid, n in t["itens"].items() if cid not in t["gone"]
    }
    # The task log is the CLI's plain lines, never the live display or a credential.
    assert "pncp_details 2025-10-22: details of 20 contratações" in log
    assert "\x1b[" not in log
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in log
    with capsys.disabled():
        print(f"\n[airflow dags test] {len(DAYS)} days, {len(listing)} contratações", file=sys.stderr)


def test_sigterm_in_a_task_winds_down_then_the_retry_finishes(sim_factory, tmp_path):
    """What Airflow does when it kills a task: SIGTERM to the task process. The task commits what is
    complete, releases the lease and fails (so Airflow retries); Airflow's own handler is back after."""
    sim = sim_factory(seed=9, per_day=150, latency_ms=40)
    dest = str(tmp_path / "bronze")
    env = airflow_env(tmp_path / "home", PNCP_DEST=dest, PNCP_BASE_URL=sim.base_url, PNCP_CONCURRENCY="2")
    assert run_cli("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    script = textwrap.dedent(
        """
        import json, signal, sys
        from pncp_ingest.airflow import ingest_details

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
    assert "SIGTERM received: committing what is complete" in err
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
