"""Contratos and atas end to end: `contratos` by publication day, `atualizacoes` for all three
datasets (newest version in place, every version in history), backfill, reruns and kill -9.
Real CLI against the simulator, local folders and S3."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from bronze import cli_command, cli_env, kill_at_a_random_moment, list_keys, read_bronze, run_cli

from pncp_ingest.records import Ata, Contrato, bronze_row

ROOT = Path(__file__).resolve().parent.parent
DAYS = ("2025-10-20", "2025-10-21")
LINEAGE = ("_ingested_at", "_run_id", "year", "month", "day")
MODELS: dict[str, Any] = {"contratos": Contrato, "atas": Ata}
KEYS = {"contratos": "numeroControlePNCP", "atas": "numeroControlePNCPAta"}


def cli(sim, dest, command, day, *extra):
    return run_cli(command, "--date", day, "--dest", str(dest), "--base-url", sim.base_url, "--json", *extra)


def bare(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in LINEAGE}


def assert_rows_are(rows: list[dict[str, Any]], truth: list[dict[str, Any]], dataset: str) -> None:
    """Bronze rows equal the simulator's records field for field (decimals exact, via ``exact`` truth)."""
    key = KEYS[dataset]
    landed = {r[key]: bare(r) for r in rows}
    assert len(landed) == len(rows), f"a {dataset} key has two rows"
    want = {r[key]: bare(bronze_row(MODELS[dataset], r)) for r in truth}
    assert set(landed) == set(want)
    for k, expected in want.items():
        got = landed[k]
        assert set(expected) <= set(got)  # a field the record did not send is a null column
        assert got == {f: expected.get(f) for f in got}, k


def published_on(rows: list[dict[str, Any]]) -> Counter[date]:
    return Counter(date(r["year"], r["month"], r["day"]) for r in rows)


def test_a_day_of_contratos_lands_exactly_once_under_its_publication_day(sim_factory, dest):
    sim = sim_factory(seed=3, per_day=10, contratos_per_day=120, big_items=False)
    for day in DAYS:
        result = cli(sim, dest, "contratos", day)
        assert result.code == 0, result.stderr
        assert result.json["contratos"] == 120
    rows = read_bronze(dest, "pncp_contratos").to_pylist()
    truth = [r for day in DAYS for r in sim.truth_contratos(day, exact=True)["contratos"]]
    assert_rows_are(rows, truth, "contratos")
    # Partition = the record's own publication day.
    for row in rows:
        assert date(row["year"], row["month"], row["day"]) == row["dataPublicacaoPncp"].date()
    # Empenhos carry no compra link; the others join to a contratação's id.
    links = [r["numeroControlePncpCompra"] for r in rows]
    assert None in links and any(link and "-1-" in link for link in links)

    # A rerun lists again (new contratos may have come) but writes nothing: one page per day at 500.
    before = list_keys(dest, "pncp_contratos")
    sim.reset_stats()
    again = cli(sim, dest, "contratos", DAYS[0], "--to", DAYS[1])
    assert again.code == 0, again.stderr
    assert again.json["checkpoints"] == 0 and again.json["contratos"] == 0
    assert sim.stats()["requests"]["contratos"] == 2
    assert list_keys(dest, "pncp_contratos") == before


def test_amendments_land_newest_in_place_and_every_version_in_history(sim_factory, tmp_path):
    sim = sim_factory(seed=5, per_day=10, contratos_per_day=40, atas_per_day=15, big_items=False)
    dest = tmp_path / "bronze"
    for day in DAYS:
        assert cli(sim, dest, "contratos", day).code == 0
    seen: dict[str, set[tuple[str, str]]] = {"contratos": set(), "atas": set()}
    for update_day in ("2025-10-23", "2025-10-24"):
        for dataset in ("contratos", "atas"):
            changed = sim.amend(dataset, update_day, DAYS[0], DAYS[1], share=0.4)
            assert changed, "the round amended nothing: the test proves nothing"
        result = cli(sim, dest, "atualizacoes", update_day, "--dataset", "contratos", "--dataset", "atas")
        assert result.code == 0, result.stderr
        for dataset in ("contratos", "atas"):
            listing = getattr(sim, f"truth_{dataset}_atualizacao")(update_day)[dataset]
            seen[dataset] |= {(r[KEYS[dataset]], r["dataAtualizacaoGlobal"]) for r in listing}
    # /v1/atas filters by vigência (hundreds of thousands of rows a day on PNCP): never paged.
    assert sim.stats()["requests"].get("atas", 0) == 0

    for dataset in ("contratos", "atas"):
        current = read_bronze(str(dest), f"pncp_{dataset}").to_pylist()
        truth = {}
        for day in published_on(current):
            truth.update({r[KEYS[dataset]]: r for r in getattr(sim, f"truth_{dataset}")(day, exact=True)[dataset]})
        held = {r[KEYS[dataset]] for r in current}
        # Every record bronze holds is at its newest version (atas come only through atualizacoes).
        assert_rows_are(current, [truth[k] for k in held], dataset)
        history = read_bronze(str(dest), f"pncp_{dataset}_atualizacoes").to_pylist()
        versions = Counter((r[KEYS[dataset]], r["dataAtualizacaoGlobal"]) for r in history)
        assert max(versions.values()) == 1, "a version is twice in history"
        for key, glob in seen[dataset]:
            assert (key, datetime.fromisoformat(glob)) in versions, f"listed {dataset} version {key} {glob} missing"
    # A contrato's first version (landed by `contratos`) replaced by an amendment is kept in history.
    contratos_history = {
        (r["numeroControlePNCP"], r["numeroRetificacao"])
        for r in read_bronze(str(dest), "pncp_contratos_atualizacoes").to_pylist()
    }
    assert any(retificacao == 0 for _, retificacao in contratos_history)

    # A second run over the same update days writes nothing.
    def published() -> list[tuple[str, int]]:
        return [(k, (dest / k).stat().st_mtime_ns) for k in list_keys(str(dest)) if not k.startswith("_state/")]

    before = published()
    again = cli(sim, dest, "atualizacoes", "2025-10-24", "--back", "1", "--dataset", "contratos", "--dataset", "atas")
    assert again.code == 0, again.stderr
    assert again.json["checkpoints"] == 0, again.json["days"]
    assert published() == before


def test_backfill_lists_contratos_and_skips_complete_days(sim_factory, tmp_path):
    # Ten days: contratos link contratações of their day or up to 90 days before, so a few join.
    sim = sim_factory(seed=9, per_day=6, contratos_per_day=12, atas_per_day=2, big_items=False)
    dest = tmp_path / "bronze"
    first, last = "2025-10-12", DAYS[1]
    args = ("backfill", "--date", first, "--to", last, "--dest", str(dest), "--base-url", sim.base_url, "--json")
    result = run_cli(*args)
    assert result.code == 0, result.stderr
    assert result.json["contratos"] == 120
    contratos = read_bronze(str(dest), "pncp_contratos").to_pylist()
    assert set(published_on(contratos).values()) == {12} and len(published_on(contratos)) == 10
    # What was signed joins what was bought: the example's join agrees with bronze's own keys.
    bought = {r["numeroControlePNCP"] for r in read_bronze(str(dest), "pncp").to_pylist()}
    linked = sum(1 for r in contratos if r["numeroControlePncpCompra"] in bought)
    empenhos = sum(1 for r in contratos if r["numeroControlePncpCompra"] is None)
    assert linked > 0
    example = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "read_duckdb.py"), str(dest), "--contratos"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"120 contratos; {linked} joined to a contratação in bronze, {empenhos} without" in example.stdout
    status = run_cli("status", "--date", first, "--to", last, "--dest", str(dest), "--json")
    assert all(d["complete"] for d in status.json["days"])
    assert [d["contratos"] for d in status.json["days"]] == [12] * 10
    sim.reset_stats()
    again = run_cli(*args)
    assert again.code == 0 and again.json["requests"] == 0, again.stderr
    assert sum(sim.stats()["requests"].values()) == 0


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_random_instants_then_rerun_is_exact(sim_factory, tmp_path, seed):
    rng = random.Random(seed)
    sim = sim_factory(seed=seed, per_day=5, contratos_per_day=400, atas_per_day=30, big_items=False)
    dest = tmp_path / "bronze"
    sim.amend("contratos", "2025-10-23", DAYS[0], share=0.5)
    sim.amend("atas", "2025-10-23", DAYS[0], share=0.5)
    env = cli_env(PNCP_CHECKPOINT_EVERY="40")

    def committed() -> int:
        return len(list_keys(str(dest), "_state", hidden=True))

    steps = [
        ("contratos", "--date", DAYS[0]),
        ("atualizacoes", "--date", "2025-10-23", "--dataset", "contratos", "--dataset", "atas"),
    ]
    for step in steps:
        command = cli_command(*step, "--dest", str(dest), "--base-url", sim.base_url)
        for _ in range(2):
            kill_at_a_random_moment(command, env, rng, committed, commits=(1, 4), instant=(0.05, 0.6))
        result = run_cli(*step, "--dest", str(dest), "--base-url", sim.base_url, "--json", env=env)
        assert result.code == 0, result.stderr
    contratos = read_bronze(str(dest), "pncp_contratos").to_pylist()
    truth = {}
    for day in published_on(contratos):
        truth.update({r["numeroControlePNCP"]: r for r in sim.truth_contratos(day, exact=True)["contratos"]})
    assert_rows_are(contratos, [truth[r["numeroControlePNCP"]] for r in contratos], "contratos")
    assert {r["numeroControlePNCP"] for r in contratos} >= {
        r["numeroControlePNCP"] for r in sim.truth_contratos(DAYS[0])["contratos"]
    }
    history = read_bronze(str(dest), "pncp_contratos_atualizacoes").to_pylist()
    assert max(Counter((r["numeroControlePNCP"], r["dataAtualizacaoGlobal"]) for r in history).values()) == 1


def test_two_runs_on_one_day_one_exits_3(sim_factory, tmp_path):
    sim = sim_factory(seed=4, per_day=5, contratos_per_day=50)
    sim.set_faults(latency_ms=5000)  # the first run holds the day while its one page is on the way
    dest = tmp_path / "bronze"
    args = ("contratos", "--date", DAYS[0], "--dest", str(dest), "--base-url", sim.base_url, "--json")
    first = subprocess.Popen(
        cli_command(*args), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        from bronze import wait_for

        wait_for(
            lambda: any("lease" in k for k in list_keys(str(dest), "_state", hidden=True)), 30, "the first run's lease"
        )
        second = run_cli(*args)
    finally:
        out, err = first.communicate(timeout=60)
    codes = sorted([first.returncode, second.code])
    assert codes == [0, 3], (out, err, second.stderr)
