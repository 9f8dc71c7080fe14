"""`pncp-ingest details` end to end: the real CLI, HTTP to the simulator, local folder and S3."""

from __future__ import annotations

import random
import subprocess

from bronze import cli_command, cli_env, kill_at_a_random_moment, list_keys, read_bronze, run_cli

DAY = "2025-10-22"


def contratacoes(sim, dest, day=DAY, env=None):
    result = run_cli("contratacoes", "--date", day, "--dest", dest, "--base-url", sim.base_url, "--json", env=env)
    assert result.code == 0, result.stderr
    return result


def details(sim, dest, *extra, day=DAY, env=None):
    return run_cli("details", "--date", day, "--dest", dest, "--base-url", sim.base_url, "--json", *extra, env=env)


def landed(dest) -> dict[str, dict]:
    """numeroControlePNCP → its pncp_details row, checking no contratação appears twice."""
    rows = read_bronze(dest, "pncp_details").to_pylist()
    by_id = {r["numeroControlePNCP"]: r for r in rows}
    assert len(by_id) == len(rows), "a contratação has two details rows"
    return by_id


def assert_complete(sim, dest, day=DAY):
    truth = sim.truth(day)
    rows = landed(dest)
    gone = set(truth["gone"])
    assert set(rows) == {r["numeroControlePNCP"] for r in truth["contratacoes"]} - gone
    for cid, row in rows.items():
        assert len(row["itens"]) == truth["itens"][cid], cid
        assert [i["numeroItem"] for i in row["itens"]] == list(range(1, truth["itens"][cid] + 1)), cid
        assert len(row["arquivos"]) == truth["arquivos"][cid], cid
        assert row["metadata"]["total_itens"] == truth["itens"][cid]


def test_every_item_lands_for_0_10_11_500_501_and_1203_itens(sim_factory, dest):
    sim = sim_factory(seed=7, per_day=40, big_items=True)
    contratacoes(sim, dest)
    result = details(sim, dest)
    assert result.code == 0, result.stderr
    assert_complete(sim, dest)
    counts = sorted(len(r["itens"]) for r in landed(dest).values())
    for n in (0, 10, 11, 500, 501, 1203):
        assert n in counts
    truth = sim.truth(DAY)
    assert result.json["itens"] == sum(truth["itens"].values())
    assert result.json["contratacoes"] == len(truth["contratacoes"])
    # Fetched-and-empty is [], never null.
    empty = [r for r in landed(dest).values() if r["metadata"]["total_itens"] == 0]
    assert empty and all(r["itens"] == [] for r in empty)


def test_a_second_run_after_a_complete_one_makes_no_detail_requests(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    assert details(sim, dest).code == 0
    sim.reset_stats()
    again = details(sim, dest)
    assert again.code == 0, again.stderr
    assert again.json["contratacoes"] == 0
    requests = sim.stats()["requests"]
    assert requests.get("itens", 0) == 0 and requests.get("arquivos", 0) == 0
    assert_complete(sim, dest)


def test_batch_size_takes_at_most_n_and_the_next_run_continues(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    total = len(sim.truth(DAY)["contratacoes"])
    first = details(sim, dest, "--batch-size", "20")
    assert first.code == 0, first.stderr
    assert first.json["contratacoes"] == 20
    assert len(landed(dest)) == 20
    second = details(sim, dest, "--batch-size", "1000")
    assert second.json["contratacoes"] == total - 20
    assert_complete(sim, dest)


def test_only_fetches_one_kind_and_a_later_run_completes_the_other(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    assert details(sim, dest, "--only", "itens").code == 0
    rows = landed(dest)
    assert all(r["itens"] is not None and r["arquivos"] is None for r in rows.values())
    assert all(r["metadata"]["total_arquivos"] is None for r in rows.values())
    sim.reset_stats()
    assert details(sim, dest, "--only", "arquivos").code == 0
    assert sim.stats()["requests"].get("itens", 0) == 0, "itens were fetched again"
    assert_complete(sim, dest)


def test_no_resume_refetches_the_day_and_replaces_it(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    first = details(sim, dest)
    again = details(sim, dest, "--no-resume")
    assert again.code == 0, again.stderr
    assert again.json["contratacoes"] == first.json["contratacoes"]
    assert {r["_run_id"] for r in landed(dest).values()} == {again.json["run_id"]}
    assert_complete(sim, dest)


def test_a_removed_compra_is_recorded_as_gone_and_not_retried(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    victim = sim.truth(DAY)["contratacoes"][3]["numeroControlePNCP"]
    sim.remove(victim)
    result = details(sim, dest)
    assert result.code == 0, result.stderr
    assert result.json["days"][0]["gone"] == 1
    assert f"{victim} is gone" in result.stderr
    assert victim not in landed(dest)
    sim.reset_stats()
    again = details(sim, dest)
    assert again.code == 0 and again.json["days"][0]["gone"] == 0
    assert sum(sim.stats()["requests"].get(k, 0) for k in ("itens", "arquivos")) == 0
    assert_complete(sim, dest)


def test_details_before_contratacoes_fails_loudly_and_says_what_to_run(sim, tmp_path):
    # A mistyped --dest or a details job scheduled before its listing must not look like "ok".
    dest = str(tmp_path / "bronze")
    result = details(sim, dest)
    assert result.code == 1, result.stderr
    assert result.json["status"] == "partial" and result.json["failed"] == 1
    assert "run `pncp-ingest contratacoes --date 2025-10-22` first (same --dest)" in result.stderr
    assert not list_keys(dest, hidden=True), "a run that had nothing to work on wrote state"
    # Once the listing has run, the same command succeeds.
    assert contratacoes(sim, dest).code == 0
    assert details(sim, dest).code == 0


def test_details_of_a_day_listed_empty_is_ok(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=0, big_items=False)
    dest = str(tmp_path / "bronze")
    assert contratacoes(sim, dest).code == 0
    result = details(sim, dest)
    assert result.code == 0, result.stderr
    assert result.json["days"][0]["status"] == "skipped"
    assert "found no contratações" in result.stderr


def test_under_full_fault_injection_repeated_runs_converge(sim_factory, tmp_path):
    sim = sim_factory(seed=9, per_day=60, big_items=False)
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    sim.set_faults(
        rate_429=0.05,
        burst_429=2,
        rate_5xx=0.15,
        rate_timeout=0.03,
        hang_s=2,
        rate_drop=0.05,
        rate_truncate=0.05,
        families=["detail"],
    )
    codes = []
    for _ in range(20):
        result = details(sim, dest, "--max-retries", "1", "--timeout", "0.5")
        codes.append(result.code)
        if result.code == 0:
            break
        assert result.code == 1, result.stderr
        assert result.json["status"] == "partial" and result.json["failed"] > 0
        assert f"{result.json['days'][0]['failed']} failed" in result.stderr
    assert codes[-1] == 0, codes
    assert 1 in codes, "the faults never made a run fail: the test proves nothing"
    sim.set_faults()
    assert_complete(sim, dest)


def test_sigkill_at_random_moments_then_resume_gives_exactly_the_uninterrupted_rows(sim_factory, dest):
    sim = sim_factory(seed=13, per_day=150, big_items=True, latency_ms=15)
    contratacoes(sim, dest)
    rng = random.Random(2026)
    env = cli_env(PNCP_CONCURRENCY="8")
    kills = 0
    command = cli_command(
        "details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--checkpoint-every", "10"
    )

    def progress() -> int:
        return len([k for k in list_keys(dest, "_state/pncp_details") if "/commits/" in k])

    for round_ in range(4):
        kills += kill_at_a_random_moment(command, env, rng, progress, commits=(1, 3), instant=(0.3, 1.2))
        rows = read_bronze(dest, "pncp_details").column("numeroControlePNCP").to_pylist()
        assert len(rows) == len(set(rows)), f"duplicated rows visible after kill {round_}"
    assert kills >= 2, "the runs finished before they could be killed: make the day slower"
    final = details(sim, dest, env=env)
    assert final.code == 0, final.stderr
    assert_complete(sim, dest)
    assert [k for k in list_keys(dest, "_state/pncp_details", hidden=True) if "/parts/" in k or "/commits/" in k] == []


def test_details_and_contratacoes_may_run_on_the_same_day_at_once(sim_factory, tmp_path):
    sim = sim_factory(seed=21, per_day=120, latency_ms=30)
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    sim.grow(DAY, 40)
    env = cli_env(PNCP_CONSULTA_CONCURRENCY="1")
    listing = subprocess.Popen(
        cli_command("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        during = details(sim, dest, env=env)
    finally:
        _, err = listing.communicate(timeout=120)
    assert listing.returncode == 0, err
    assert during.code == 0, during.stderr
    after = details(sim, dest, env=env)
    assert after.code == 0, after.stderr
    assert during.json["contratacoes"] + after.json["contratacoes"] == len(sim.truth(DAY)["contratacoes"])
    assert_complete(sim, dest)


def test_every_checkpoint_commits_and_the_publish_just_before_the_last_is_skipped(sim, tmp_path):
    """50 contratações, a checkpoint each: commits run in the background while the writer takes
    the next results, and all 50 land; publishes come after 20 commits and at the end (50), not
    after 40 too, since the last publish then folds no more than 30 (1.5x the cadence of 20).
    (A publish folds what is committed when it starts: a background commit may add one.)"""
    dest = str(tmp_path / "bronze")
    contratacoes(sim, dest)
    result = details(sim, dest, "--checkpoint-every", "1", "-v")
    assert result.code == 0, result.stderr
    assert result.json["checkpoints"] == 50
    committed = [line for line in result.stderr.splitlines() if "committed details of 1 contratações" in line]
    assert sorted(int(line.split("(checkpoint ")[1].rstrip(")")) for line in committed) == list(range(1, 51))
    assert_complete(sim, dest)
    published = [
        line.split("published ")[1].split(" rows")[0] for line in result.stderr.splitlines() if "published " in line
    ]
    assert len(published) == 2 and published[-1] == "50", result.stderr
