"""What the operator sees and does: terminal panels, cron-clean output, status, backfill, signals.

Real processes where they are needed (a pseudo-terminal, signals); the rest runs in-process."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time

import anyio
import pytest
from bronze import cli_command, cli_env, list_keys, read_bronze, wait_for
from inprocess import invoke

from pncp_ingest.dates import brasilia_today, day_range, parse_day
from pncp_ingest.state import Lease
from pncp_ingest.status import DayStatus
from pncp_ingest.storage import open_store

DAY = "2025-10-22"


def in_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout/stderr, as a person would."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cli_command(*args),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "140"},
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(30), b"".join(chunks).decode(errors="replace")


def test_on_a_terminal_the_panels_render(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    code, screen = in_terminal("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, env=cli_env())
    assert code == 0, screen
    assert "pncp-ingest contratacoes" in screen  # the start panel's title
    assert "destination" in screen and dest in screen
    assert "\x1b[" in screen  # colour and cursor control: a real terminal rendering
    assert "contratações" in screen and "duration" in screen  # the closing summary table
    code, screen = in_terminal("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, env=cli_env())
    assert code == 0, screen
    assert "pncp-ingest details" in screen
    # Checkpoints are counted on the live display, not printed one line each.
    assert "checkpoints" in screen and "✓" not in screen


@pytest.mark.parametrize("command", ["contratacoes", "details", "backfill", "status"])
def test_off_a_terminal_output_is_plain_and_json_parses(sim, tmp_path, command):
    dest = str(tmp_path / "bronze")
    assert invoke("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    dates = ["--from", DAY, "--to", DAY] if command == "backfill" else ["--date", DAY]
    extra = [] if command == "status" else ["--base-url", sim.base_url]
    result = invoke(command, *dates, "--dest", dest, *extra, "--json")
    assert result.code == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["command"] == command
    if command != "status":
        assert {
            "status",
            "dates",
            "contratacoes",
            "itens",
            "arquivos",
            "requests",
            "retries",
            "failed",
            "checkpoints",
            "duration_s",
        } <= set(doc)
        assert all(line[:4].isdigit() and line[10] == "T" for line in result.stderr.splitlines()), result.stderr
        for family in doc["concurrency"].values():  # the adaptive limits, never above their ceiling
            assert family["min_limit"] <= family["limit"] <= family["ceiling"]
            assert family["max_in_flight"] <= family["ceiling"]


def test_quiet_leaves_only_the_summary(sim, tmp_path):
    result = invoke("contratacoes", "--date", DAY, "--dest", str(tmp_path / "b"), "--base-url", sim.base_url, "--quiet")
    assert result.code == 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and " end contratacoes status=ok" in lines[0]


def lease_state(dest: str, dataset: str) -> dict:
    async def read():
        async with open_store(dest) as store:
            return (await Lease(store, dataset, parse_day(DAY), "probe", 0).current())[1]

    return anyio.run(read)


def test_sigterm_during_details_commits_releases_and_resumes(sim_factory, tmp_path):
    sim = sim_factory(seed=13, per_day=150, big_items=True, latency_ms=20)
    dest = str(tmp_path / "bronze")
    assert invoke("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    proc = subprocess.Popen(
        cli_command(
            "details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--checkpoint-every", "10", "--json"
        ),
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: any("/commits/" in k for k in list_keys(dest, "_state/pncp_details")) or proc.poll() is not None,
        60,
        "a first checkpoint",
    )
    assert proc.poll() is None, "the run ended before SIGTERM: make the day slower"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "run the same details command again to continue" in err
    assert "Traceback" not in err
    summary = json.loads(out)
    assert summary["status"] == "interrupted" and summary["interrupted"] == "SIGTERM"
    # Committed work is published and intact, the lease is released.
    rows = read_bronze(dest, "pncp_details").column("numeroControlePNCP").to_pylist()
    assert len(rows) == len(set(rows)) == summary["contratacoes"] > 0
    assert lease_state(dest, "pncp_details")["state"] == "released"
    status = json.loads(invoke("status", "--date", DAY, "--dest", dest, "--json").stdout)["days"][0]
    assert status["pending"] == 150 - summary["contratacoes"] and not status["complete"]
    assert status["last_run"]["pncp_details"]["outcome"] == "interrupted"
    # The next run completes the day.
    resumed = invoke("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json")
    assert resumed.code == 0, resumed.stderr
    assert summary["contratacoes"] + resumed.json["contratacoes"] == 150
    doc = json.loads(invoke("status", "--date", DAY, "--dest", dest, "--json").stdout)["days"][0]
    assert doc["pending"] == 0 and doc["open_because"] == "contratos not listed"
    assert invoke("contratos", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    assert json.loads(invoke("status", "--date", DAY, "--dest", dest, "--json").stdout)["days"][0]["complete"]


def test_status_reports_each_day_from_the_state(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    assert invoke("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    assert invoke("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--batch-size", "20").code == 0
    result = invoke("status", "--date", "2025-10-21", "--to", DAY, "--dest", dest, "--json")
    assert result.code == 0, result.stderr
    before, day = json.loads(result.stdout)["days"]
    assert before["contratacoes"] == 0 and before["last_run"] == {}
    total = len(sim.truth(DAY)["contratacoes"])
    assert day["contratacoes"] == total and day["details"] == 20 and day["pending"] == total - 20
    assert day["last_run"]["pncp"]["outcome"] == "ok" and day["held_by"] == {}
    plain = invoke("status", "--date", DAY, "--dest", dest)
    header, row = plain.stdout.strip().splitlines()
    assert header.split("\t")[0] == "day" and row.split("\t")[:4] == [DAY, "no", "details pending", str(total)]


def test_status_over_more_than_a_year_is_accepted(tmp_path):
    (tmp_path / "b").mkdir()
    result = invoke("status", "--date", "2024-01-01", "--to", "2025-02-03", "--dest", str(tmp_path / "b"), "--json")
    assert result.code == 0, result.stderr
    assert len(json.loads(result.stdout)["days"]) == 400
    assert len(day_range(parse_day("2024-01-01"), parse_day("2025-02-03"))) == 400


def test_backfill_skips_complete_days_without_a_request(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    args = ("backfill", "--from", "2025-10-20", "--to", DAY, "--dest", dest, "--base-url", sim.base_url, "--json")
    first = invoke(*args)
    assert first.code == 0, first.stderr
    for day in ("2025-10-20", "2025-10-21", DAY):
        assert first.json["contratacoes"] >= len(sim.truth(day)["contratacoes"])
    details = read_bronze(dest, "pncp_details")
    assert details.num_rows == sum(len(sim.truth(d)["contratacoes"]) for d in ("2025-10-20", "2025-10-21", DAY))
    sim.reset_stats()
    again = invoke(*args)
    assert again.code == 0 and again.json["requests"] == 0
    assert [d["status"] for d in again.json["days"]] == ["skipped"] * 3
    assert sum(sim.stats()["requests"].values()) == 0


def test_a_day_listed_before_it_ended_is_open_and_backfill_lists_it_again(sim, tmp_path):
    today = brasilia_today().isoformat()
    dest = str(tmp_path / "bronze")
    for command in ("contratacoes", "details"):
        assert invoke(command, "--date", today, "--dest", dest, "--base-url", sim.base_url).code == 0
    day = json.loads(invoke("status", "--date", today, "--dest", dest, "--json").stdout)["days"][0]
    assert day["complete"] is False and day["pending"] == 0 and day["open_because"] == "day not over"
    added = sim.grow(today, 5)
    result = invoke("backfill", "--from", today, "--to", today, "--dest", dest, "--base-url", sim.base_url, "--json")
    assert result.code == 0, result.stderr
    assert "skipped" not in [d["status"] for d in result.json["days"]]
    listed = read_bronze(dest, "pncp").column("numeroControlePNCP").to_pylist()
    assert set(added) <= set(listed) and len(listed) == len(set(listed))
    assert sorted(listed) == sorted(c["numeroControlePNCP"] for c in sim.truth(today)["contratacoes"])
    detailed = read_bronze(dest, "pncp_details").column("numeroControlePNCP").to_pylist()
    assert sorted(detailed) == sorted(listed)


def test_a_listing_is_final_only_if_it_started_after_the_day_ended_in_brasilia():
    day = "2025-10-22"  # ends at 2025-10-23T03:00Z (Brasília is UTC-3)

    def listed(finished_at: str, duration_s: float) -> DayStatus:
        run = {"outcome": "ok", "finished_at": finished_at, "duration_s": duration_s}
        contratos = {"outcome": "ok", "finished_at": "2025-10-24T00:00:00+00:00", "duration_s": 1.0}
        runs = {"pncp": run, "pncp_contratos": contratos}
        return DayStatus(day, contratacoes=1, details=1, itens_done=1, arquivos_done=1, last_run=runs)

    assert listed("2025-10-23T03:00:05+00:00", 2.0).contratacoes_complete
    assert not listed("2025-10-23T03:00:05+00:00", 10.0).contratacoes_complete  # started 5 s before the day ended
    before = listed("2025-10-23T02:59:00+00:00", 1.0)
    assert not before.complete and before.open_because == "listed before day end"


def test_backfill_interrupted_by_ctrl_c_says_how_to_continue(sim_factory, tmp_path):
    sim = sim_factory(seed=4, per_day=120, latency_ms=25)
    dest = str(tmp_path / "bronze")
    args = ["backfill", "--from", "2025-10-20", "--to", DAY, "--dest", dest, "--base-url", sim.base_url]
    proc = subprocess.Popen(
        cli_command(*args), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(
        lambda: any("/commits/" in k for k in list_keys(dest, "_state")) or proc.poll() is not None, 60, "a commit"
    )
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same backfill command again to continue" in err and "Traceback" not in err
    resumed = invoke(*args, "--json")
    assert resumed.code == 0, resumed.stderr
    for day in ("2025-10-20", "2025-10-21", DAY):
        status = json.loads(invoke("status", "--date", day, "--dest", dest, "--json").stdout)["days"][0]
        assert status["complete"], status
