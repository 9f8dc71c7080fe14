"""The simulator's contratos and atas: shapes like the real samples, listings, amendments, truth.

In-process for the generator's properties, over real HTTP to its own process for the endpoints.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from pncp_ingest.testing import SimulatedOutcomes, SimulatedPncp, SimulatorProcess
from pncp_ingest.testing._contratos import ATA_MAX_VIGENCIA_DAYS

DATA = Path(__file__).parent / "data"
DAY = "2025-10-22"
YMD = "20251022"
UPD = "2025-11-05"
CONTRATOS = "/consulta/v1/contratos"
CONTRATOS_ATU = "/consulta/v1/contratos/atualizacao"
ATAS = "/consulta/v1/atas"
ATAS_ATU = "/consulta/v1/atas/atualizacao"
ENDPOINTS = (CONTRATOS, CONTRATOS_ATU, ATAS, ATAS_ATU)
CONTRATO_ID = re.compile(r"^(\d{14})-2-(\d{6})/(\d{4})$")
COMPRA_ID = re.compile(r"^\d{14}-1-\d{6}/\d{4}$")
ISO_DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
ISO_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def sample(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())["data"]


CONTRATO_SAMPLE = sample("consulta_contratos_publicacao.json")
ATA_SAMPLE = sample("consulta_atas_periodo.json")


def world(seed: int = 7, per_day: int = 50, **kw: int) -> tuple[SimulatedPncp, SimulatedOutcomes]:
    sim = SimulatedPncp(seed, per_day=per_day, big_items=False)
    return sim, SimulatedOutcomes(sim, **kw)


def client(sim: SimulatorProcess) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url, trust_env=False, timeout=60.0)


def get(c: httpx.Client, path: str, pagina: int = 1, size: int = 500, d0: str = YMD, d1: str = YMD, **kw: str):
    return c.get(path, params={"dataInicial": d0, "dataFinal": d1, "pagina": pagina, "tamanhoPagina": size, **kw})


def harvest(c: httpx.Client, path: str, size: int, d0: str = YMD, d1: str = YMD, **kw: str) -> list[dict]:
    """Every record of a listing, checking the envelope arithmetic on every page."""
    first = get(c, path, 1, size, d0, d1, **kw)
    if first.status_code == 204:
        return []
    assert first.status_code == 200, first.text
    total, pages = first.json()["totalRegistros"], first.json()["totalPaginas"]
    assert pages == math.ceil(total / size)
    out: list[dict] = []
    for p in range(1, pages + 1):
        env = (first if p == 1 else get(c, path, p, size, d0, d1, **kw)).json()
        assert (env["numeroPagina"], env["paginasRestantes"], env["empty"]) == (p, pages - p, False)
        assert (env["totalRegistros"], env["totalPaginas"]) == (total, pages)
        assert len(env["data"]) == (size if p < pages else total - size * (pages - 1))
        out += env["data"]
    past = get(c, path, pages + 1, size, d0, d1, **kw)
    assert past.status_code == 204 and past.content == b""
    return out


@pytest.fixture(scope="module")
def ro() -> Iterator[SimulatorProcess]:
    """A read-only simulator for the tests that change nothing."""
    with SimulatorProcess(seed=7, per_day=40, contratos_per_day=25, atas_per_day=4) as process:
        yield process


# ----------------------------------------------------------------------------- shapes (in-process)


def assert_like(rec: dict, samples: list[dict], optional: set[str] = frozenset()) -> None:
    """Same fields as the real records, each of a type the real records carry (or null)."""
    keys = set(samples[0])
    assert keys <= set(rec) and set(rec) - keys <= optional, set(rec) ^ keys
    for k in keys:
        seen = {type(s[k]) for s in samples if s[k] is not None}
        if rec[k] is not None and seen:
            assert type(rec[k]) in seen | ({int} if seen == {float} else set()), (k, rec[k], seen)
        if isinstance(rec[k], dict) and seen == {dict}:
            assert set(rec[k]) == set(next(s[k] for s in samples if s[k] is not None)), k


def test_contratos_are_shaped_like_the_real_sample():
    sim, out = world(seed=3, per_day=60, contratos_per_day=200)
    days = [dt.date(2025, 10, 20), dt.date(2025, 10, 21), dt.date(2026, 1, 1)]
    recs = [r for d in days for r in out.truth("contratos", d)["contratos"]]
    ids = [r["numeroControlePNCP"] for r in recs]
    assert len(ids) == len(set(ids)) == 600, "ids are unique across days"
    for r in recs:
        assert_like(r, CONTRATO_SAMPLE, optional={"emendaParlamentar"})
        cnpj, seq, ano = CONTRATO_ID.match(r["numeroControlePNCP"]).groups()
        assert (cnpj, int(seq), int(ano)) == (r["orgaoEntidade"]["cnpj"], r["sequencialContrato"], r["anoContrato"])
        assert ISO_TS.match(r["dataPublicacaoPncp"]) and ISO_TS.match(r["dataAtualizacaoGlobal"])
        assert r["dataPublicacaoPncp"] <= r["dataAtualizacao"] <= r["dataAtualizacaoGlobal"]
        for k in ("dataAssinatura", "dataVigenciaInicio", "dataVigenciaFim"):
            assert ISO_DATE.match(r[k])
        assert r["dataAssinatura"] <= r["dataVigenciaInicio"] < r["dataVigenciaFim"]
        assert r["dataAssinatura"] <= r["dataPublicacaoPncp"][:10]
        for k in ("valorInicial", "valorParcela", "valorGlobal", "valorAcumulado"):
            assert isinstance(r[k], float) and round(r[k], 4) == r[k]
        assert set(r["tipoContrato"]) == set(r["categoriaProcesso"]) == {"id", "nome"}
        assert r["tipoPessoa"] in ("PJ", "PF", "PE")
    empenhos = [r for r in recs if r["numeroControlePncpCompra"] is None]
    assert 0.3 < len(empenhos) / len(recs) < 0.5
    linked = [r for r in recs if r["numeroControlePncpCompra"] is not None]
    same_org = 0
    for r in linked:
        compra = sim.lookup(r["numeroControlePncpCompra"])
        assert compra is not None, "a linked contratação exists in the same world"
        assert compra.pub[:10] <= r["dataPublicacaoPncp"][:10], "published that day or earlier"
        same_org += compra.cnpj == r["orgaoEntidade"]["cnpj"]
    assert same_org / len(linked) > 0.6, "mostly the contrato's own órgão"
    assert any(r["numeroRetificacao"] == 1 for r in recs) and any(
        r["dataAtualizacaoGlobal"][:10] > r["dataPublicacaoPncp"][:10] for r in recs
    )
    assert {type(r["unidadeOrgao"]["codigoIbge"]) for r in recs} == {str, int}


def test_atas_are_shaped_like_the_real_sample_and_linked_to_srp_contratacoes():
    sim, out = world(seed=3, per_day=60, atas_per_day=40)
    days = [dt.date(2025, 10, 20), dt.date(2025, 10, 21), dt.date(2026, 1, 1)]
    recs = [r for d in days for r in out.truth("atas", d)["atas"]]
    ids = [r["numeroControlePNCPAta"] for r in recs]
    assert len(ids) == len(set(ids)) == 120
    for r in recs:
        assert_like(r, ATA_SAMPLE)
        for k in ("dataAssinatura", "vigenciaInicio", "vigenciaFim", "dataPublicacaoPncp", "dataInclusao"):
            assert ISO_DATE.match(r[k]), (k, r[k])
        assert ISO_DATE.match(r["dataAtualizacao"]) and r["dataAtualizacao"] == r["dataAtualizacaoGlobal"]
        assert r["dataPublicacaoPncp"] <= r["dataAtualizacaoGlobal"]
        assert r["numeroControlePNCPAta"].startswith(r["numeroControlePNCPCompra"] + "-")
        assert re.fullmatch(r"\d{6}", r["numeroControlePNCPAta"].rsplit("-", 1)[1])
        assert COMPRA_ID.match(r["numeroControlePNCPCompra"])
        start, end = dt.date.fromisoformat(r["vigenciaInicio"]), dt.date.fromisoformat(r["vigenciaFim"])
        assert 80 <= (end - start).days <= 731, "vigência of months to two years"
        compra = json.loads(sim.lookup(r["numeroControlePNCPCompra"]).frag)
        assert compra["srp"] is True
        assert compra["dataPublicacaoPncp"][:10] < r["dataPublicacaoPncp"]
        assert (r["cnpjOrgao"], r["nomeOrgao"]) == (
            compra["orgaoEntidade"]["cnpj"],
            compra["orgaoEntidade"]["razaoSocial"],
        )
        assert r["cancelado"] == (r["dataCancelamento"] is not None)
    spans = {
        (dt.date.fromisoformat(r["vigenciaFim"]) - dt.date.fromisoformat(r["vigenciaInicio"])).days // 300 for r in recs
    }
    assert spans == {0, 1, 2}, "months, a year and two years"


def test_generation_is_deterministic_per_seed_whatever_was_generated_first():
    _, a = world(seed=5)
    _, b = world(seed=5)
    b.vigencia_window(dt.date(2025, 10, 22), dt.date(2025, 10, 22))  # builds nothing but heads
    b.truth_bytes("atas", dt.date(2025, 10, 25))
    b.truth_atualizacao_bytes("contratos", dt.date(2025, 10, 23))
    d = dt.date(2025, 10, 22)
    for ds in ("contratos", "atas"):
        assert a.truth_bytes(ds, d, versions=True) == b.truth_bytes(ds, d, versions=True)
        assert a.truth_atualizacao_bytes(ds, d) == b.truth_atualizacao_bytes(ds, d)
    _, other = world(seed=6)
    assert other.truth_bytes("contratos", d) != a.truth_bytes("contratos", d)
    assert other.truth_bytes("atas", d) != a.truth_bytes("atas", d)
    assert a.amend("contratos", dt.date(2025, 11, 5), d) == b.amend("contratos", dt.date(2025, 11, 5), d)


def test_contratacoes_of_a_seed_are_unchanged_by_contratos_and_atas():
    """Contratos and atas draw from their own random streams: generating them first (their links
    read, and build, contratação days) changes no byte of a seed's contratações, itens and arquivos."""
    days = [dt.date(2025, 10, 20), dt.date(2025, 10, 21), dt.date(2025, 10, 22)]

    def digest(with_outcomes: bool) -> str:
        sim = SimulatedPncp(seed=11, per_day=40, big_items=False, exotic=0.2)
        if with_outcomes:
            out = SimulatedOutcomes(sim, contratos_per_day=50, atas_per_day=10)
            for d in days:
                out.truth_bytes("contratos", d)
                out.truth_bytes("atas", d)
                out.truth_atualizacao_bytes("atas", d)
        h = hashlib.sha256()
        for d in days:
            h.update(sim.truth_bytes(d, details=True, versions=True))
            h.update(sim.truth_atualizacao_bytes(d, details=True))
        return h.hexdigest()

    assert digest(with_outcomes=True) == digest(with_outcomes=False)


def test_exotic_contratos_values_are_served_as_exact_text(sim_factory):
    sim = sim_factory(seed=7, per_day=20, exotic=0.3, contratos_per_day=40, atas_per_day=1)
    truth = sim.truth_contratos(DAY)
    exotic = truth["exotic"]["contratos"]
    assert exotic and 0.1 < len(exotic) / len(truth["contratos"]) < 0.6
    first = min(truth["contratos"], key=lambda r: r["dataPublicacaoPncp"])
    assert exotic[first["numeroControlePNCP"]]["valorGlobal"] == "1234567890123.4567"
    with client(sim) as c:
        body = get(c, CONTRATOS).content
    for fields in exotic.values():
        for name, text in fields.items():
            assert f'"{name}":{text}'.encode() in body
    exact = sim.truth_contratos(DAY, exact=True)["contratos"]
    assert Decimal("1234567890123.4567") in {r["valorGlobal"] for r in exact}
    changed = {ch["id"] for ch in sim.amend("contratos", UPD, DAY, share=1.0)}
    assert changed
    after = sim.truth_contratos(DAY)["exotic"]["contratos"]
    for cid, fields in exotic.items():  # the amended values are fresh; the others stay exact
        kept = {k: v for k, v in fields.items() if cid not in changed or k not in ("valorGlobal", "valorAcumulado")}
        assert {k: v for k, v in after.get(cid, {}).items() if k in kept} == kept


# ----------------------------------------------------------------------------- listings over HTTP


def test_contratos_listing_pages_to_the_truth_in_order(ro):
    truth = ro.truth_contratos(DAY)["contratos"]
    with client(ro) as c:
        got = harvest(c, CONTRATOS, 10)
        many = harvest(c, CONTRATOS, 10, d0="20251020")
        org = truth[3]["orgaoEntidade"]["cnpj"]
        mine = harvest(c, CONTRATOS, 10, cnpjOrgao=org)
    assert len(truth) == 25 and got == truth
    keys = [(r["dataPublicacaoPncp"], r["numeroControlePNCP"]) for r in got]
    assert keys == sorted(keys)
    want = [r for d in ("2025-10-20", "2025-10-21", DAY) for r in ro.truth_contratos(d)["contratos"]]
    assert many == want
    assert mine == [r for r in truth if r["orgaoEntidade"]["cnpj"] == org]


def test_atualizacao_listings_are_their_truth(ro):
    with client(ro) as c:
        contratos = harvest(c, CONTRATOS_ATU, 10)
        atas = harvest(c, ATAS_ATU, 10)
    assert contratos == ro.truth_contratos_atualizacao(DAY)["contratos"]
    assert atas == ro.truth_atas_atualizacao(DAY)["atas"]
    assert all(r["dataAtualizacaoGlobal"][:10] == DAY for r in contratos)
    assert all(r["dataAtualizacaoGlobal"] == DAY for r in atas)
    assert [(r["dataAtualizacaoGlobal"], r["numeroControlePNCP"]) for r in contratos] == sorted(
        (r["dataAtualizacaoGlobal"], r["numeroControlePNCP"]) for r in contratos
    )
    assert any(r["dataPublicacaoPncp"][:10] < DAY for r in contratos), "earlier contratos updated on the day"
    published = ro.truth_contratos(DAY)["contratos"]
    later = {r["numeroControlePNCP"] for r in published if r["dataAtualizacaoGlobal"][:10] > DAY}
    assert later and not later & {r["numeroControlePNCP"] for r in contratos}


def test_the_atas_listing_is_every_ata_in_vigencia_so_one_day_is_large():
    """/v1/atas for one day lists every ata whose vigência overlaps it: many times a day's atas."""
    _, out = world(seed=7, per_day=8, atas_per_day=3)
    d = dt.date(2025, 10, 22)
    listed = out.vigencia_window(d, d)
    first = d - dt.timedelta(days=ATA_MAX_VIGENCIA_DAYS + 20)
    want = [
        (p, i)
        for p in (first + dt.timedelta(days=k) for k in range((d - first).days + 30))
        for i in range(3)
        if (a := json.loads(out.ata((p, i)).frag))["vigenciaInicio"] <= d.isoformat() <= a["vigenciaFim"]
    ]
    assert listed == want
    assert len(listed) > 100 * 3, "far more than a day's atas"


def test_the_atas_listing_pages_over_http(sim_factory):
    sim = sim_factory(seed=7, per_day=8, atas_per_day=2, contratos_per_day=1)
    with client(sim) as c:
        atas = harvest(c, ATAS, 500)
        window = harvest(c, ATAS, 500, d0="20251001", d1="20251031")
    assert len(atas) > 300 and len({a["numeroControlePNCPAta"] for a in atas}) == len(atas)
    assert all(a["vigenciaInicio"] <= DAY <= a["vigenciaFim"] for a in atas)
    assert {a["numeroControlePNCPAta"] for a in atas} < {a["numeroControlePNCPAta"] for a in window}
    assert all(a["vigenciaInicio"] <= "2025-10-31" and a["vigenciaFim"] >= "2025-10-01" for a in window)
    assert sim.stats()["requests"]["atas"] == math.ceil(len(atas) / 500) + 1 + math.ceil(len(window) / 500) + 1


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "params,status,message",
    [
        ({"tamanhoPagina": 9}, 400, "must be greater than or equal to 10"),
        ({"tamanhoPagina": 501}, 400, "Tamanho de pagina invalido"),
        ({"pagina": None}, 400, "Required request parameter 'pagina' for method parameter type Integer is not present"),
        (
            {"dataFinal": None},
            400,
            "Required request parameter 'dataFinal' for method parameter type String is not present",
        ),
        ({"pagina": 0}, 400, "must be greater than or equal to 1"),
        ({"dataInicial": "2025-10-22"}, 422, "Data Inicial inválida"),
        ({"dataFinal": "20251322"}, 422, "Data Final inválida"),
        ({"dataInicial": "20251023"}, 422, "Data Inicial deve ser anterior ou igual à Data Final"),
        ({"dataInicial": "20241021"}, 422, "Período inicial e final maior que 365 dias"),
    ],
)
def test_validation_mirrors_the_real_api(ro, path, params, status, message):
    query = {"dataInicial": YMD, "dataFinal": YMD, "pagina": 1, "tamanhoPagina": 10, **params}
    with client(ro) as c:
        r = c.get(path, params={k: v for k, v in query.items() if v is not None})
    assert r.status_code == status
    body = r.json()
    assert body["message"] == message and body["path"] == "/pncp-consulta" + path[len("/consulta") :]
    assert body["status"] == ("422" if status == 422 else 400)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_page_sizes_10_and_500_are_accepted(ro, path):
    with client(ro) as c:
        for size in (10, 500):
            r = get(c, path, size=size)
            assert r.status_code == 200 and 0 < len(r.json()["data"]) <= size


def test_nothing_listed_is_204_with_an_empty_json_body(sim_factory):
    sim = sim_factory(seed=7, per_day=5, contratos_per_day=0, atas_per_day=0)
    with client(sim) as c:
        for path in ENDPOINTS:
            r = get(c, path)
            assert (r.status_code, r.content, r.headers["content-type"]) == (204, b"", "application/json")


def test_consulta_faults_hit_the_new_endpoints_and_stats_name_them(sim_factory):
    sim = sim_factory(seed=7, per_day=5, contratos_per_day=10, atas_per_day=1)
    with client(sim) as c:
        sim.set_faults(rate_5xx=1.0, families=["consulta"])
        assert {get(c, p).status_code for p in ENDPOINTS for _ in range(5)} <= {500, 502, 503, 504}
        sim.set_faults(rate_spurious_422=1.0)
        r = get(c, CONTRATOS)
        assert r.status_code == 422 and r.json()["message"] == "Período inicial e final maior que 365 dias"
        sim.set_faults(rate_5xx=1.0, families=["detail"])
        assert all(get(c, p).status_code == 200 for p in ENDPOINTS)
    requests = sim.stats()["requests"]
    assert {k: requests[k] for k in ("contratos", "contratos_atualizacao", "atas", "atas_atualizacao")} == {
        "contratos": 7,
        "contratos_atualizacao": 6,
        "atas": 6,
        "atas_atualizacao": 6,
    }
    assert requests["contratacoes"] == requests["other"] == 0


# ----------------------------------------------------------------------------- changes over time


def test_amended_contratos_move_to_the_update_day_and_keep_every_version(sim_factory):
    sim = sim_factory(seed=7, per_day=20, contratos_per_day=40, atas_per_day=1)
    before = {r["numeroControlePNCP"]: r for r in sim.truth_contratos(DAY)["contratos"]}
    with client(sim) as c:
        day_before = {r["numeroControlePNCP"] for r in harvest(c, CONTRATOS_ATU, 10)}
        changed = sim.amend("contratos", UPD, DAY, share=0.5)
        day_after = {r["numeroControlePNCP"] for r in harvest(c, CONTRATOS_ATU, 10)}
        upd = harvest(c, CONTRATOS_ATU, 10, d0="20251105", d1="20251105")
        listed = {r["numeroControlePNCP"]: r for r in harvest(c, CONTRATOS, 10)}
    ids = {ch["id"] for ch in changed}
    assert 0.25 * len(before) < len(ids) < 0.75 * len(before)
    assert ids & day_before and day_after == day_before - ids, "an amended contrato leaves its old /atualizacao day"
    assert ids <= {r["numeroControlePNCP"] for r in upd}, "and is listed on the update day"
    assert upd == sim.truth_contratos_atualizacao(UPD)["contratos"]
    truth = sim.truth_contratos(DAY, versions=True)
    now = {r["numeroControlePNCP"]: r for r in truth["contratos"]}
    assert listed == now, "the publication listing serves the current version"
    vigencia = 0
    for ch in changed:
        was, cur = before[ch["id"]], now[ch["id"]]
        assert truth["versions"][ch["id"]] == [was, cur]
        assert cur["dataAtualizacaoGlobal"] == cur["dataAtualizacao"] == ch["dataAtualizacaoGlobal"]
        assert cur["dataAtualizacaoGlobal"].startswith(UPD)
        assert cur["numeroRetificacao"] == was["numeroRetificacao"] + 1
        assert (cur["valorGlobal"], cur["valorAcumulado"]) != (was["valorGlobal"], was["valorAcumulado"])
        vigencia += cur["dataVigenciaFim"] > was["dataVigenciaFim"]
        assert ("vigencia" in ch["changes"]) == (cur["dataVigenciaFim"] > was["dataVigenciaFim"])
        same = set(cur) - {"numeroRetificacao", "valorGlobal", "valorAcumulado", "dataVigenciaFim"}
        same -= {"dataAtualizacao", "dataAtualizacaoGlobal"}
        assert {k: cur[k] for k in same} == {k: was[k] for k in same}
    assert 0 < vigencia < len(changed), "sometimes a vigência extension"
    assert all(truth["versions"][i] == [before[i]] for i in set(before) - ids)


def test_contrato_rounds_keep_every_version_in_order(sim_factory):
    sim = sim_factory(seed=7, per_day=5, contratos_per_day=15, atas_per_day=0)
    first = {ch["id"] for ch in sim.amend("contratos", UPD, DAY, share=1.0)}
    second = {ch["id"] for ch in sim.amend("contratos", UPD, DAY, share=1.0)}
    third = {ch["id"] for ch in sim.amend("contratos", "2025-12-01", DAY, last=DAY, share=1.0)}
    assert first and first <= second <= third
    truth = sim.truth_contratos(DAY, versions=True)
    for rec in truth["contratos"]:
        vs = truth["versions"][rec["numeroControlePNCP"]]
        globs = [v["dataAtualizacaoGlobal"] for v in vs]
        assert vs[-1] == rec and globs == sorted(set(globs))
        assert [v["numeroRetificacao"] for v in vs] == list(
            range(vs[0]["numeroRetificacao"], vs[0]["numeroRetificacao"] + len(vs))
        )
        if rec["numeroControlePNCP"] in first:
            assert len(vs) == 4 and globs[-1].startswith("2025-12-01")
    left = {r["numeroControlePNCP"] for r in sim.truth_contratos_atualizacao(UPD)["contratos"]}
    assert not left & third, "a later round moves them on"


def test_amended_atas_are_cancelled_or_rectified_on_the_update_day(sim_factory):
    sim = sim_factory(seed=7, per_day=30, contratos_per_day=1, atas_per_day=30)
    before = {r["numeroControlePNCPAta"]: r for r in sim.truth_atas(DAY)["atas"]}
    with client(sim) as c:
        day_before = {r["numeroControlePNCPAta"] for r in harvest(c, ATAS_ATU, 10)}
        changed = sim.amend("atas", UPD, DAY, share=0.6)
        again = sim.amend("atas", UPD, DAY, share=1.0)
        day_after = {r["numeroControlePNCPAta"] for r in harvest(c, ATAS_ATU, 10)}
        upd = harvest(c, ATAS_ATU, 10, d0="20251105", d1="20251105")
        vig = {r["numeroControlePNCPAta"]: r for r in harvest(c, ATAS, 500)}
    ids = {ch["id"] for ch in changed}
    not_yet = {i for i, r in before.items() if r["dataAtualizacaoGlobal"] < UPD}
    assert ids and ids <= not_yet, "an ata already updated on or after the day is left alone"
    assert {ch["id"] for ch in again} == not_yet - ids, "atas carry dates only: one amendment per ata and day"
    assert day_after == day_before - not_yet
    assert upd == sim.truth_atas_atualizacao(UPD)["atas"] and not_yet <= {r["numeroControlePNCPAta"] for r in upd}
    truth = sim.truth_atas(DAY, versions=True)
    now = {r["numeroControlePNCPAta"]: r for r in truth["atas"]}
    kinds = set()
    for ch in changed:
        was, cur = before[ch["id"]], now[ch["id"]]
        assert truth["versions"][ch["id"]] == [was, cur]
        assert cur["dataAtualizacao"] == cur["dataAtualizacaoGlobal"] == ch["dataAtualizacaoGlobal"] == UPD
        kinds.update(ch["changes"])
        if ch["changes"] == ["cancelamento"]:
            assert (cur["cancelado"], cur["dataCancelamento"]) == (True, UPD) and not was["cancelado"]
        else:
            assert cur["objetoContratacao"] != was["objetoContratacao"]
        if ch["id"] in vig:
            assert vig[ch["id"]] == cur, "the vigência listing serves the current version"
    assert kinds == {"cancelamento", "objeto"}


def test_amend_rejects_bad_requests(sim):
    with pytest.raises(RuntimeError, match="first <= last <= date"):
        sim.amend("contratos", "2025-10-21", DAY)
    with pytest.raises(RuntimeError, match="dataset=contratos"):
        sim.amend("pca", UPD, DAY)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="share"):
        sim.amend("atas", UPD, DAY, share=2)


def test_two_processes_with_one_seed_serve_the_same_bytes(sim_factory):
    a = sim_factory(seed=99, per_day=10, contratos_per_day=12, atas_per_day=2)
    b = sim_factory(seed=99, per_day=10, contratos_per_day=12, atas_per_day=2)
    with client(a) as ca, client(b) as cb:
        for path in ENDPOINTS:
            assert get(ca, path).content == get(cb, path).content
    assert a.health()["contratos_per_day"] == 12 and a.health()["atas_per_day"] == 2


def test_serve_documents_and_checks_the_new_options():
    out = subprocess.run(
        [sys.executable, "-m", "pncp_ingest.testing", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--contratos-per-day" in out and "--atas-per-day" in out
    r = subprocess.run(
        [sys.executable, "-m", "pncp_ingest.testing", "serve", "--atas-per-day", "5000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "--atas-per-day: must be between 0 and 999" in r.stderr
