"""The PNCP simulator, over real HTTP to its own process (httpx, no mocks)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from pncp_ingest.testing import Faults, SimulatedPncp, SimulatorProcess, SimulatorStartError
from pncp_ingest.testing._app import KINDS

DAY = "2025-10-22"
YMD = "20251022"
LISTING = "/consulta/v1/contratacoes/publicacao"
ATUALIZACAO = "/consulta/v1/contratacoes/atualizacao"
ID_RE = re.compile(r"^(\d{14})-1-(\d{6})/(\d{4})$")
SAMPLE_KEYS = {  # every field of the real consulta sample (reference pncp-samples)
    "numeroControlePNCP",
    "dataAtualizacaoGlobal",
    "modalidadeId",
    "srp",
    "orgaoEntidade",
    "anoCompra",
    "sequencialCompra",
    "dataInclusao",
    "dataPublicacaoPncp",
    "dataAtualizacao",
    "numeroCompra",
    "unidadeOrgao",
    "amparoLegal",
    "dataAberturaProposta",
    "dataEncerramentoProposta",
    "informacaoComplementar",
    "processo",
    "objetoCompra",
    "linkSistemaOrigem",
    "justificativaPresencial",
    "unidadeSubRogada",
    "orgaoSubRogado",
    "valorTotalHomologado",
    "modoDisputaId",
    "linkProcessoEletronico",
    "valorTotalEstimado",
    "modalidadeNome",
    "modoDisputaNome",
    "tipoInstrumentoConvocatorioCodigo",
    "tipoInstrumentoConvocatorioNome",
    "fontesOrcamentarias",
    "situacaoCompraId",
    "situacaoCompraNome",
    "usuarioNome",
}


def client(sim: SimulatorProcess, timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url, trust_env=False, timeout=timeout)


def listing(
    c: httpx.Client, mod: int, pagina: int = 1, size: int = 50, d0: str = YMD, d1: str = YMD, path: str = LISTING
) -> httpx.Response:
    return c.get(
        path,
        params={
            "dataInicial": d0,
            "dataFinal": d1,
            "codigoModalidadeContratacao": mod,
            "pagina": pagina,
            "tamanhoPagina": size,
        },
    )


def compra_path(rec: dict) -> str:
    return f"/pncp/v1/orgaos/{rec['orgaoEntidade']['cnpj']}/compras/{rec['anoCompra']}/{rec['sequencialCompra']}"


def harvest(c: httpx.Client, mod: int, size: int, d0: str = YMD, d1: str = YMD, path: str = LISTING) -> list[dict]:
    """Every record of one modalidade, checking the envelope arithmetic on every page."""
    first = listing(c, mod, 1, size, d0, d1, path)
    if first.status_code == 204:
        return []
    assert first.status_code == 200
    total, pages = first.json()["totalRegistros"], first.json()["totalPaginas"]
    assert pages == math.ceil(total / size)
    out: list[dict] = []
    for p in range(1, pages + 1):
        env = (first if p == 1 else listing(c, mod, p, size, d0, d1, path)).json()
        assert env["numeroPagina"] == p
        assert env["paginasRestantes"] == pages - p
        assert env["totalRegistros"] == total and env["totalPaginas"] == pages
        assert env["empty"] is False
        assert len(env["data"]) == (size if p < pages else total - size * (pages - 1))
        out += env["data"]
    assert listing(c, mod, pages + 1, size, d0, d1, path).status_code == 204
    return out


@pytest.fixture(scope="module")
def ro() -> Iterator[SimulatorProcess]:
    """A read-only simulator shared by the tests that change nothing (big-item compras on)."""
    with SimulatorProcess(seed=7, per_day=60, big_items=True) as process:
        yield process


@pytest.fixture(scope="module")
def faulty() -> Iterator[SimulatorProcess]:
    """One simulator for the fault tests; each test sets its own faults and resets the stats."""
    with SimulatorProcess(seed=7, per_day=30, big_items=True) as process:
        yield process


@pytest.fixture
def fsim(faulty: SimulatorProcess) -> Iterator[SimulatorProcess]:
    faulty.set_faults()
    faulty.reset_stats()
    yield faulty
    faulty.set_faults()


# ----------------------------------------------------------------------------- consulta rules


@pytest.mark.parametrize(
    "size,status,needle",
    [
        (9, 400, "must be greater than or equal to 10"),
        (51, 400, "Tamanho de pagina invalido"),
        (10, 200, None),
        (50, 200, None),
    ],
)
def test_page_size_rules(ro, size, status, needle):
    with client(ro) as c:
        r = listing(c, 8, size=size)
    assert r.status_code == status
    if needle:
        body = r.json()
        assert body["status"] == 400 and body["error"] == "Bad Request" and body["message"] == needle
    else:
        assert len(r.json()["data"]) <= size


@pytest.mark.parametrize(
    "params,status,message",
    [
        (
            {"codigoModalidadeContratacao": None},
            400,
            "Required request parameter 'codigoModalidadeContratacao' for method parameter type Long is not present",
        ),
        ({"pagina": None}, 400, "Required request parameter 'pagina' for method parameter type Integer is not present"),
        ({"codigoModalidadeContratacao": 20}, 422, "Código da modalidade de contratação inválido."),
        ({"codigoModalidadeContratacao": 0}, 422, "Código da modalidade de contratação inválido."),
        ({"dataInicial": "2025-10-22"}, 422, "Data Inicial inválida"),
        ({"dataInicial": "20251023"}, 422, "Data Inicial deve ser anterior ou igual à Data Final"),
        ({"dataInicial": "20241021"}, 422, "Período inicial e final maior que 365 dias"),
    ],
)
def test_consulta_validation_mirrors_the_real_api(ro, params, status, message):
    query = {"dataInicial": YMD, "dataFinal": YMD, "codigoModalidadeContratacao": 6, "pagina": 1, "tamanhoPagina": 10}
    query.update(params)
    with client(ro) as c:
        r = c.get(LISTING, params={k: v for k, v in query.items() if v is not None})
    assert r.status_code == status
    body = r.json()
    assert body["message"] == message
    assert body["path"] == "/pncp-consulta/v1/contratacoes/publicacao"
    if status == 422:  # the custom 422 body: status is a string, error spelled out, -03:00 timestamp
        assert body["status"] == "422" and body["error"] == "422 UNPROCESSABLE_ENTITY"
        assert body["timestamp"].endswith("-03:00")
    else:
        assert body["status"] == 400


def test_a_365_day_window_is_accepted(sim_factory):
    small = sim_factory(seed=1, per_day=2)
    with client(small) as c:
        assert listing(c, 8, d0="20241022", d1=YMD).status_code in (200, 204)
        assert listing(c, 8, d0="20241021", d1=YMD).status_code == 422


def test_no_results_is_204_with_an_empty_json_body(ro):
    with client(ro) as c:
        empty_mod = listing(c, 2)  # Diálogo Competitivo: never generated
        past_end = listing(c, 8, pagina=99)
    for r in (empty_mod, past_end):
        assert r.status_code == 204
        assert r.content == b""
        assert r.headers["content-type"] == "application/json"


def test_paging_every_modalidade_yields_the_truth_exactly_once(ro):
    truth = ro.truth(DAY)
    with client(ro) as c:
        got: list[dict] = []
        for mod in range(1, 20):
            recs = harvest(c, mod, 10)
            assert all(r["modalidadeId"] == mod for r in recs)
            keys = [(r["dataPublicacaoPncp"], r["numeroControlePNCP"]) for r in recs]
            assert keys == sorted(keys), "listing order is (dataPublicacaoPncp, numeroControlePNCP)"
            got += recs
    ids = [r["numeroControlePNCP"] for r in got]
    assert len(ids) == len(set(ids)) == 60
    assert sorted(ids) == sorted(r["numeroControlePNCP"] for r in truth["contratacoes"])
    assert {r["numeroControlePNCP"]: r for r in got} == {r["numeroControlePNCP"]: r for r in truth["contratacoes"]}


def test_a_multi_day_window_lists_every_day(ro):
    days = ["2025-10-20", "2025-10-21", "2025-10-22"]
    want = sorted(r["numeroControlePNCP"] for d in days for r in ro.truth(d)["contratacoes"] if r["modalidadeId"] == 8)
    with client(ro) as c:
        got = [r["numeroControlePNCP"] for r in harvest(c, 8, 10, d0="20251020", d1=YMD)]
    assert sorted(got) == want and len(got) == len(set(got))


def test_atualizacao_lists_by_the_current_data_atualizacao_global(ro):
    """Records published earlier whose dataAtualizacaoGlobal falls in the window are listed; records of
    the window whose dataAtualizacaoGlobal is later are not (reference §6.5)."""
    days = ["2025-10-20", "2025-10-21", "2025-10-22"]
    want = [r for d in days for r in ro.truth_atualizacao(d)["contratacoes"] if r["modalidadeId"] == 8]
    published = {r["numeroControlePNCP"] for d in days for r in ro.truth(d)["contratacoes"]}
    with client(ro) as c:
        got = harvest(c, 8, 10, d0="20251020", d1=YMD, path=ATUALIZACAO)
    assert got and [r["numeroControlePNCP"] for r in got] == [
        r["numeroControlePNCP"]
        for r in sorted(want, key=lambda r: (r["dataAtualizacaoGlobal"], r["numeroControlePNCP"]))
    ]
    assert all("2025-10-20" <= r["dataAtualizacaoGlobal"][:10] <= "2025-10-22" for r in got)
    got_ids = {r["numeroControlePNCP"] for r in got}
    assert got_ids - published, "records published before the window but updated in it are listed"
    later = {
        r["numeroControlePNCP"]
        for d in days
        for r in ro.truth(d)["contratacoes"]
        if r["modalidadeId"] == 8 and r["dataAtualizacaoGlobal"][:10] > "2025-10-22"
    }
    assert later and not later & got_ids, "records whose dataAtualizacaoGlobal is later are not"


def test_modalidades_lists_19(ro):
    with client(ro) as c:
        mods = c.get("/pncp/v1/modalidades").json()
    assert [m["id"] for m in mods] == list(range(1, 20))
    assert {m["id"]: m["nome"] for m in mods}[6] == "Pregão - Eletrônico"
    assert all(set(m) == {"id", "nome", "descricao", "dataInclusao", "dataAtualizacao", "statusAtivo"} for m in mods)


# ----------------------------------------------------------------------------- detail API


def test_itens_default_to_ten_and_page_fully_with_params(ro):
    truth = ro.truth(DAY)
    big = next(r for r in truth["contratacoes"] if truth["itens"][r["numeroControlePNCP"]] == 1203)
    base = compra_path(big)
    with client(ro) as c:
        trap = c.get(base + "/itens")
        pages = [c.get(base + "/itens", params={"pagina": p, "tamanhoPagina": 500}) for p in (1, 2, 3, 4)]
        qtd = c.get(base + "/itens/quantidade")
    assert trap.status_code == 200
    assert [i["numeroItem"] for i in trap.json()] == list(range(1, 11)), "no params: silently the first 10"
    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    assert [len(p.json()) for p in pages] == [500, 500, 203, 0]
    assert pages[3].content == b"[]"
    numbers = [i["numeroItem"] for p in pages for i in p.json()]
    assert numbers == list(range(1, 1204))
    assert qtd.json() == 1203
    item = pages[0].json()[0]
    assert isinstance(item["situacaoCompraItem"], int) and isinstance(item["tipoBeneficio"], int)


def test_big_item_compras_have_the_boundary_counts(ro):
    truth = ro.truth(DAY)
    assert sorted(truth["itens"].values())[-3:] == [500, 501, 1203]
    assert {0, 10, 11} <= set(truth["itens"].values())
    by_count = {n: r for r in truth["contratacoes"] if (n := truth["itens"][r["numeroControlePNCP"]]) in (0, 10, 11)}
    with client(ro) as c:
        zero = c.get(compra_path(by_count[0]) + "/itens", params={"pagina": 1, "tamanhoPagina": 500})
        ten = c.get(compra_path(by_count[10]) + "/itens", params={"pagina": 2, "tamanhoPagina": 10})
        eleven = c.get(compra_path(by_count[11]) + "/itens")
    assert (zero.status_code, zero.json()) == (200, [])
    assert (ten.status_code, ten.json()) == (200, [])
    assert len(eleven.json()) == 10


def test_arquivos_bare_array_204_when_none_and_empty_past_the_end(ro):
    truth = ro.truth(DAY)
    recs = {r["numeroControlePNCP"]: r for r in truth["contratacoes"]}
    none = next(i for i, n in truth["arquivos"].items() if n == 0)
    some = next(i for i, n in truth["arquivos"].items() if n >= 2)
    with client(ro) as c:
        r0 = c.get(compra_path(recs[none]) + "/arquivos", params={"pagina": 1, "tamanhoPagina": 50})
        r1 = c.get(compra_path(recs[some]) + "/arquivos", params={"pagina": 1, "tamanhoPagina": 50})
        r2 = c.get(compra_path(recs[some]) + "/arquivos", params={"pagina": 2, "tamanhoPagina": 50})
        q = c.get(compra_path(recs[some]) + "/arquivos/quantidade")
    assert (r0.status_code, r0.content) == (204, b"")
    assert r1.status_code == 200 and len(r1.json()) == truth["arquivos"][some] == q.json()
    doc = r1.json()[0]
    assert doc["url"] == doc["uri"] and doc["url"].endswith(
        f"/compras/{recs[some]['anoCompra']}/{recs[some]['sequencialCompra']}/arquivos/1"
    )
    assert (r2.status_code, r2.json()) == (200, [])


def test_unknown_compra_is_404(ro):
    rec = ro.truth(DAY)["contratacoes"][0]
    with client(ro) as c:
        wrong_seq = c.get(f"/pncp/v1/orgaos/{rec['orgaoEntidade']['cnpj']}/compras/{rec['anoCompra']}/999999/itens")
        wrong_cnpj = c.get(
            f"/pncp/v1/orgaos/00000000000191/compras/{rec['anoCompra']}/{rec['sequencialCompra']}/arquivos"
        )
    for r in (wrong_seq, wrong_cnpj):
        assert r.status_code == 404
        assert r.json()["message"] == "Contratação não cadastrada." and r.json()["status"] == 404


def test_removed_compra_is_404_but_still_listed(sim):
    rec = sim.truth(DAY)["contratacoes"][3]
    cid = rec["numeroControlePNCP"]
    sim.remove(cid)
    with client(sim) as c:
        assert c.get(compra_path(rec) + "/itens", params={"pagina": 1, "tamanhoPagina": 50}).status_code == 404
        assert c.get(compra_path(rec) + "/arquivos").status_code == 404
        assert c.get(compra_path(rec) + "/itens/quantidade").status_code == 404
        listed = [r["numeroControlePNCP"] for r in harvest(c, rec["modalidadeId"], 50)]
    assert cid in listed
    assert sim.truth(DAY)["gone"] == [cid]


def test_grow_adds_exactly_n_new_ids_published_last(sim):
    before = {r["numeroControlePNCP"] for r in sim.truth(DAY)["contratacoes"]}
    with client(sim) as c:
        harvest(c, 8, 10)  # fill the server's page cache before growing
        added = sim.grow(DAY, 7)
        after_truth = sim.truth(DAY)
        listed = [r for mod in range(1, 20) for r in harvest(c, mod, 10)]
    after = {r["numeroControlePNCP"] for r in after_truth["contratacoes"]}
    assert len(added) == len(set(added)) == 7
    assert not set(added) & before
    assert after == before | set(added)
    assert sorted(r["numeroControlePNCP"] for r in listed) == sorted(after)
    last_old = max(r["dataPublicacaoPncp"] for r in after_truth["contratacoes"] if r["numeroControlePNCP"] in before)
    assert all(
        r["dataPublicacaoPncp"] > last_old for r in after_truth["contratacoes"] if r["numeroControlePNCP"] in added
    )
    assert all(cid in after_truth["itens"] for cid in added)


def test_same_seed_same_truth_in_two_processes(sim_factory):
    a = sim_factory(seed=99, per_day=40, big_items=False)
    b = sim_factory(seed=99, per_day=40, big_items=False)
    other = sim_factory(seed=100, per_day=40, big_items=False)
    ta, tb = a.truth(DAY), b.truth(DAY)
    assert ta == tb
    assert ta["contratacoes"] != other.truth(DAY)["contratacoes"]
    rec = max(ta["contratacoes"], key=lambda r: ta["itens"][r["numeroControlePNCP"]])
    with client(a) as ca, client(b) as cb:
        path = compra_path(rec) + "/itens?pagina=1&tamanhoPagina=100"
        assert ca.get(path).content == cb.get(path).content
        assert (
            ca.get(
                LISTING,
                params={
                    "dataInicial": YMD,
                    "dataFinal": YMD,
                    "codigoModalidadeContratacao": 8,
                    "pagina": 1,
                    "tamanhoPagina": 50,
                },
            ).content
            == cb.get(
                LISTING,
                params={
                    "dataInicial": YMD,
                    "dataFinal": YMD,
                    "codigoModalidadeContratacao": 8,
                    "pagina": 1,
                    "tamanhoPagina": 50,
                },
            ).content
        )


# ----------------------------------------------------------------------------- data shape (in-process)


def test_records_are_shaped_like_the_real_api():
    gen = SimulatedPncp(seed=3, per_day=400, big_items=True)
    days = ["2025-10-20", "2025-10-21", "2025-10-22", "2026-01-01"]
    recs = [r for d in days for r in gen.contratacoes(d)]
    ids = [r["numeroControlePNCP"] for r in recs]
    assert len(ids) == len(set(ids)) == 1600, "ids are unique across days"
    for r in recs:
        assert set(r) >= SAMPLE_KEYS, SAMPLE_KEYS - set(r)
        assert set(r) - SAMPLE_KEYS <= {"emendaParlamentar", "campoNovoSimulado"}
        cnpj, seq, ano = ID_RE.match(r["numeroControlePNCP"]).groups()
        assert (cnpj, int(seq), int(ano)) == (r["orgaoEntidade"]["cnpj"], r["sequencialCompra"], r["anoCompra"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", r["dataPublicacaoPncp"])
        assert isinstance(r["situacaoCompraId"], int)
        assert r["orgaoSubRogado"] is None and isinstance(r["fontesOrcamentarias"], list)
        assert r["modalidadeId"] not in (2, 3, 14, 15, 16, 17, 18, 19)
        for money in (r["valorTotalEstimado"], r["valorTotalHomologado"]):
            assert money is None or round(money, 4) == money
    share = Counter(r["modalidadeId"] for r in recs)
    assert 0.40 < share[8] / len(recs) < 0.55 and 0.22 < share[6] / len(recs) < 0.34
    ibge_types = {type(r["unidadeOrgao"]["codigoIbge"]) for r in recs}
    assert ibge_types == {str, int}
    assert any(r["orgaoEntidade"]["poderId"] == "N" for r in recs)
    assert 0.06 < sum("emendaParlamentar" in r for r in recs) / len(recs) < 0.14
    assert 0.02 < sum("campoNovoSimulado" in r for r in recs) / len(recs) < 0.08
    counts = [len(gen.itens(i)) for i in ids[6:200]]
    assert max(counts) <= 30 and 0 in counts
    items = gen.itens(ids[6]) or gen.itens(ids[7])
    assert [i["numeroItem"] for i in items] == list(range(1, len(items) + 1))


def test_generation_is_a_pure_function_of_the_inputs():
    a = SimulatedPncp(seed=5, per_day=100)
    b = SimulatedPncp(seed=5, per_day=100)
    b.contratacoes("2025-10-23")  # generating other days first changes nothing
    assert a.truth(DAY) == b.truth(DAY)
    cid = a.contratacoes(DAY)[10]["numeroControlePNCP"]
    assert a.itens(cid) == b.itens(cid) and a.arquivos(cid) == b.arquivos(cid)
    assert a.grow(DAY, 3) == b.grow(DAY, 3)


# ----------------------------------------------------------------------------- faults


def test_429_is_html_without_retry_after_and_comes_in_bursts(fsim):
    fsim.set_faults(rate_429=1.0)
    with client(fsim) as c:
        r = listing(c, 8)
    assert r.status_code == 429
    assert r.headers["content-type"].startswith("text/html")
    assert "retry-after" not in r.headers
    assert "Limite de requisições excedido" in r.text

    fsim.set_faults(rate_429=0.1, burst_429=4, seed=3, families=["consulta"])
    with client(fsim) as c:
        seq = [listing(c, 8).status_code for _ in range(120)]
        assert c.get("/pncp/v1/modalidades").status_code == 200, "detail family is not hit"
    runs = [len(m.group()) for m in re.finditer(r"X+", "".join("X" if s == 429 else "." for s in seq))]
    assert runs, "some 429 bursts were expected"
    assert all(n % 4 == 0 for n in runs[:-1]) and all(n >= 4 for n in runs[:-1])
    assert set(seq) == {200, 429}
    assert fsim.stats()["faults"]["429"] == seq.count(429) + 1


def test_5xx_kinds_and_bodies(fsim):
    fsim.set_faults(rate_5xx=1.0, seed=1)
    with client(fsim) as c:
        rs = [c.get("/pncp/v1/modalidades") for _ in range(40)]
    by = {r.status_code: r for r in rs}
    assert set(by) == {500, 502, 503, 504}
    assert "HikariPool-1 - Connection is not available" in by[500].json()["message"]
    assert by[503].content == b""
    assert fsim.stats()["faults"]["5xx"] == 40


def test_faults_only_hit_the_selected_families(fsim):
    fsim.set_faults(rate_5xx=1.0, families=["consulta"])
    rec = fsim.truth(DAY)["contratacoes"][6]
    with client(fsim) as c:
        assert listing(c, 8).status_code >= 500
        assert c.get(compra_path(rec) + "/itens").status_code == 200
    fsim.set_faults(rate_5xx=1.0, families=["detail"])
    with client(fsim) as c:
        assert listing(c, 8).status_code == 200
        assert c.get(compra_path(rec) + "/itens").status_code >= 500


def test_truncated_body_is_invalid_json_with_a_matching_length(fsim):
    truth = fsim.truth(DAY)
    rec = next(r for r in truth["contratacoes"] if truth["itens"][r["numeroControlePNCP"]] == 500)
    path = compra_path(rec) + "/itens?pagina=1&tamanhoPagina=100"
    with client(fsim) as c:
        full = c.get(path)
        fsim.set_faults(rate_truncate=1.0)
        cut = c.get(path)
    assert cut.status_code == 200
    assert int(cut.headers["content-length"]) == len(cut.content) == len(full.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert fsim.stats()["faults"] == {"truncate": 1}


def test_dropped_connection_is_a_transport_error(fsim):
    fsim.set_faults(rate_drop=1.0)
    with client(fsim) as c, pytest.raises(httpx.TransportError):
        c.get("/pncp/v1/modalidades")
    assert fsim.stats()["faults"] == {"drop": 1}


def test_a_hang_outlasts_a_short_client_timeout_then_answers(fsim):
    fsim.set_faults(rate_timeout=1.0, hang_s=2)
    with client(fsim, timeout=0.5) as c, pytest.raises(httpx.TimeoutException):
        c.get("/pncp/v1/modalidades")
    fsim.set_faults(rate_timeout=1.0, hang_s=0.3)
    with client(fsim, timeout=5) as c:
        t0 = time.monotonic()
        r = c.get("/pncp/v1/modalidades")
    assert r.status_code == 200 and time.monotonic() - t0 >= 0.3


def test_spurious_422_on_a_valid_window_consulta_only(fsim):
    fsim.set_faults(rate_spurious_422=1.0)
    rec = fsim.truth(DAY)["contratacoes"][6]
    with client(fsim) as c:
        r = listing(c, 8)
        bad = listing(c, 8, size=9)
        detail = c.get(compra_path(rec) + "/itens")
    assert r.status_code == 422 and r.json()["message"] == "Período inicial e final maior que 365 dias"
    assert bad.status_code == 400, "invalid requests keep their own error"
    assert detail.status_code == 200


def test_latency_is_added(fsim):
    fsim.set_faults(latency_ms=250)
    with client(fsim) as c:
        t0 = time.monotonic()
        assert c.get("/pncp/v1/modalidades").status_code == 200
    assert time.monotonic() - t0 >= 0.25


def test_fault_config_is_validated_and_control_routes_are_never_faulted(fsim):
    with pytest.raises(ValueError):
        fsim.set_faults(rate_5xx=2.0)
    with pytest.raises(ValueError):
        Faults.model_validate({"rate_typo": 0.1})
    r = httpx.put(fsim.root_url + "/_sim/faults", content=b'{"nope": 1}', trust_env=False)
    assert r.status_code == 400
    fsim.set_faults(rate_drop=1.0, rate_5xx=1.0, rate_429=1.0)
    assert fsim.faults().rate_drop == 1.0
    assert fsim.truth(DAY)["contratacoes"] and fsim.stats()["requests"]["other"] == 0


def test_stats_count_requests_statuses_and_faults(fsim):
    rec = fsim.truth(DAY)["contratacoes"][6]
    with client(fsim) as c:
        listing(c, 8)
        listing(c, 2)
        listing(c, 8, size=9)
        c.get(compra_path(rec) + "/itens")
        c.get(compra_path(rec) + "/arquivos")
        c.get(compra_path(rec) + "/itens/quantidade")
        c.get("/pncp/v1/modalidades")
        c.get("/pncp/v1/nao-existe")
        fsim.set_faults(rate_429=1.0, burst_429=2)
        c.get("/pncp/v1/modalidades")
    s = fsim.stats()
    assert {k: n for k, n in s["requests"].items() if n} == {
        "modalidades": 2,
        "contratacoes": 3,
        "itens": 1,
        "arquivos": 1,
        "other": 2,
    }
    assert not set(s["requests"]) - set(KINDS), "every endpoint's counter is there from the start"
    arq = 200 if fsim.truth(DAY)["arquivos"][rec["numeroControlePNCP"]] else 204
    want = Counter({"200": 4, "204": 1, "400": 1, "404": 1, "429": 1})
    want[str(arq)] += 1
    assert s["statuses"] == dict(want)
    assert s["faults"] == {"429": 1}
    fsim.reset_stats()
    assert fsim.stats() == {"requests": dict.fromkeys(s["requests"], 0), "statuses": {}, "faults": {}}


# ----------------------------------------------------------------------------- process and CLI


def test_cli_prints_one_listening_line_and_exits_0_on_sigterm():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pncp_ingest.testing",
            "serve",
            "--port",
            "0",
            "--seed",
            "1",
            "--per-day",
            "5",
            "--faults",
            '{"rate_5xx": 0.0}',
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert re.fullmatch(r"listening http://127\.0\.0\.1:\d+/api\n", line), line
        r = httpx.get(line.split()[1] + "/pncp/v1/modalidades", trust_env=False, timeout=5)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""


def test_stop_is_clean_even_with_a_request_hanging(sim_factory):
    sim = sim_factory(faults={"rate_timeout": 1.0, "hang_s": 30})
    with client(sim, timeout=0.3) as c, pytest.raises(httpx.TimeoutException):
        c.get("/pncp/v1/modalidades")
    t0 = time.monotonic()
    assert sim.stop() == 0
    assert time.monotonic() - t0 < 5


def test_start_failure_raises_with_the_process_stderr():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sim = SimulatorProcess(port=taken.getsockname()[1])
        with pytest.raises(SimulatorStartError, match="(?i)address already in use"):
            sim.start()


# ----------------------------------------------------------------------------- page cap, repeated pages


def test_page_cap_silently_shortens_pages_and_pagina_counts_at_the_capped_size(sim_factory):
    sim = sim_factory(seed=7, per_day=12, big_items=True, page_cap=100)
    assert sim.health()["page_cap"] == 100
    truth = sim.truth(DAY)
    big = next(r for r in truth["contratacoes"] if truth["itens"][r["numeroControlePNCP"]] == 1203)
    base = compra_path(big)
    with client(sim) as c:
        pages = [c.get(base + "/itens", params={"pagina": p, "tamanhoPagina": 500}).json() for p in range(1, 15)]
        small = c.get(base + "/itens", params={"pagina": 2, "tamanhoPagina": 30}).json()
        qtd = c.get(base + "/itens/quantidade")
    assert [len(p) for p in pages] == [100] * 12 + [3, 0]
    assert [i["numeroItem"] for i in pages[1]] == list(range(101, 201)), "page 2 = records 101-200"
    assert [i["numeroItem"] for p in pages for i in p] == list(range(1, 1204))
    assert [i["numeroItem"] for i in small] == list(range(31, 61)), "sizes under the cap are honoured"
    assert (qtd.status_code, qtd.headers["content-type"], qtd.json()) == (200, "application/json", 1203)


def test_page_cap_applies_to_arquivos_too(sim_factory):
    sim = sim_factory(seed=7, per_day=30, page_cap=2)
    truth = sim.truth(DAY)
    rec = next(r for r in truth["contratacoes"] if truth["arquivos"][r["numeroControlePNCP"]] >= 3)
    n = truth["arquivos"][rec["numeroControlePNCP"]]
    with client(sim) as c:
        pages = [c.get(compra_path(rec) + "/arquivos", params={"pagina": p, "tamanhoPagina": 50}) for p in (1, 2, 3)]
        qtd = c.get(compra_path(rec) + "/arquivos/quantidade").json()
    docs = [d["sequencialDocumento"] for p in pages for d in p.json()]
    assert [len(p.json()) for p in pages[:2]] == [2, min(2, n - 2)]
    assert docs == list(range(1, n + 1)) and qtd == n


def test_repeat_fault_makes_itens_ignore_pagina_for_the_chosen_compras(fsim):
    truth = fsim.truth(DAY)
    big = next(r for r in truth["contratacoes"] if truth["itens"][r["numeroControlePNCP"]] == 500)
    other = next(r for r in truth["contratacoes"] if truth["itens"][r["numeroControlePNCP"]] == 501)
    fsim.set_faults(repeat_ids=[big["numeroControlePNCP"]])
    with client(fsim) as c:
        first = c.get(compra_path(big) + "/itens", params={"pagina": 1, "tamanhoPagina": 100})
        again = [c.get(compra_path(big) + "/itens", params={"pagina": p, "tamanhoPagina": 100}) for p in (2, 6, 99)]
        fine = c.get(compra_path(other) + "/itens", params={"pagina": 2, "tamanhoPagina": 100}).json()
        arquivos_fine = c.get(compra_path(big) + "/arquivos", params={"pagina": 2, "tamanhoPagina": 1})
    assert len(first.json()) == 100
    assert all(r.content == first.content for r in again), "every page is page 1, past the end too"
    assert [i["numeroItem"] for i in fine] == list(range(101, 201))
    assert arquivos_fine.status_code in (200, 204) and arquivos_fine.content != first.content
    assert fsim.stats()["faults"] == {"repeat_page": 3}

    fsim.set_faults(repeat_share=1.0)
    with client(fsim) as c:
        assert [i["numeroItem"] for i in c.get(compra_path(other) + "/itens?pagina=3&tamanhoPagina=10").json()] == list(
            range(1, 11)
        )
    fsim.set_faults(repeat_share=0.5, seed=4)
    with client(fsim) as c:
        hits = [
            c.get(compra_path(r) + "/itens?pagina=2&tamanhoPagina=1").json()[:1]
            == c.get(compra_path(r) + "/itens?pagina=1&tamanhoPagina=1").json()[:1]
            for r in truth["contratacoes"]
            if truth["itens"][r["numeroControlePNCP"]] >= 2
        ]
    assert 0 < sum(hits) < len(hits), "a share of the compras, not all"


# ----------------------------------------------------------------------------- a day that grows while listed


def naive_listing(c: httpx.Client, mod: int, size: int) -> tuple[list[dict], list[int]]:
    """Pages 1..totalPaginas as page 1 reported them (what a client trusting the first page does)."""
    first = listing(c, mod, 1, size).json()
    recs, totals = list(first["data"]), [first["totalRegistros"]]
    for p in range(2, first["totalPaginas"] + 1):
        env = listing(c, mod, p, size).json()
        recs += env["data"]
        totals.append(env["totalRegistros"])
    return recs, totals


@pytest.mark.parametrize("order", ["front", "end", "shuffle"])
def test_a_day_grows_while_it_is_listed(sim_factory, order):
    sim = sim_factory(seed=7, per_day=120, faults={"grow_every": 2, "grow_by": 3, "grow_max": 9, "grow_order": order})
    before = sim.truth(DAY)
    old = {r["numeroControlePNCP"] for r in before["contratacoes"] if r["modalidadeId"] == 8}
    assert before["added"] == {}
    with client(sim) as c:
        naive, totals = naive_listing(c, 8, 10)
        after = sim.truth(DAY)
        full = harvest(c, 8, 10)  # growth has stopped (grow_max): the listing is consistent again
    grown = set(after["added"])
    assert len(grown) == 9 and not grown & old
    assert {r["numeroControlePNCP"] for r in after["contratacoes"] if r["modalidadeId"] == 8} == old | grown
    assert all(r["modalidadeId"] == 8 for r in after["contratacoes"] if r["numeroControlePNCP"] in grown)
    assert totals[0] == len(old) and totals[-1] == len(old) + 9, "totalRegistros follows the current count"
    assert sorted(set(totals)) == [len(old), len(old) + 3, len(old) + 6, len(old) + 9]
    assert sorted(r["numeroControlePNCP"] for r in full) == sorted(old | grown)
    assert sim.stats()["faults"]["grow"] == 9
    naive_ids = [r["numeroControlePNCP"] for r in naive]
    if order == "front":
        assert len(naive_ids) > len(set(naive_ids)), "records pushed across a page boundary are listed twice"
        assert old - set(naive_ids), "and records pushed past the last page are missed"
        pub = {r["numeroControlePNCP"]: r["dataPublicacaoPncp"] for r in after["contratacoes"]}
        newest_first = sorted(grown, key=lambda i: pub[i], reverse=True)
        assert [r["numeroControlePNCP"] for r in full[:9]] == newest_first, "grown records are listed first"
    elif order == "end":
        assert len(naive_ids) == len(set(naive_ids)) and old <= set(naive_ids)
    else:
        keys = [(r["dataPublicacaoPncp"], r["numeroControlePNCP"]) for r in full]
        assert keys != sorted(keys), "the listing order is not the publication order"


def test_growth_while_listing_only_counts_one_day_windows_of_publicacao(sim_factory):
    sim = sim_factory(seed=7, per_day=40, faults={"grow_every": 1, "grow_by": 1, "grow_max": 5})
    with client(sim) as c:
        for _ in range(3):
            listing(c, 8, d0="20251021", d1=YMD)
            listing(c, 8, path=ATUALIZACAO)
    assert sim.truth(DAY)["added"] == {} and sim.truth("2025-10-21")["added"] == {}
    with client(sim) as c:
        for _ in range(8):
            listing(c, 6)
    assert len(sim.truth(DAY)["added"]) == 5, "grow_max caps the growth"


# ----------------------------------------------------------------------------- exotic values


def exact_json(content: bytes) -> object:
    """Decode keeping every number as ("num", its exact text)."""
    return json.loads(content, parse_float=lambda t: ("num", t), parse_int=lambda t: ("num", t))


def served_as(value: object, text: str) -> bool:
    return value == (json.loads(text) if text.startswith('"') else ("num", text))


def test_exotic_values_are_served_as_exact_json_text(sim_factory):
    sim = sim_factory(seed=7, per_day=60, exotic=0.2)
    truth = sim.truth(DAY)
    exotic = truth["exotic"]
    assert exotic["contratacoes"] and exotic["itens"]
    records = {r["numeroControlePNCP"]: r for r in truth["contratacoes"]}
    with client(sim) as c:
        listed = {}
        for mod in {r["modalidadeId"] for r in records.values()}:
            for p in range(1, 3):
                r = listing(c, mod, p, 50)
                if r.status_code == 200:
                    listed.update({rec["numeroControlePNCP"]: rec for rec in exact_json(r.content)["data"]})
        for cid, fields in exotic["contratacoes"].items():
            for name, text in fields.items():
                assert served_as(listed[cid][name], text), (cid, name, text)
        for cid, by_item in exotic["itens"].items():
            itens = exact_json(c.get(compra_path(records[cid]) + "/itens?pagina=1&tamanhoPagina=500").content)
            by_numero = {i["numeroItem"][1]: i for i in itens}
            for numero, fields in by_item.items():
                for name, text in fields.items():
                    assert served_as(by_numero[numero][name], text), (cid, numero, name, text)
    texts = {t for f in exotic["contratacoes"].values() for t in f.values()} | {
        t for by in exotic["itens"].values() for f in by.values() for t in f.values()
    }
    assert "1234567890123.4567" in texts
    assert any(t.startswith('"') for t in texts), "numbers sent as strings"
    numbers = [Decimal(t) for t in texts if not t.startswith('"')]
    assert any(abs(n) >= Decimal("1e32") for n in numbers) and any(
        n == n.to_integral() and abs(n) > 2**63 for n in numbers
    )
    assert any(-n.as_tuple().exponent >= 10 for n in numbers), "10+ decimals"
    exact = sim.truth(DAY, exact=True)
    assert Decimal("1234567890123.4567") in [r["valorTotalEstimado"] for r in exact["contratacoes"]]
    assert 0.05 < len(exotic["contratacoes"]) / len(records) < 0.4, "a small share of the records"


def test_no_exotic_values_by_default(ro):
    truth = ro.truth(DAY)
    assert "exotic" not in truth
    assert all(
        v is None or isinstance(v, float)
        for r in truth["contratacoes"]
        for v in (r["valorTotalEstimado"], r["valorTotalHomologado"])
    )


# ----------------------------------------------------------------------------- records that change over time

PUB_DAYS = ["2025-10-20", "2025-10-21", "2025-10-22"]
UPD = "2025-11-05"


def all_details(c: httpx.Client, rec: dict) -> tuple[list[dict], list[dict]]:
    itens = c.get(compra_path(rec) + "/itens", params={"pagina": 1, "tamanhoPagina": 500}).json()
    arq = c.get(compra_path(rec) + "/arquivos", params={"pagina": 1, "tamanhoPagina": 50})
    return itens, (arq.json() if arq.status_code == 200 else [])


def test_an_update_round_changes_records_their_details_and_dates(sim):
    before = {d: sim.truth(d, details=True) for d in PUB_DAYS}
    old = {r["numeroControlePNCP"]: r for t in before.values() for r in t["contratacoes"]}
    changed = sim.update(UPD, PUB_DAYS[0], PUB_DAYS[-1], share=0.5)
    after = {d: sim.truth(d, details=True, versions=True) for d in PUB_DAYS}
    now = {r["numeroControlePNCP"]: r for t in after.values() for r in t["contratacoes"]}
    details = {i: v for t in after.values() for i, v in t["details"].items()}
    old_details = {i: v for t in before.values() for i, v in t["details"].items()}
    versions = {i: v for t in after.values() for i, v in t["versions"].items()}
    assert 0.3 * len(old) < len(changed) < 0.7 * len(old)
    kinds = Counter(k for ch in changed for k in ch["changes"])
    assert set(kinds) == {"situacao", "homologado", "item_situacao", "arquivo", "item"}
    with client(sim) as c:
        for ch in changed:
            cid, was, cur = ch["id"], old[ch["id"]], now[ch["id"]]
            assert cur["dataAtualizacaoGlobal"] == ch["dataAtualizacaoGlobal"]
            assert (
                cur["dataAtualizacaoGlobal"].startswith(UPD)
                and cur["dataAtualizacaoGlobal"] > was["dataAtualizacaoGlobal"]
            )
            assert versions[cid] == [was, cur]
            record_level = {"situacao", "homologado"} & set(ch["changes"])
            assert cur["dataAtualizacao"] == (cur["dataAtualizacaoGlobal"] if record_level else was["dataAtualizacao"])
            if "situacao" in ch["changes"]:
                assert cur["situacaoCompraId"] != was["situacaoCompraId"]
                assert (
                    cur["situacaoCompraNome"]
                    == {1: "Divulgada no PNCP", 2: "Revogada", 3: "Anulada", 4: "Suspensa"}[cur["situacaoCompraId"]]
                )
            if "homologado" in ch["changes"]:
                assert (
                    cur["valorTotalHomologado"] is not None
                    and cur["valorTotalHomologado"] != was["valorTotalHomologado"]
                )
            untouched = {k for k in cur if k not in ("dataAtualizacaoGlobal", "dataAtualizacao")} - {
                "situacaoCompraId",
                "situacaoCompraNome",
                "valorTotalHomologado",
            }
            assert {k: cur[k] for k in untouched} == {k: was[k] for k in untouched}
            itens, arquivos = all_details(c, cur)
            assert (itens, arquivos) == (details[cid]["itens"], details[cid]["arquivos"]), "endpoints serve the truth"
            o_itens, o_arq = old_details[cid]["itens"], old_details[cid]["arquivos"]
            assert len(itens) == len(o_itens) + ("item" in ch["changes"])
            assert len(arquivos) == len(o_arq) + ("arquivo" in ch["changes"])
            assert c.get(compra_path(cur) + "/itens/quantidade").json() == len(itens)
            assert c.get(compra_path(cur) + "/arquivos/quantidade").json() == len(arquivos)
            sit_changed = [
                a["numeroItem"]
                for a, b in zip(itens[: len(o_itens)], o_itens, strict=True)
                if a["situacaoCompraItem"] != b["situacaoCompraItem"]
            ]
            assert len(sit_changed) == ("item_situacao" in ch["changes"])
            if "item" in ch["changes"]:
                assert (
                    itens[-1]["numeroItem"] == len(itens) and itens[-1]["dataInclusao"] == cur["dataAtualizacaoGlobal"]
                )
            if "arquivo" in ch["changes"]:
                assert arquivos[-1]["sequencialDocumento"] == len(arquivos)
                assert arquivos[-1]["dataPublicacaoPncp"] == cur["dataAtualizacaoGlobal"]
        # the listing serves the current state
        listed = {
            r["numeroControlePNCP"]: r
            for d in PUB_DAYS
            for mod in range(1, 20)
            for r in harvest(c, mod, 50, d.replace("-", ""), d.replace("-", ""))
        }
    assert listed == now
    unchanged = set(old) - {ch["id"] for ch in changed}
    assert all(now[i] == old[i] and versions[i] == [old[i]] for i in unchanged)


def test_atualizacao_moves_updated_records_to_their_new_window(sim):
    pub = {r["numeroControlePNCP"]: r for r in sim.truth(DAY)["contratacoes"]}
    with client(sim) as c:
        before = {r["numeroControlePNCP"] for mod in range(1, 20) for r in harvest(c, mod, 10, YMD, YMD, ATUALIZACAO)}
        changed = {ch["id"] for ch in sim.update(UPD, DAY, share=0.6)}
        after_day = {
            r["numeroControlePNCP"] for mod in range(1, 20) for r in harvest(c, mod, 10, YMD, YMD, ATUALIZACAO)
        }
        upd_window = [r for mod in range(1, 20) for r in harvest(c, mod, 10, "20251105", "20251105", ATUALIZACAO)]
    own = {i for i, r in pub.items() if r["dataAtualizacaoGlobal"][:10] == DAY}
    assert own and own < before, "plus records published earlier whose dataAtualizacaoGlobal is on DAY"
    assert all(ID_RE.match(i) and i not in pub for i in before - own)
    assert changed & before and after_day == before - changed, "an updated record leaves its old window"
    ids = {r["numeroControlePNCP"] for r in upd_window}
    assert changed <= ids, "and is listed in the window of its new dataAtualizacaoGlobal"
    assert ids == {r["numeroControlePNCP"] for r in sim.truth_atualizacao(UPD)["contratacoes"]}
    assert all(r["dataAtualizacaoGlobal"].startswith(UPD) for r in upd_window)


def test_rounds_on_the_same_day_keep_every_version_in_order(sim):
    first = {ch["id"] for ch in sim.update(UPD, DAY, share=1.0)}
    second = {ch["id"] for ch in sim.update(UPD, DAY, share=1.0)}
    later = {ch["id"] for ch in sim.update("2025-12-01", DAY, share=1.0)}
    assert first and first <= second <= later
    truth = sim.truth(DAY, versions=True)
    for rec in truth["contratacoes"]:
        vs = truth["versions"][rec["numeroControlePNCP"]]
        globs = [v["dataAtualizacaoGlobal"] for v in vs]
        assert vs[-1] == rec and globs == sorted(set(globs)), (
            "one version per (id, dataAtualizacaoGlobal), oldest first"
        )
        if rec["numeroControlePNCP"] in first:
            assert len(vs) == 4 and globs[-1].startswith("2025-12-01")


def test_an_update_never_moves_a_record_back_in_time(sim):
    truth = sim.truth(DAY)
    future = {r["numeroControlePNCP"] for r in truth["contratacoes"] if r["dataAtualizacaoGlobal"][:10] > "2025-10-23"}
    changed = {ch["id"] for ch in sim.update("2025-10-23", DAY, share=1.0)}
    assert (
        future and not future & changed and changed == {r["numeroControlePNCP"] for r in truth["contratacoes"]} - future
    )
    with pytest.raises(RuntimeError, match="first <= last <= date"):
        sim.update("2025-10-21", DAY)


def test_updates_keep_exotic_values_exact(sim_factory):
    sim = sim_factory(seed=7, per_day=40, exotic=0.3)
    exotic = sim.truth(DAY)["exotic"]["contratacoes"]
    changed = {ch["id"]: ch["changes"] for ch in sim.update(UPD, DAY, share=1.0)}
    with client(sim) as c:
        body = b"".join(
            r.content for mod in range(1, 20) for p in (1, 2) if (r := listing(c, mod, p, 50)).status_code == 200
        )
    for cid, fields in exotic.items():
        for name, text in fields.items():
            if name == "valorTotalHomologado" and "homologado" in changed.get(cid, []):
                continue
            assert f'"{name}":{text}'.encode() in body


def test_serve_help_documents_every_option_and_fault_key():
    out = subprocess.run(
        [sys.executable, "-m", "pncp_ingest.testing", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(out.split())
    for option in ("--seed", "--per-day", "--page-cap", "--exotic", "--faults", "--no-big-items"):
        help_text = flat.split("options:", 1)[1].split(f" {option} ", 1)[1].split(" --", 1)[0]
        assert len(help_text.split()) > 3, f"{option} has no help"
    for name, info in Faults.model_fields.items():
        assert info.description and f"{name} (default" in out and " ".join(info.description.split()) in flat, name


def test_cli_rejects_bad_options_with_one_line(tmp_path):
    for args, needle in (
        (["--per-day", "99999"], "--per-day: must be between 0 and 30000"),
        (["--exotic", "2"], "--exotic: must be between 0 and 1"),
        (["--page-cap", "0"], "--page-cap: must be at least 1"),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "pncp_ingest.testing", "serve", *args], capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr


def test_an_atualizacao_window_first_changes_nothing_about_earlier_days():
    """/atualizacao builds single records of earlier, not yet generated days; those days must come out
    the same, with the very objects the window served (so an update is seen by both listings)."""
    scanned = SimulatedPncp(seed=5, per_day=80)
    fresh = SimulatedPncp(seed=5, per_day=80)
    listed = {
        c.id: c
        for mod in range(1, 20)
        for c in scanned.atualizacao_window(dt.date(2025, 10, 22), dt.date(2025, 10, 22), mod)
    }
    earlier = {c.id: c.pub[:10] for c in listed.values() if c.pub[:10] < DAY}
    assert earlier, "the window holds records published on earlier days"
    for cid, day in earlier.items():
        assert scanned.truth(day) == fresh.truth(day)
        assert listed[cid] in scanned.day(dt.date.fromisoformat(day)).compras
    cid, day = next(iter(earlier.items()))
    changed = {ch["id"] for ch in scanned.update("2025-12-01", day, share=1.0)}
    assert cid in changed
    assert [
        c.id
        for mod in range(1, 20)
        for c in scanned.atualizacao_window(dt.date(2025, 12, 1), dt.date(2025, 12, 1), mod)
    ].count(cid) == 1
