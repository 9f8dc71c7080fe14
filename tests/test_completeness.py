"""Completeness against a PNCP that misbehaves: listings checked against ``totalRegistros``.

The simulator grows a day while it is being listed (``grow_*`` faults): new contratações are
published in front of the listing, so every page shifts between two page fetches.
"""

from __future__ import annotations

from collections import Counter

from bronze import cli_env, ids, run_cli

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
