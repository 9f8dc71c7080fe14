"""`pncp-ingest contratacoes` end to end: the real CLI, over HTTP to the simulator, into a local
folder and into S3 (SeaweedFS), read back the way users read the bronze layer."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter

import pytest
from bronze import cli_command, cli_env, ids, list_keys, read_bronze, run_cli, wait_for

DAY = "2025-10-22"


def truth_ids(sim, day=DAY) -> list[str]:
    return sorted(r["numeroControlePNCP"] for r in sim.truth(day)["contratacoes"])


def ingest(sim, dest, *extra, day=DAY, env=None):
    return run_cli("contratacoes", "--date", day, "--dest", dest, "--base-url", sim.base_url, "--json", *extra, env=env)


def test_a_day_lands_one_row_per_contratacao(sim, dest):
    result = ingest(sim, dest)
    assert result.code == 0, result.stderr
    summary = result.json
    expected = truth_ids(sim)
    assert summary["status"] == "ok"
    assert summary["contratacoes"] == len(expected) > 0
    assert sorted(ids(dest)) == expected
    # One published file per partition, under the fixed name, nothing else matched by readers' globs.
    published = [k for k in list_keys(dest, "pncp") if k.endswith(".parquet")]
    assert published == ["pncp/year=2025/month=10/day=22/part-0.parquet"]
    # Typed columns with the API's names, lineage, and the partition columns.
    table = read_bronze(dest)
    assert str(table.schema.field("valorTotalEstimado").type) == "decimal128(38, 6)"
    assert str(table.schema.field("dataPublicacaoPncp").type) == "timestamp[us]"
    assert table.schema.field("orgaoEntidade").type.get_field_index("cnpj") >= 0
    assert set(table.column("_run_id").to_pylist()) == {summary["run_id"]}
    assert set(table.column("day").to_pylist()) == {22}


def test_unknown_fields_from_the_api_are_kept(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    assert ingest(sim, dest).code == 0
    truth = {r["numeroControlePNCP"]: r for r in sim.truth(DAY)["contratacoes"]}
    with_unknown = [k for k, r in truth.items() if "campoNovoSimulado" in r]
    assert with_unknown, "the simulator should serve some records with an unknown field"
    table = read_bronze(dest).to_pylist()
    extra = {r["numeroControlePNCP"]: r["_extra"] for r in table}
    for key in with_unknown:
        assert "campoNovoSimulado" in (extra[key] or "")


def test_running_the_same_day_twice_writes_nothing_new(sim, dest):
    assert ingest(sim, dest).code == 0
    before = list_keys(dest)
    second = ingest(sim, dest)
    assert second.code == 0, second.stderr
    assert second.json["contratacoes"] == 0
    assert second.json["checkpoints"] == 0
    assert sorted(ids(dest)) == truth_ids(sim)
    assert [k for k in list_keys(dest) if "/lease/" not in k] == [k for k in before if "/lease/" not in k]


def test_new_contratacoes_are_the_only_ones_written_on_the_next_run(sim, dest):
    assert ingest(sim, dest).code == 0
    first = set(ids(dest))
    sim.grow(DAY, 7)
    second = ingest(sim, dest)
    assert second.code == 0, second.stderr
    assert second.json["contratacoes"] == 7
    after = ids(dest)
    assert len(after) == len(set(after)) == len(first) + 7
    assert sorted(after) == truth_ids(sim)


def test_a_range_of_days_lands_each_day_in_its_partition(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    result = run_cli(
        "contratacoes",
        "--date",
        "2025-10-20",
        "--to",
        "2025-10-22",
        "--dest",
        dest,
        "--base-url",
        sim.base_url,
        "--json",
    )
    assert result.code == 0, result.stderr
    assert result.json["dates"] == ["2025-10-20", "2025-10-21", "2025-10-22"]
    table = read_bronze(dest)
    per_day = Counter(table.column("day").to_pylist())
    for day in (20, 21, 22):
        assert per_day[day] == len(truth_ids(sim, f"2025-10-{day}"))


def test_only_the_requested_modalidades_are_listed(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    result = ingest(sim, dest, "--modalidade", "6", "--modalidade", "8")
    assert result.code == 0, result.stderr
    expected = sorted(r["numeroControlePNCP"] for r in sim.truth(DAY)["contratacoes"] if r["modalidadeId"] in (6, 8))
    assert sorted(ids(dest)) == expected


@pytest.mark.parametrize("kill_after_commits", [1, 3])
def test_sigkill_mid_day_then_rerun_gives_exactly_the_uninterrupted_rows(sim_factory, dest, kill_after_commits):
    # Slow pages and small checkpoints so the day takes many commits; kill -9 after some.
    sim = sim_factory(seed=11, per_day=400, latency_ms=40)
    env = cli_env(PNCP_CONSULTA_CONCURRENCY="2")
    proc = subprocess.Popen(
        cli_command(
            "contratacoes",
            "--date",
            DAY,
            "--dest",
            dest,
            "--base-url",
            sim.base_url,
            "--checkpoint-every",
            "20",
            "--json",
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(
            lambda: len([k for k in list_keys(dest, "_state/pncp") if "/commits/" in k]) >= kill_after_commits
            or proc.poll() is not None,
            60,
            "checkpoint commits",
        )
        assert proc.poll() is None, "the run finished before it could be killed: make the day slower"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    # Readers see only published data: nothing, or a consistent earlier publish, never duplicates.
    seen = ids(dest)
    assert len(seen) == len(set(seen))
    committed = [k for k in list_keys(dest, "_state/pncp") if "/commits/" in k]
    assert len(committed) >= kill_after_commits

    rerun = ingest(sim, dest, env=env)
    assert rerun.code == 0, rerun.stderr
    assert f"published {len(committed)} committed checkpoint(s) of an earlier run" in rerun.stderr
    assert rerun.json["contratacoes"] == len(truth_ids(sim)) - 20 * len(committed)
    final = ids(dest)
    assert len(final) == len(set(final)), "a contratação was written twice"
    assert sorted(final) == truth_ids(sim), "a contratação was lost"
    # No staged debris (nor a killed write's temp file) is left once the day is published.
    assert [k for k in list_keys(dest, "_state/pncp", hidden=True) if "/parts/" in k or "/commits/" in k] == []
    assert [k for k in list_keys(dest, "pncp", hidden=True)] == ["pncp/year=2025/month=10/day=22/part-0.parquet"]


def test_faults_are_retried_until_the_day_is_complete(sim_factory, tmp_path):
    sim = sim_factory(
        seed=5,
        per_day=1500,
        faults={
            "rate_429": 0.05,
            "burst_429": 3,
            "rate_5xx": 0.08,
            "rate_timeout": 0.03,
            "hang_s": 3,
            "rate_drop": 0.05,
            "rate_truncate": 0.05,
            "rate_spurious_422": 0.03,
        },
    )
    dest = str(tmp_path / "bronze")
    result = ingest(sim, dest, "--timeout", "1", "--max-retries", "12", env=cli_env(PNCP_CONSULTA_CONCURRENCY="4"))
    assert result.code == 0, result.stderr
    assert result.json["retries"] > 0
    assert result.json["requests"] > result.json["retries"]
    assert sorted(ids(dest)) == truth_ids(sim)
    faults = sim.stats()["faults"]
    print(faults)
    assert len([kind for kind, n in faults.items() if n]) >= 4, faults
    # (aiohttp itself resends a request once when a kept-alive connection drops, so not every
    # injected fault costs one of our retries.)
    assert result.json["retries"] >= sum(faults.values()) * 0.5, (result.json["retries"], faults)


def test_a_page_that_keeps_failing_is_reported_and_the_run_exits_1(sim_factory, tmp_path):
    sim = sim_factory(seed=5, per_day=120, faults={"rate_5xx": 1.0, "families": ["consulta"]})
    dest = str(tmp_path / "bronze")
    result = ingest(sim, dest, "--max-retries", "1")
    assert result.code == 1, result.stderr
    assert result.json["status"] == "partial"
    assert result.json["failed"] > 0
    assert "run the same command again" in result.stderr
    assert ids(dest) == []
    # The API recovers: the next run completes the day.
    sim.set_faults()
    again = ingest(sim, dest)
    assert again.code == 0, again.stderr
    assert sorted(ids(dest)) == truth_ids(sim)


def test_a_second_run_on_a_held_day_exits_3_naming_the_holder(sim_factory, tmp_path):
    sim = sim_factory(seed=3, per_day=200, latency_ms=150)
    dest = str(tmp_path / "bronze")
    env = cli_env(PNCP_CONSULTA_CONCURRENCY="1")
    first = subprocess.Popen(
        cli_command("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any("/lease/" in k for k in list_keys(dest, "_state")), 30, "the first run's lease")
        second = ingest(sim, dest, env=env)
        assert second.code == 3, second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) <= 3
    finally:
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert sorted(ids(dest)) == truth_ids(sim)


def test_the_listing_publishes_on_the_cadence_until_it_knows_the_day_is_ending(sim, tmp_path):
    """A listing knows its size once every modalidade's page 1 is in: 50 contratações at one a
    checkpoint publish after 20 commits and at the end, not after 40 too."""
    dest = str(tmp_path / "bronze")
    result = run_cli(
        "contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--checkpoint-every", "1", "-v"
    )
    assert result.code == 0, result.stderr
    published = [
        line.split("published ")[1].split(" rows")[0] for line in result.stderr.splitlines() if "published " in line
    ]
    assert len(published) == 2 and published[-1] == "50", result.stderr
