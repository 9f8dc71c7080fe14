"""Completeness against a PNCP that misbehaves: listings checked against ``totalRegistros``.

The simulator grows a day while it is being listed (``grow_*`` faults): new contratações are
published in front of the listing, so every page shifts between two page fetches.
"""

from __future__ import annotations

from collections import Counter

from bronze import cli_env, ids, read_bronze, run_cli

DAY = "2025-10-22"


def listing(sim, dest, *extra, env=None):
    return run_cli("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json", *extra, env=env)


def truth_ids(sim) -> set[str]:
    return {r["numeroControlePNCP"] for r in sim.truth(DAY)["contratacoes"]}


def test_a_day_that_grows_while_listed_lands_whole(sim_factory, tmp_path):
    # Every 2nd page request publishes 7 new contratações in front of the listing, 60 at most:
    # pages fetched concurrently shift under the run, and a single pass misses records.
    sim = sim_factory(
        seed=11, per_day=400, faults={"grow_every": 2, "grow_by": 7, "grow_max": 60, "grow_order": "front"}
    )
    dest = str(tmp_path / "bronze")
    before = truth_ids(sim)
    result = listing(sim, dest, "--verbose", env=cli_env(PNCP_CONSULTA_CONCURRENCY="4"))
    assert result.code == 0, result.stderr
    landed = ids(dest)
    assert len(landed) == len(set(landed))  # no duplicates
    assert before <= set(landed)  # everything that existed when the run started
    assert set(landed) == truth_ids(sim)  # and what appeared while it listed, once it settled
    assert sim.truth(DAY)["added"], "the day should have grown during the run"
    assert "listing it again" in result.stderr  # the re-listing is what made it whole
    assert "PNCP now reports" in result.stderr  # a changing total is logged at --verbose


def test_a_listing_that_never_settles_is_a_failure_the_next_run_retries(sim_factory, tmp_path):
    sim = sim_factory(seed=12, per_day=300, faults={"grow_every": 1, "grow_by": 3, "grow_max": 100000})
    dest = str(tmp_path / "bronze")
    result = listing(sim, dest, env=cli_env(PNCP_CONSULTA_CONCURRENCY="4"))
    assert result.code == 1, result.stderr
    failed = [f for f in result.json["failures"] if f["what"].endswith("listing")]
    assert failed and "PNCP reports" in failed[0]["reason"] and "after 3 passes" in failed[0]["reason"]
    assert result.json["status"] == "partial"
    # PNCP settles: the next run lists again and completes the day, without duplicates.
    sim.set_faults()
    again = listing(sim, dest)
    assert again.code == 0, again.stderr
    landed = ids(dest)
    assert Counter(landed).most_common(1)[0][1] == 1 and set(landed) == truth_ids(sim)


def test_a_stable_day_is_listed_once(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    sim.reset_stats()
    result = listing(sim, dest)
    assert result.code == 0, result.stderr
    pages = sum(d["pages"] for d in result.json["days"])
    requests = sim.stats()["requests"]
    assert requests["contratacoes"] == pages  # no second pass when the totals agree


# -- itens and arquivos never cut by a page cap -----------------------------------------------------


def details(sim, dest, *extra):
    return run_cli("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json", *extra)


def details_rows(dest) -> dict[str, dict]:
    rows = read_bronze(dest, "pncp_details").to_pylist()
    by_id = {r["numeroControlePNCP"]: r for r in rows}
    assert len(by_id) == len(rows), "a contratação has two details rows"
    return by_id


def test_a_silent_page_cap_cuts_no_itens(sim_factory, tmp_path):
    # The server serves at most 100 per page whatever tamanhoPagina asks: the 150-, 500- and
    # 1,203-item compras must still land whole, confirmed by /quantidade.
    sim = sim_factory(seed=7, per_day=40, big_items=True, page_cap=100)
    dest = str(tmp_path / "bronze")
    assert listing(sim, dest).code == 0
    result = details(sim, dest)
    assert result.code == 0, result.stderr
    truth = sim.truth(DAY)
    rows = details_rows(dest)
    assert set(rows) == {r["numeroControlePNCP"] for r in truth["contratacoes"]}
    for cid, row in rows.items():
        assert [i["numeroItem"] for i in row["itens"]] == list(range(1, truth["itens"][cid] + 1)), cid
        assert len(row["arquivos"]) == truth["arquivos"][cid], cid
        assert row["metadata"]["total_itens"] == truth["itens"][cid]
    assert max(truth["itens"].values()) == 1203
    requests = sim.stats()["requests"]
    assert requests.get("other", 0) > 0  # /quantidade was asked where a page could have been capped


def test_a_page_that_repeats_forever_fails_the_compra_not_the_run(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=20, big_items=True)
    dest = str(tmp_path / "bronze")
    assert listing(sim, dest).code == 0
    truth = sim.truth(DAY)
    big = next(cid for cid, n in truth["itens"].items() if n == 1203)
    sim.set_faults(repeat_ids=[big])
    result = details(sim, dest)
    assert result.code == 1, result.stderr
    # Its resultados need its itens: they fail with them.
    assert [f["what"] for f in result.json["failures"]] == [f"{big} itens, resultados"]
    assert "repeats an earlier page" in result.json["failures"][0]["reason"]
    rows = details_rows(dest)
    # Every other compra landed whole; the looping one is not marked done (its arquivos landed).
    assert set(rows) == {r["numeroControlePNCP"] for r in truth["contratacoes"]}
    assert rows[big]["itens"] is None
    assert all(len(r["itens"]) == truth["itens"][c] for c, r in rows.items() if c != big)
    # PNCP mends: the next run fetches only what failed, and completes.
    sim.set_faults()
    again = details(sim, dest)
    assert again.code == 0, again.stderr
    assert len(details_rows(dest)[big]["itens"]) == 1203


def test_a_retired_modalidade_is_still_listed(sim_factory, tmp_path):
    # Dispensa (8), the largest modalidade, retired by PNCP: an older day still has its contratações.
    sim = sim_factory(seed=7, per_day=120, faults={"retired": [8]})
    dest = str(tmp_path / "bronze")
    result = listing(sim, dest)
    assert result.code == 0, result.stderr
    truth = sim.truth(DAY)["contratacoes"]
    assert any(r["modalidadeId"] == 8 for r in truth)
    assert set(ids(dest)) == {r["numeroControlePNCP"] for r in truth}
