"""Resultados end to end: the real CLI, HTTP to the simulator (which homologates items over time),
local folder and S3. The schedule's clock is ``PNCP_NOW``, so weeks pass in a test."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from bronze import cli_command, cli_env, kill_at_a_random_moment, list_keys, read_bronze, run_cli
from exactness import assert_recoverable

from pncp_ingest.records.schema import DETAILS_SCHEMA

DAY = "2025-10-22"
T0 = datetime(2025, 10, 23, 3, 0)  # details run the night after publication
RESULTADO = DETAILS_SCHEMA.field("resultados").type.value_type


def at(moment: datetime, **extra: str) -> dict[str, str]:
    """The CLI's environment with the schedule's clock set to ``moment`` (UTC)."""
    return cli_env(PNCP_NOW=moment.isoformat(), **extra)


def cli(command: str, sim: Any, dest: str, moment: datetime, *extra: str, day: str = DAY) -> Any:
    return run_cli(command, "--date", day, "--dest", dest, "--base-url", sim.base_url, "--json", *extra, env=at(moment))


def ingest(sim: Any, dest: str) -> None:
    assert cli("contratacoes", sim, dest, T0).code == 0
    result = cli("details", sim, dest, T0)
    assert result.code == 0, result.stderr


def landed(dest: str) -> dict[str, dict[str, Any]]:
    """DAY's pncp_details rows by contratação (atualizacoes may land other publication days too)."""
    year, month, day = (int(p) for p in DAY.split("-"))
    rows = [
        r
        for r in read_bronze(dest, "pncp_details").to_pylist()
        if (r["year"], r["month"], r["day"]) == (year, month, day)
    ]
    by_id = {r["numeroControlePNCP"]: r for r in rows}
    assert len(by_id) == len(rows), "a contratação has two details rows"
    return by_id


def differs(truth: dict[str, Any], row: dict[str, Any]) -> bool:
    """Whether a details row's itens states or resultados differ from the simulator's truth."""
    state = [(i["numeroItem"], i["situacaoCompraItem"], i["temResultado"]) for i in truth["itens"]]
    if state != [(i["numeroItem"], i["situacaoCompraItem"], i["temResultado"]) for i in row["itens"] or []]:
        return True
    return keys(row) != keys(truth)


def keys(row: dict[str, Any]) -> list[tuple[int, int]] | None:
    """A row's resultados as (numeroItem, sequencialResultado), None when not fetched."""
    found = row["resultados"]
    return None if found is None else [(r["numeroItem"], r["sequencialResultado"]) for r in found]


def assert_exact(sim: Any, dest: str) -> dict[str, dict[str, Any]]:
    """Every contratação's itens states and resultados are the truth, every resultado field for field."""
    truth = sim.truth(DAY, details=True, exact=True)["details"]
    rows = landed(dest)
    assert set(rows) == set(truth)
    for cid, sent in truth.items():
        row = rows[cid]
        assert not differs(sent, row), cid
        assert row["metadata"]["total_resultados"] == len(sent["resultados"]), cid
        for raw, resultado in zip(sent["resultados"], row["resultados"], strict=True):
            assert_recoverable(RESULTADO, raw, resultado)
    return truth


def test_a_days_resultados_equal_the_truth_field_for_field(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=80)
    dest = str(tmp_path / "bronze")
    ingest(sim, dest)
    truth = assert_exact(sim, dest)
    resultados = [r for d in truth.values() for r in d["resultados"]]
    # The day carries what makes resultados hard: ranked SRP results, cancelled ones kept, unknown fields.
    assert any(r["ordemClassificacaoSrp"] == 2 for r in resultados)
    cancelled = [r for r in resultados if r["dataCancelamento"] is not None]
    assert cancelled and all(r["situacaoCompraItemResultadoId"] == 2 for r in cancelled)
    assert any("campoNovoSimulado" in r for r in resultados)
    # Homologated items without a result are [] (204), not a failure.
    with_none = [
        (cid, i["numeroItem"])
        for cid, d in truth.items()
        for i in d["itens"]
        if i["temResultado"] and not any(r["numeroItem"] == i["numeroItem"] for r in d["resultados"])
    ]
    assert with_none, "no homologated item without a result: the 204 case is untested"
    rows = landed(dest)
    assert [r for r in rows.values() if r["metadata"]["total_resultados"] == 0 and r["resultados"] == []]


def test_404_on_an_items_resultados_is_no_result_not_a_gone_compra_nor_a_failure(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=40)
    sim.set_faults(resultados_404=1.0)
    dest = str(tmp_path / "bronze")
    assert cli("contratacoes", sim, dest, T0).code == 0
    result = cli("details", sim, dest, T0)
    assert result.code == 0, result.stderr
    assert sim.stats()["faults"].get("resultados_404", 0) > 0, "no 404 was served: the test proves nothing"
    assert all(d["gone"] == 0 for d in result.json["days"])
    assert_exact(sim, dest)


def test_only_resultados_fetches_them_with_their_itens(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    assert cli("contratacoes", sim, dest, T0).code == 0
    assert cli("details", sim, dest, T0, "--only", "arquivos").code == 0
    assert all(r["resultados"] is None and r["itens"] is None for r in landed(dest).values())
    sim.reset_stats()
    result = cli("details", sim, dest, T0, "--only", "resultados")
    assert result.code == 0, result.stderr
    assert sim.stats()["requests"]["arquivos"] == 0
    assert_exact(sim, dest)
    assert all(r["arquivos"] is not None for r in landed(dest).values()), "--only resultados lost the arquivos"


def test_settled_compras_cost_nothing_and_unsettled_ones_are_polled_on_a_backing_off_schedule(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=40)
    dest = str(tmp_path / "bronze")
    ingest(sim, dest)
    truth = sim.truth(DAY, details=True)["details"]
    unsettled = {cid for cid, d in truth.items() if any(i["situacaoCompraItem"] == 1 for i in d["itens"])}
    assert 0 < len(unsettled) < len(truth)

    def poll(moment: datetime, *extra: str) -> dict[str, Any]:
        sim.reset_stats()
        result = cli("resultados", sim, dest, moment, *extra)
        assert result.code == 0, result.stderr
        summary = result.json
        assert summary["requests"] == sum(sim.stats()["requests"].values())
        assert summary["settled"] == len(truth) - len(unsettled)
        return summary

    # Nothing is due an hour after the details run: no request at all.
    first = poll(T0 + timedelta(hours=1))
    assert (first["polled"], first["requests"], first["pending"]) == (0, 0, len(unsettled))
    assert first["next_due"] == (T0 + timedelta(days=1)).isoformat() + "+00:00"
    # A day later every unsettled one is due: its /itens (and /quantidade where a page could be a
    # cap), and no /resultados (nothing changed).
    second = poll(T0 + timedelta(days=1, hours=1))
    served = sim.stats()["requests"]
    assert second["polled"] == served["itens"] == len(unsettled)
    assert served["resultados"] == 0 and served["arquivos"] == 0
    # Nothing new: the next poll comes two days later, then four.
    assert poll(T0 + timedelta(days=2, hours=2))["requests"] == 0
    assert poll(T0 + timedelta(days=3, hours=2))["polled"] == len(unsettled)
    assert poll(T0 + timedelta(days=6, hours=2))["requests"] == 0
    # --force polls what is not due; settled ones still cost nothing.
    forced = poll(T0 + timedelta(days=6, hours=3), "--force")
    assert forced["polled"] == sim.stats()["requests"]["itens"] == len(unsettled)
    # Past the maximum age nothing is polled.
    old = poll(T0 + timedelta(days=400), "--force")
    assert (old["polled"], old["requests"], old["pending"]) == (0, 0, len(unsettled))


def test_silent_and_listed_homologations_land_through_resultados_and_atualizacoes(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=40)
    dest = str(tmp_path / "bronze")
    ingest(sim, dest)
    update_day = "2025-10-25"
    changed = sim.homologate(update_day, DAY, share=0.6, listed=0.5)
    listed = {c["id"] for c in changed if c["listed"]}
    silent = {c["id"] for c in changed if not c["listed"]}
    assert listed and silent
    moment = datetime(2025, 10, 25, 23, 0)
    # atualizacoes sees the listed ones only, and refetches their itens and resultados.
    result = cli("atualizacoes", sim, dest, moment, day=update_day)
    assert result.code == 0, result.stderr
    truth = sim.truth(DAY, details=True)["details"]
    rows = landed(dest)
    assert not [cid for cid in listed if differs(truth[cid], rows[cid])]
    assert [cid for cid in silent if differs(truth[cid], rows[cid])], "silent homologations seen without a poll?"
    # resultados finds the silent ones on their schedule, and does not poll the listed ones again.
    sim.reset_stats()
    result = cli("resultados", sim, dest, moment + timedelta(hours=1))
    assert result.code == 0, result.stderr
    assert result.json["homologated"] > 0 and result.json["landed"] > 0
    assert_exact(sim, dest)
    assert sim.stats()["requests"]["itens"] == result.json["polled"]


def test_a_poll_that_fails_is_a_failure_never_an_empty_list_and_repeated_runs_converge(sim_factory, tmp_path):
    sim = sim_factory(seed=9, per_day=50)
    dest = str(tmp_path / "bronze")
    ingest(sim, dest)
    sim.homologate("2025-10-26", DAY, share=0.7, listed=0.0)
    sim.set_faults(rate_429=0.05, burst_429=2, rate_5xx=0.2, rate_drop=0.05, rate_truncate=0.05, families=["detail"])
    moment = datetime(2025, 10, 26, 23, 0)
    truth = sim.truth(DAY, details=True)["details"]
    before = {cid: keys(row) for cid, row in landed(dest).items()}
    codes = []
    for _ in range(20):
        result = cli("resultados", sim, dest, moment, "--max-retries", "1", "--timeout", "1")
        codes.append(result.code)
        for cid, row in landed(dest).items():  # what landed is whole: as before, or the truth, never cut short
            assert keys(row) in (before[cid], keys(truth[cid])), cid
        if result.code == 0:
            break
        assert result.code == 1, result.stderr
        assert result.json["failed"] > 0 and result.json["pending"] > 0
        moment += timedelta(minutes=5)  # a failed poll stays due: the next run polls it again
    assert codes[-1] == 0 and 1 in codes, codes
    sim.set_faults()
    assert_exact(sim, dest)


def test_sigkill_at_random_moments_then_rerun_lands_every_resultado_exactly_once(sim_factory, dest):
    sim = sim_factory(seed=13, per_day=150, latency_ms=15)
    ingest(sim, dest)
    sim.homologate("2025-10-27", DAY, share=0.8, listed=0.0)
    env = at(datetime(2025, 10, 27, 23, 0), PNCP_CONCURRENCY="8")
    command = cli_command(
        "resultados", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--checkpoint-every", "5"
    )
    rng = random.Random(2027)

    def progress() -> int:
        return len([k for k in list_keys(dest, "_state/pncp_details") if "/commits/" in k])

    kills = 0
    for round_ in range(4):
        kills += kill_at_a_random_moment(command, env, rng, progress, commits=(1, 3), instant=(0.2, 0.8))
        for cid, row in landed(dest).items():
            found = keys(row) or []
            assert len(found) == len(set(found)), f"a resultado twice in {cid} after kill {round_}"
    assert kills >= 2, "the runs finished before they could be killed: make the day slower"
    final = run_cli(*command[3:], "--json", env=env)
    assert final.code == 0, final.stderr
    assert_exact(sim, dest)
    assert [k for k in list_keys(dest, "_state/pncp_details", hidden=True) if "/parts/" in k or "/commits/" in k] == []


def test_the_simulator_homologates_listed_or_silently_with_situacao_consistent_with_temresultado(sim):
    before = sim.truth(DAY, details=True)
    itens = [i for d in before["details"].values() for i in d["itens"]]
    assert all(i["temResultado"] == (i["situacaoCompraItem"] == 2) for i in itens)
    assert {1, 2} <= {i["situacaoCompraItem"] for i in itens}
    changed = sim.homologate("2025-11-03", DAY, share=0.7, listed=0.5)
    after = sim.truth(DAY, details=True)
    glob = {c["numeroControlePNCP"]: c["dataAtualizacaoGlobal"] for c in after["contratacoes"]}
    old = {c["numeroControlePNCP"]: c["dataAtualizacaoGlobal"] for c in before["contratacoes"]}
    listed_then = {c["numeroControlePNCP"] for c in sim.truth_atualizacao("2025-11-03")["contratacoes"]}
    for change in changed:
        cid = change["id"]
        decided = {i["numeroItem"]: i for i in after["details"][cid]["itens"] if i["numeroItem"] in change["itens"]}
        assert all(
            i["situacaoCompraItem"] in (2, 4, 5) and i["dataAtualizacao"] == change["at"] for i in decided.values()
        )
        assert all(i["temResultado"] == (i["situacaoCompraItem"] == 2) for i in decided.values())
        if change["listed"]:
            assert glob[cid] == change["at"] and cid in listed_then
        else:
            assert glob[cid] == old[cid]
    assert {c["listed"] for c in changed} == {True, False}
    assert sum(len(d["resultados"]) for d in after["details"].values()) > sum(
        len(d["resultados"]) for d in before["details"].values()
    )


def test_the_example_answers_who_won_from_bronze_as_the_simulator_served_it(sim, tmp_path):
    import subprocess
    import sys
    from collections import Counter
    from decimal import Decimal
    from pathlib import Path

    dest = str(tmp_path / "bronze")
    ingest(sim, dest)
    truth = sim.truth(DAY, details=True, exact=True)["details"]
    value: Counter[str] = Counter()
    for d in truth.values():
        for r in d["resultados"]:
            if r["dataCancelamento"] is None and (r["ordemClassificacaoSrp"] or 1) == 1:
                value[r["niFornecedor"]] += Decimal(str(r["valorTotalHomologado"]))
    (top, amount), *_ = sorted(value.items(), key=lambda kv: (-kv[1], kv[0]))
    script = Path(__file__).parents[1] / "examples" / "resultados_duckdb.py"
    out = subprocess.run([sys.executable, str(script), dest, "--top", "3"], capture_output=True, text=True, check=True)
    first = out.stdout.splitlines()[2]
    assert first.startswith(top) and first.endswith(f"{amount:,.2f}"), (first, top, amount)


def test_a_nightly_back_over_days_never_listed_here_exits_0_and_writes_nothing_for_them(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    ingest(sim, dest)
    result = cli("resultados", sim, dest, T0 + timedelta(days=2), "--back", "3")
    assert result.code == 0, result.stderr
    assert result.json["dates"][0] == "2025-10-19" and len(result.json["days"]) == 4
    assert [d["status"] for d in result.json["days"]][:3] == ["missing"] * 3
    assert result.json["polled"] > 0
    assert not [k for k in list_keys(dest, "_state/pncp_details") if "/2025-10-19/" in k]


def test_a_bad_date_is_one_line_and_exit_2(sim, tmp_path):
    result = run_cli("resultados", "--date", "2025-13-01", "--dest", str(tmp_path), "--base-url", sim.base_url)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
