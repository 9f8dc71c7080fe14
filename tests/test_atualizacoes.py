"""`pncp-ingest atualizacoes` end to end (real CLI, simulator, local folder and S3), and the
newest-version-wins rule of the ``pncp`` publish merge."""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from bronze import cli_command, cli_env, kill_at_a_random_moment, list_keys, read_bronze, run_cli, wait_for

from pncp_ingest.records import Contratacao, bronze_row
from pncp_ingest.records.schema import ATUALIZACOES, CONTRATACOES, newest
from pncp_ingest.writer import merge, write_part

PUBLISHED = ("2025-10-20", "2025-10-21")
LINEAGE = ("_ingested_at", "_run_id")


def cli(sim, dest, command, day, *extra, env=None):
    return run_cli(command, "--date", day, "--dest", dest, "--base-url", sim.base_url, "--json", *extra, env=env)


def ingest(sim, dest, days=PUBLISHED):
    for day in days:
        for command in ("contratacoes", "details"):
            result = cli(sim, dest, command, day)
            assert result.code == 0, result.stderr


def atualizacoes(sim, dest, first, *extra, env=None):
    return cli(sim, dest, "atualizacoes", first, *extra, env=env)


def bare(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in LINEAGE}


def expected_row(raw: dict[str, Any]) -> dict[str, Any]:
    """A truth record as bronze holds it (the comparison is exact: decimals, timestamps, structs);
    a field the record did not send is absent here and a null column in bronze."""
    return bare(bronze_row(Contratacao, raw))


def by_day(rows: list[dict[str, Any]]) -> dict[date, list[dict[str, Any]]]:
    grouped: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[date(row["year"], row["month"], row["day"])].append(row)
    return grouped


def assert_current(sim, dest, ingested=PUBLISHED, details=True):
    """``pncp`` (and ``pncp_details``) equal the simulator's current state, row for row."""
    pncp = by_day(read_bronze(dest, "pncp").to_pylist())
    assert {d.isoformat() for d in pncp} >= set(ingested)
    detail_rows = by_day(read_bronze(dest, "pncp_details").to_pylist()) if details else {}
    for day, rows in pncp.items():
        truth = sim.truth(day, details=details)
        current = {r["numeroControlePNCP"]: r for r in truth["contratacoes"]}
        landed = {r["numeroControlePNCP"]: r for r in rows}
        assert len(landed) == len(rows), f"{day}: a contratação has two rows"
        if day.isoformat() in ingested:
            assert set(landed) == set(current), day
        for cid, row in landed.items():
            got = {k: v for k, v in bare(row).items() if k not in ("year", "month", "day")}
            expected = expected_row(current[cid])
            assert set(expected) <= set(got)  # a field the record did not send is a null column
            assert got == {k: expected.get(k) for k in got}, f"{day} {cid} is not the current version"
        if not details:
            continue
        landed_details = {r["numeroControlePNCP"]: r for r in detail_rows.get(day, [])}
        if day.isoformat() in ingested:
            assert set(landed_details) == set(current) - set(truth["gone"]), day
        for cid, row in landed_details.items():
            want = truth["details"][cid]
            assert [i["numeroItem"] for i in row["itens"]] == [i["numeroItem"] for i in want["itens"]], cid
            assert [i["situacaoCompraItem"] for i in row["itens"]] == [
                i.get("situacaoCompraItem") for i in want["itens"]
            ], cid
            assert [a["sequencialDocumento"] for a in row["arquivos"]] == [
                a["sequencialDocumento"] for a in want["arquivos"]
            ], cid


def history(dest) -> dict[tuple[str, datetime | None], dict[str, Any]]:
    rows = read_bronze(dest, "pncp_atualizacoes").to_pylist()
    keyed = {(r["numeroControlePNCP"], r["dataAtualizacaoGlobal"]): r for r in rows}
    assert len(keyed) == len(rows), "a version is twice in pncp_atualizacoes"
    return keyed


def assert_history(sim, dest, seen: set[tuple[str, str]], ingested=PUBLISHED):
    """Every version a run listed is in history once, exactly as served; nothing bronze held is lost."""
    kept = history(dest)
    for cid, glob in seen:
        assert (cid, datetime.fromisoformat(glob)) in kept, f"listed version {cid} {glob} is not in history"
    current = {}
    for day in ingested:
        for cid, versions in sim.truth(day, versions=True)["versions"].items():
            exact = {v["dataAtualizacaoGlobal"]: v for v in versions}
            current[cid] = versions[-1]["dataAtualizacaoGlobal"]
            for (hid, glob), row in kept.items():
                if hid == cid:
                    want = exact[glob.isoformat()]
                    got = {k: v for k, v in bare(row).items() if k not in ("year", "month", "day")}
                    expected = expected_row(want)
                    assert set(expected) <= set(got) and got == {k: expected.get(k) for k in got}
                    # Partitioned by the update day of the version.
                    assert date(row["year"], row["month"], row["day"]) == glob.date()
            # The first version (landed by contratacoes) and every listed one: in history or current.
            held = {versions[0]["dataAtualizacaoGlobal"]} | {g for c, g in seen if c == cid}
            for glob in held - {current[cid]}:
                assert (cid, datetime.fromisoformat(glob)) in kept, f"{cid} {glob} was replaced and lost"


def listed(sim, day) -> set[tuple[str, str]]:
    return {(r["numeroControlePNCP"], r["dataAtualizacaoGlobal"]) for r in sim.truth_atualizacao(day)["contratacoes"]}


# -- the merge rule ------------------------------------------------------------------------------


def _row(cid: str, glob: str | None, atualizacao: str | None = None, objeto: str = "") -> dict[str, Any]:
    raw = {
        "numeroControlePNCP": cid,
        "dataAtualizacaoGlobal": glob,
        "dataAtualizacao": atualizacao,
        "objetoCompra": objeto,
    }
    return bronze_row(Contratacao, raw)


def test_newest_keeps_the_larger_version_whatever_the_order():
    old, new = _row("a", "2025-10-20T10:00:00", objeto="old"), _row("a", "2025-10-22T09:00:00", objeto="new")
    assert newest(old, new)["objetoCompra"] == "new"
    assert newest(new, old)["objetoCompra"] == "new"
    # dataAtualizacao stands in for a missing dataAtualizacaoGlobal; a tie goes to the later row.
    assert (
        newest(_row("a", None, "2025-10-23T00:00:00", "x"), _row("a", None, "2025-10-21T00:00:00", "y"))["objetoCompra"]
        == "x"
    )
    assert (
        newest(_row("a", "2025-10-20T10:00:00", objeto="1"), _row("a", "2025-10-20T10:00:00", objeto="2"))[
            "objetoCompra"
        ]
        == "2"
    )
    assert newest(_row("a", "2025-10-20T10:00:00", objeto="v"), _row("a", None, objeto="none"))["objetoCompra"] == "v"


def test_a_publish_never_puts_an_older_version_back(tmp_path: Path):
    """Published newest, then parts holding older versions in any order: the newest stays."""
    new = _row("a", "2025-10-23T01:00:00", objeto="v3")
    older = [_row("a", "2025-10-21T01:00:00", objeto="v2"), _row("a", "2025-10-20T01:00:00", objeto="v1")]
    other = _row("b", "2025-10-20T01:00:00", objeto="b")
    published = tmp_path / "published.parquet"
    write_part([new, other], CONTRATACOES.schema, published)
    parts = []
    for i, row in enumerate(older):
        parts.append(tmp_path / f"p{i}.parquet")
        write_part([row], CONTRATACOES.schema, parts[-1])
    out = tmp_path / "out.parquet"
    rows, keys = merge(published, parts, out, CONTRATACOES)
    table = {r["numeroControlePNCP"]: r["objetoCompra"] for r in pq.read_table(out).to_pylist()}
    assert (rows, sorted(keys), table) == (2, ["a", "b"], {"a": "v3", "b": "b"})
    # Parts alone, older after newer: still the newest.
    write_part([new], CONTRATACOES.schema, parts[0])
    rows, _ = merge(None, [parts[0], parts[1]], out, CONTRATACOES)
    assert pq.read_table(out).to_pylist()[0]["objetoCompra"] == "v3"


def test_history_is_keyed_by_contratacao_and_version(tmp_path: Path):
    v1, v2 = _row("a", "2025-10-20T01:00:00", objeto="v1"), _row("a", "2025-10-21T01:00:00", objeto="v2")
    assert ATUALIZACOES.row_key(v1) != ATUALIZACOES.row_key(v2)
    with tempfile.TemporaryDirectory() as tmp:
        part, again, out = Path(tmp) / "p.parquet", Path(tmp) / "q.parquet", Path(tmp) / "o.parquet"
        write_part([v1, v2], ATUALIZACOES.schema, part)
        write_part([v2], ATUALIZACOES.schema, again)
        rows, keys = merge(None, [part, again], out, ATUALIZACOES)
        assert rows == 2 and sorted(keys) == sorted([ATUALIZACOES.row_key(v1), ATUALIZACOES.row_key(v2)])
        assert sorted(keys) == sorted(ATUALIZACOES.table_keys(pq.read_table(out)).to_pylist())


# -- end to end ----------------------------------------------------------------------------------


def test_updates_land_current_in_pncp_and_every_version_in_history(sim_factory, dest):
    sim = sim_factory(seed=7, per_day=30, big_items=False)
    ingest(sim, dest)
    seen: set[tuple[str, str]] = set()
    for update_day in ("2025-10-23", "2025-10-24"):
        updated = sim.update(update_day, PUBLISHED[0], PUBLISHED[1], share=0.4)
        assert updated, "the round changed nothing: the test proves nothing"
        seen |= listed(sim, update_day)
        result = atualizacoes(sim, dest, update_day)
        assert result.code == 0, result.stderr
        assert result.json["command"] == "atualizacoes" and result.json["status"] == "ok"
    assert_current(sim, dest)
    assert_history(sim, dest, seen)
    # Versions replaced in pncp that contratacoes landed went to history under their own update day.
    assert any(d.isoformat() in PUBLISHED for d in by_day(read_bronze(dest, "pncp_atualizacoes").to_pylist()))

    # A second run over the same update days writes nothing and refetches no details.
    before = sorted(list_keys(dest, "pncp")) + sorted(list_keys(dest, "pncp_details"))
    sim.reset_stats()
    again = atualizacoes(sim, dest, "2025-10-24", "--back", "1")
    assert again.code == 0, again.stderr
    assert again.json["dates"] == ["2025-10-23", "2025-10-24"]
    assert again.json["checkpoints"] == 0, again.json["days"]
    requests = sim.stats()["requests"]
    assert requests.get("itens", 0) == 0 and requests.get("arquivos", 0) == 0
    assert sorted(list_keys(dest, "pncp")) + sorted(list_keys(dest, "pncp_details")) == before

    # contratacoes after atualizacoes keeps the newest version.
    for day in PUBLISHED:
        assert cli(sim, dest, "contratacoes", day).code == 0
    assert_current(sim, dest)


def test_a_record_not_yet_in_bronze_is_added_and_details_can_be_skipped(sim_factory, tmp_path):
    sim = sim_factory(seed=11, per_day=20, big_items=False)
    dest = str(tmp_path / "bronze")
    sim.update("2025-10-23", "2025-10-20", share=0.5)
    result = atualizacoes(sim, dest, "2025-10-23", "--no-details")
    assert result.code == 0, result.stderr
    assert read_bronze(dest, "pncp_details").num_rows == 0
    assert_current(sim, dest, ingested=(), details=False)
    assert len(history(dest)) == len(listed(sim, "2025-10-23"))
    # The publication day listed later: contratacoes adds the rest, keeps the updated ones newest.
    assert cli(sim, dest, "contratacoes", "2025-10-20").code == 0
    assert_current(sim, dest, ingested=("2025-10-20",), details=False)


def test_status_shows_stale_details_until_atualizacoes_refetches_them(sim_factory, tmp_path):
    sim = sim_factory(seed=5, per_day=20, big_items=False)
    dest = str(tmp_path / "bronze")
    ingest(sim, dest, days=("2025-10-20",))
    sim.update("2025-10-23", "2025-10-20", share=0.5)
    assert atualizacoes(sim, dest, "2025-10-23", "--no-details").code == 0
    status = run_cli("status", "--date", "2025-10-20", "--dest", dest, "--json")
    stale = status.json["days"][0]["details_stale"]
    changed = {c for c, g in listed(sim, "2025-10-23")}
    truth_ids = {r["numeroControlePNCP"] for r in sim.truth("2025-10-20")["contratacoes"]}
    assert stale == len(changed & truth_ids) > 0
    assert atualizacoes(sim, dest, "2025-10-23").code == 0
    status = run_cli("status", "--date", "2025-10-20", "--dest", dest, "--json")
    assert status.json["days"][0]["details_stale"] == 0
    assert_current(sim, dest, ingested=("2025-10-20",))


def test_an_update_whose_day_is_held_by_a_running_details_is_retried_then_left_pending(sim_factory, tmp_path):
    sim = sim_factory(seed=21, per_day=40, big_items=False)
    dest = str(tmp_path / "bronze")
    ingest(sim, dest, days=("2025-10-20",))
    sim.update("2025-10-23", "2025-10-20", share=0.5)
    # A details run that holds 2025-10-20 for minutes (one slow request at a time), while
    # atualizacoes' own detail requests go 32 at a time and finish in seconds.
    sim.set_faults(latency_ms=1500, families=["detail"])
    holder = subprocess.Popen(
        cli_command("details", "--date", "2025-10-20", "--dest", dest, "--base-url", sim.base_url, "--no-resume"),
        env=cli_env(PNCP_CONCURRENCY="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: any("/lease/" in k for k in list_keys(dest, "_state/pncp_details/2025-10-20")), 30, "lease")
        during = atualizacoes(sim, dest, "2025-10-23", "--verbose", env=cli_env(PNCP_CONCURRENCY="32"))
    finally:
        holder.kill()
        holder.communicate()
    # Retried after the other days, still held: named in the summary, exit 1, never skipped silently.
    assert during.code == 1, during.stderr
    assert "held days: retrying" in during.stderr
    assert [f["what"] for f in during.json["failures"]] == ["contratações of publication day 2025-10-20"], during.json[
        "failures"
    ]
    assert "left for the next run over 2025-10-23" in during.json["failures"][0]["reason"]
    status = run_cli("status", "--date", "2025-10-20", "--dest", dest, "--json")
    assert status.json["days"][0]["details_stale"] > 0
    sim.set_faults()
    after = atualizacoes(sim, dest, "2025-10-23")
    assert after.code == 0, after.stderr
    assert_current(sim, dest, ingested=("2025-10-20",))


@pytest.mark.parametrize("seed", [3])
def test_sigkill_at_random_instants_then_rerun_gives_the_same_result(sim_factory, dest, seed):
    sim = sim_factory(seed=seed, per_day=60, big_items=False, latency_ms=10)
    days = ("2025-10-20", "2025-10-21", "2025-10-22")
    ingest(sim, dest, days=days)
    for update_day in ("2025-10-23", "2025-10-24"):
        sim.update(update_day, days[0], days[-1], share=0.5)
    # What the runs list: a record changed on both days has left the first day's window.
    seen = listed(sim, "2025-10-23") | listed(sim, "2025-10-24")
    rng = random.Random(seed)
    env = cli_env(PNCP_CONCURRENCY="4")
    kills = 0
    command = cli_command(
        "atualizacoes", "--date", "2025-10-23", "--to", "2025-10-24", "--dest", dest, "--base-url", sim.base_url
    ) + ["--checkpoint-every", "5"]

    def progress() -> int:
        return len([k for k in list_keys(dest, "_state") if "/commits/" in k or "/manifest" in k])

    for _ in range(4):
        kills += kill_at_a_random_moment(command, env, rng, progress, commits=(1, 4), instant=(0.2, 1.5))
        pncp = read_bronze(dest, "pncp").column("numeroControlePNCP").to_pylist()
        assert len(pncp) == len(set(pncp)), "duplicated rows visible after a kill"
        history(dest)
    assert kills >= 2, "the runs finished before they could be killed: make the days slower"
    final = atualizacoes(sim, dest, "2025-10-23", "--to", "2025-10-24", env=env)
    assert final.code == 0, final.stderr
    assert_current(sim, dest, ingested=days)
    assert_history(sim, dest, seen, ingested=days)
    leftovers = [k for k in list_keys(dest, "_state", hidden=True) if "/parts/" in k or "/commits/" in k]
    assert leftovers == []


def test_a_rerun_removes_parts_a_publish_killed_between_records_and_parts_left_behind(sim_factory, tmp_path):
    """A publish deletes commit records, then their parts: killed in between, the day is complete
    but holds parts without records. The next run with nothing to fetch there still cleans them."""
    sim = sim_factory(seed=11, per_day=20, big_items=False)
    dest = str(tmp_path / "bronze")
    sim.update("2025-10-23", "2025-10-20", share=0.5)
    assert atualizacoes(sim, dest, "2025-10-23").code == 0
    parts = Path(dest) / "_state" / "pncp_details" / "2025-10-20" / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    (parts / "20261130T074034338024-20261130T074033Z-2e27ea-00001.parquet").write_bytes(b"PAR1 left behind")
    sim.reset_stats()
    again = atualizacoes(sim, dest, "2025-10-23")
    assert again.code == 0, again.stderr
    assert sim.stats()["requests"].get("itens", 0) == 0  # nothing to fetch: only the leftover to remove
    assert [k for k in list_keys(dest, "_state", hidden=True) if "/parts/" in k] == []


def test_backfill_with_atualizacoes_captures_the_range_and_a_rerun_skips_it(sim_factory, tmp_path):
    sim = sim_factory(seed=17, per_day=20, big_items=False)
    dest = str(tmp_path / "bronze")
    sim.update("2025-10-22", "2025-10-20", "2025-10-21", share=0.5)
    args = ("backfill", "--from", "2025-10-20", "--to", "2025-10-22", "--atualizacoes", "--dest", dest)
    first = run_cli(*args, "--base-url", sim.base_url, "--json")
    assert first.code == 0, first.stderr
    assert {d["day"] for d in first.json["days"] if d["dataset"] == "pncp_atualizacoes"} == {
        "2025-10-20",
        "2025-10-21",
        "2025-10-22",
    }
    assert_current(sim, dest, ingested=("2025-10-20", "2025-10-21", "2025-10-22"))
    assert len(history(dest)) >= len(listed(sim, "2025-10-22")) > 0
    sim.reset_stats()
    again = run_cli(*args, "--base-url", sim.base_url, "--json")
    assert again.code == 0, again.stderr
    assert sum(sim.stats()["requests"].values()) == 0, "a captured range was asked of the API again"
    assert {d["status"] for d in again.json["days"]} == {"skipped"}


def test_read_duckdb_shows_the_current_state_and_a_contratacao_history(sim_factory, tmp_path):
    pytest.importorskip("duckdb")
    sim = sim_factory(seed=7, per_day=20, big_items=False)
    dest = str(tmp_path / "bronze")
    assert cli(sim, dest, "contratacoes", "2025-10-20").code == 0
    updated = sim.update("2025-10-23", "2025-10-20", share=0.5)
    assert atualizacoes(sim, dest, "2025-10-23", "--no-details").code == 0
    cid = updated[0]["id"]
    versions = sim.truth("2025-10-20", versions=True)["versions"][cid]
    script = Path(__file__).resolve().parent.parent / "examples" / "read_duckdb.py"
    proc = subprocess.run([sys.executable, str(script), dest, "--history", cid], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert (
        lines[0]
        == f"current state: {read_bronze(dest).num_rows} contratações, {len(updated)} of them changed since first seen"
    )
    assert f"history of {cid}: {len(versions)} version(s), oldest first" in lines
    shown = [
        line.split("  ")[0]
        for line in lines[lines.index(f"history of {cid}: {len(versions)} version(s), oldest first") + 2 :]
    ]
    assert shown == [v["dataAtualizacaoGlobal"].replace("T", " ") for v in versions]
