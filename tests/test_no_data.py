"""PNCP says "no data" as a 204 or as a 200 with an empty body; a body cut short is something else.

Against the simulator, whose ``empty_200`` fault sends a share of its "no data" answers (a
modalidade without contratações that day, the page after the last, a compra without arquivos)
as a complete empty 200, alternately with ``Content-Length: 0`` and as an empty chunked body;
``rate_cut`` announces a 200 body's length and closes the connection halfway through it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest
from bronze import ids, run_cli
from test_client import compras, config, rows, with_client
from test_details import DAY, assert_complete, landed

from pncp_ingest.pncp import PncpClient


def test_the_simulator_sends_both_forms_of_an_empty_200_and_cuts_bodies_short(sim_factory):
    sim = sim_factory(seed=7, per_day=10)
    sim.set_faults(empty_200=1.0)
    past_the_end = "/consulta/v1/contratacoes/publicacao?dataInicial=20251022&dataFinal=20251022"
    url = f"{sim.base_url}{past_the_end}&codigoModalidadeContratacao=6&pagina=99&tamanhoPagina=50"
    with httpx.Client(trust_env=False) as client:
        first, second = client.get(url), client.get(url)
        assert first.status_code == second.status_code == 200 and first.content == second.content == b""
        assert first.headers["content-length"] == "0"
        assert second.headers["transfer-encoding"] == "chunked" and "content-length" not in second.headers
        sim.set_faults(rate_cut=1.0)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"{sim.base_url}/pncp/v1/modalidades")
    assert sim.stats()["faults"] == {"empty_200": 2, "cut": 1}


def test_an_empty_200_is_no_data_at_the_client_and_is_not_retried(sim_factory):
    sim = sim_factory(seed=7, per_day=40)
    sim.set_faults(empty_200=1.0)
    truth = sim.truth(DAY)
    without = [c for c in compras(sim) if truth["arquivos"][c[0]] == 0]
    assert without, "the day should have compras without arquivos"

    async def body(client: PncpClient, counting: Any) -> None:
        for _, cnpj, ano, seq in without:
            assert await rows(client, "arquivos", cnpj, ano, seq) == []
        past_the_end = await client.contratacoes_page(date.fromisoformat(DAY), 6, 99)
        assert past_the_end.records == [] and past_the_end.total_registros == 0
        assert client.stats.retries == 0 and client.stats.statuses.get("204", 0) == 0
        assert client.stats.ok == len(without) + 1

    with_client(config(sim), body)
    # Both forms were sent: Content-Length: 0 and an empty chunked body.
    assert sim.stats()["faults"]["empty_200"] == len(without) + 1 >= 2


def test_a_body_cut_short_is_retried_at_the_client(sim_factory):
    sim = sim_factory(seed=7, per_day=30, big_items=True)
    truth = sim.truth(DAY)
    sim.set_faults(rate_cut=0.3, empty_200=0.5, families=["detail"], seed=2)

    async def body(client: PncpClient, counting: Any) -> dict[str, tuple[int, int]]:
        got = {}
        for cid, cnpj, ano, seq in compras(sim):
            got[cid] = (
                len(await rows(client, "itens", cnpj, ano, seq)),
                len(await rows(client, "arquivos", cnpj, ano, seq)),
            )
        # Status and headers came, then fewer bytes than announced: a body cut short, not a
        # connection that failed, and retried.
        assert client.stats.statuses["cut"] > 0 and client.stats.statuses["connection"] == 0
        assert client.stats.retries == client.stats.statuses["cut"]
        return got

    got = with_client(config(sim, max_retries=20, retry_budget=0), body)
    assert got == {cid: (truth["itens"][cid], truth["arquivos"][cid]) for cid, *_ in compras(sim)}
    faults = sim.stats()["faults"]
    assert faults.get("cut", 0) > 0 and faults.get("empty_200", 0) > 0


def test_with_empty_200s_mixed_in_contratacoes_and_details_land_the_truth_at_the_first_run(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=60)
    dest = str(tmp_path / "bronze")
    # 60% of "no data" answers as an empty 200, on both API families.
    sim.set_faults(empty_200=0.6, seed=4)

    listing = run_cli("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json")
    assert listing.code == 0, listing.stderr
    assert listing.json["retries"] == 0 and listing.json["failed"] == 0
    truth = sim.truth(DAY)
    assert sorted(ids(dest)) == sorted(c["numeroControlePNCP"] for c in truth["contratacoes"])
    consulta_empty = sim.stats()["faults"].get("empty_200", 0)
    assert consulta_empty > 0, "no listing answer came as an empty 200: the test proves nothing"

    result = run_cli("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json")
    assert result.code == 0, result.stderr
    assert result.json["retries"] == 0 and result.json["failed"] == 0
    assert sim.stats()["faults"]["empty_200"] > consulta_empty, "no arquivos answer came as an empty 200"
    assert_complete(sim, dest)
    nothing = [row for cid, row in landed(dest).items() if truth["arquivos"][cid] == 0]
    assert nothing, "the day should have compras without arquivos"
    assert all(row["arquivos"] == [] and row["metadata"]["total_arquivos"] == 0 for row in nothing)


def test_a_body_cut_short_every_time_is_recorded_as_failed_and_a_later_run_completes(sim_factory, tmp_path):
    sim = sim_factory(seed=7, per_day=20)
    dest = str(tmp_path / "bronze")
    listing = run_cli("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url)
    assert listing.code == 0, listing.stderr
    sim.set_faults(rate_cut=1.0, empty_200=1.0, families=["detail"])

    cut = run_cli("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json", "--max-retries", "2")
    assert cut.code == 1, cut.stderr
    assert cut.json["status"] == "partial" and cut.json["failed"] > 0
    assert cut.json["retries"] > 0  # each cut body was tried again before it was recorded
    assert sim.stats()["faults"]["cut"] > 0

    sim.set_faults()
    again = run_cli("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json")
    assert again.code == 0, again.stderr
    assert_complete(sim, dest)
