"""The day-engine as a user meets it: what a run counts and reports, and what a run that cannot
work leaves behind (nothing). Real CLI against the simulator, local folders."""

from __future__ import annotations

import socket
from datetime import date
from pathlib import Path

import anyio
from bronze import read_bronze, run_cli

from pncp_ingest.state import hold
from pncp_ingest.storage import open_store

DAY = "2025-10-20"


def cli(sim, dest, command, day, *extra):
    return run_cli(command, "--date", day, "--dest", str(dest), "--base-url", sim.base_url, "--json", *extra)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_details_where_nothing_was_listed_fails_and_writes_nothing(sim, tmp_path):
    """A mistyped --dest: exit 1, a failure that says why, and no state left for ``status`` to find."""
    dest = tmp_path / "typo"
    result = cli(sim, dest, "details", DAY)
    assert result.code == 1, result.stderr
    assert result.json["status"] == "partial"
    (failure,) = result.json["failures"]
    assert failure["code"] == "not_listed" and DAY in failure["reason"]
    assert result.json["days"][0]["status"] == "missing"
    assert files_under(dest) == []
    assert "Traceback" not in result.stderr


def test_a_run_that_cannot_reach_the_api_leaves_no_folder(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "new" / "bronze"
    result = run_cli(
        "contratacoes",
        "--date",
        DAY,
        "--dest",
        str(dest),
        "--base-url",
        f"http://127.0.0.1:{port}/api",
        "--max-retries",
        "0",
        "--json",
    )
    assert result.code == 4, result.stderr
    assert result.json["exit_code"] == 4
    assert not (tmp_path / "new").exists()


def test_a_day_held_by_another_run_reports_held_and_exits_3(sim, tmp_path):
    dest = str(tmp_path / "bronze")

    async def while_held() -> None:
        store = open_store(dest)
        async with store, hold(store, "pncp", date.fromisoformat(DAY), "another-run", 600):
            result = await anyio.to_thread.run_sync(lambda: cli(sim, dest, "contratacoes", DAY))
            assert result.code == 3, result.stderr
            assert result.json["status"] == "held"
            assert result.json["exit_code"] == 3
            assert "another-run" in result.json["days"][0]["held_by"]

    anyio.run(while_held)


def test_details_pending_is_what_the_day_has_left_when_the_run_ends(sim, tmp_path):
    dest = tmp_path / "bronze"
    assert cli(sim, dest, "contratacoes", DAY).code == 0
    total = read_bronze(str(dest)).num_rows
    first = cli(sim, dest, "details", DAY, "--batch-size", "10")
    assert first.code == 0, first.stderr
    (day,) = first.json["days"]
    assert (day["planned"], day["pending"]) == (10, total - 10)
    rest = cli(sim, dest, "details", DAY)
    (day,) = rest.json["days"]
    assert (day["planned"], day["pending"]) == (total - 10, 0)
    assert rest.json["contratacoes"] == total - 10


def test_history_versions_are_counted_as_versions_not_contratacoes(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=30, big_items=False)
    dest = tmp_path / "bronze"
    for command in ("contratacoes", "details"):
        assert cli(sim, dest, command, DAY).code == 0
    updated = sim.update("2025-10-23", DAY, share=0.4)
    assert updated
    result = cli(sim, dest, "atualizacoes", "2025-10-23", "--dataset", "contratacoes")
    assert result.code == 0, result.stderr
    listed = {r["numeroControlePNCP"] for r in sim.truth_atualizacao("2025-10-23")["contratacoes"]}
    # History of the update day holds every listed version, and the first versions the updates
    # replaced go to history under their own day: ``versions`` counts both.
    replaced = {u["id"] for u in updated}
    assert read_bronze(str(dest), "pncp_atualizacoes").num_rows == len(listed) + len(replaced)
    assert result.json["versions"] == len(listed) + len(replaced)
    # ``contratacoes`` counts the contratações whose current rows were written: every listed one
    # (the updated ones, and the update day's own publications, new to bronze).
    applied = sum(d["contratacoes"] for d in result.json["days"] if d["dataset"] == "pncp")
    assert applied == len(listed) > len(replaced) > 0
    assert result.json["contratacoes"] == max(
        applied, sum(d["contratacoes"] for d in result.json["days"] if d["dataset"] == "pncp_details")
    )
