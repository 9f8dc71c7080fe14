"""Items homologated over time, and their resultados (who won, at what price), as PNCP serves them.

At publication an item is in progress (``situacaoCompraItem`` 1) or already decided (2
Homologado, 3 Cancelado, 4 Deserto, 5 Fracassado); ``temResultado`` is true exactly for 2.
:func:`homologate` decides, on a given day, the items in progress of a share of the contratações
(one act per contratação, as an órgão homologates a licitação or its lots), and moves the
contratação's ``dataAtualizacaoGlobal`` (so ``/atualizacao`` lists it) only for a share of them:
PNCP does not promise that a homologation is listed.

Resultados are a pure function of (seed, compra, item) and the item's current state: an item
with ``temResultado`` has one result (several ranked ones when its compra is SRP), sometimes a
cancelled one kept with ``dataCancelamento`` before its replacement; a few homologated items
have none (204, or 404 for the ``resultados_404`` share of the server's faults).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._data import SimulatedPncp, _Compra

__all__ = ["NO_RESULT_SHARE", "homologate", "resultado_frags", "resultados_of"]

NO_RESULT_SHARE = 0.04  # homologated items (temResultado true) that serve no result
CANCELLED_SHARE = 0.08  # items whose first result was cancelled and replaced
ACT_SHARE = 0.8  # items in progress one homologation act decides (the rest: lots decided later)
SUPPLIERS = 150
_SITUACAO = {1: "Em Andamento", 2: "Homologado", 4: "Deserto", 5: "Fracassado"}
_PORTE = {1: "ME", 2: "EPP", 3: "Demais"}
_NOMES = ("COMERCIAL", "DISTRIBUIDORA", "SERVICOS", "MEDICAMENTOS", "ENGENHARIA", "ALIMENTOS", "TECNOLOGIA")
_SUFIXOS = ("LTDA", "EIRELI", "S.A.", "LTDA - ME", "COMERCIO E SERVICOS LTDA")


def _suppliers(seed: int) -> list[tuple[str, str, str, int]]:
    """(niFornecedor, tipoPessoa, nome, porte): a fixed pool, so the same firms win again and again."""
    r = random.Random(f"{seed}|fornecedores")
    out = []
    for i in range(SUPPLIERS):
        if r.random() < 0.1:
            ni = f"{r.randrange(10**10, 10**11):011d}"
            out.append((ni, "PF", f"FORNECEDOR PESSOA FISICA {i}", 1))
        else:
            ni = f"{r.randrange(10**7, 10**8):08d}0001{r.randrange(100):02d}"
            nome = f"{r.choice(_NOMES)} {chr(65 + i % 26)}{chr(65 + i // 26 % 26)} {r.choice(_SUFIXOS)}"
            out.append((ni, "PJ", nome, r.choice((1, 2, 3, 3))))
    return out


def resultado_frags(sim: SimulatedPncp, c: _Compra, numero_item: int) -> list[bytes] | None:
    """What ``/itens/{numero_item}/resultados`` serves now (``[]``: no result); None: no such item."""
    frags = sim.item_frags(c)
    if not 1 <= numero_item <= len(frags):
        return None
    from ._data import loads_exact

    item = loads_exact(frags[numero_item - 1])
    return [json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() for r in _results(sim, c, item)]


def resultados_of(sim: SimulatedPncp, c: _Compra) -> list[bytes]:
    """Every result of the compra's items with ``temResultado``, in item order: the truth of ``resultados``."""
    out: list[bytes] = []
    for k, frag in enumerate(sim.item_frags(c), start=1):
        if b'"temResultado":true' in frag:
            out.extend(resultado_frags(sim, c, k) or [])
    return out


def _results(sim: SimulatedPncp, c: _Compra, item: dict[str, Any]) -> list[dict[str, Any]]:
    if not item.get("temResultado"):
        return []
    k = item["numeroItem"]
    r = random.Random(f"{sim.seed}|resultados|{c.id}|{k}")
    if r.random() < NO_RESULT_SHARE:
        return []
    srp = bool(json.loads(c.frag).get("srp"))
    winners = r.choice((1, 1, 2, 3)) if srp else 1
    cancelled = r.random() < CANCELLED_SHARE
    suppliers = _suppliers_cached(sim)
    when = str(item["dataAtualizacao"])
    estimate = _number(item.get("valorUnitarioEstimado"), 0.0)
    quantity = _number(item.get("quantidade"), 1.0)
    out: list[dict[str, Any]] = []
    for rank in range(1, winners + 1 + int(cancelled)):
        ni, tipo, nome, porte = r.choice(suppliers)
        unit = round(estimate * r.uniform(0.55, 1.0), 4) if estimate else round(r.uniform(1, 500), 2)
        unit = max(unit, 0.0001)
        seq = len(out) + 1
        gone = cancelled and rank == 1
        cancel_at = (dt.datetime.fromisoformat(when) + dt.timedelta(days=r.randrange(1, 20))).isoformat()
        result: dict[str, Any] = {
            "indicadorSubcontratacao": False,
            "reservaRemanescente": {"codigo": 1, "nome": "Não se aplica"},
            "timezoneCotacaoMoedaEstrangeira": None,
            "moedaEstrangeira": None,
            "dataInclusao": when,
            "numeroItem": k,
            "niFornecedor": ni,
            "dataCancelamento": cancel_at if gone else None,
            "dataAtualizacao": cancel_at if gone else when,
            "tipoPessoa": tipo,
            "nomeRazaoSocialFornecedor": nome,
            "valorTotalHomologado": round(unit * quantity, 4),
            "valorNominalMoedaEstrangeira": None,
            "dataCotacaoMoedaEstrangeira": None,
            "codigoPais": "BRA",
            "porteFornecedorId": porte,
            "quantidadeHomologada": quantity,
            "valorUnitarioHomologado": unit,
            "percentualDesconto": round((1 - unit / estimate) * 100, 4) if estimate else 0.0,
            "amparoLegalMargemPreferencia": None,
            "amparoLegalCriterioDesempate": None,
            "paisOrigemProdutoServico": None,
            "localidadeExterior": None,
            "ordemClassificacaoSrp": (rank - int(cancelled) if not gone else 1) if srp else 1,
            "dataResultado": when[:10],
            "motivoCancelamento": "Desistência do fornecedor" if gone else None,
            "situacaoCompraItemResultadoId": 2 if gone else 1,
            "porteFornecedorNome": _PORTE[porte],
            "situacaoCompraItemResultadoNome": "Cancelado" if gone else "Informado",
            "sequencialResultado": seq,
            "naturezaJuridicaNome": None,
            "localidadeFornecedor": None,
            "aplicacaoMargemPreferencia": False,
            "aplicacaoBeneficioMeEpp": porte in (1, 2) and r.random() < 0.5,
            "aplicacaoCriterioDesempate": False,
            "naturezaJuridicaId": None,
            "numeroControlePNCPCompra": c.id,
        }
        if r.random() < 0.05:
            result["campoNovoSimulado"] = {"origem": "simulador", "versao": 2}
        out.append(result)
    return out


def _number(value: Any, default: float) -> float:
    """An item's number as a float to draw prices from (an exotic text that is no number: ``default``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if 0 < number < 1e12 else default


_POOLS: dict[int, list[tuple[str, str, str, int]]] = {}


def _suppliers_cached(sim: SimulatedPncp) -> list[tuple[str, str, str, int]]:
    pool = _POOLS.get(sim.seed)
    if pool is None:
        pool = _POOLS[sim.seed] = _suppliers(sim.seed)
    return pool


def homologate(
    sim: SimulatedPncp, when: dt.date, first: dt.date, last: dt.date, share: float, listed: float
) -> list[dict[str, Any]]:
    """On day ``when``, a homologation act for ``share`` of the contratações published in [first,
    last] that have items in progress: it decides most of them (``ACT_SHARE``; mostly Homologado,
    some Deserto/Fracassado), the rest wait for a later act. A contratação changed is listed at
    ``/atualizacao`` (its ``dataAtualizacaoGlobal`` moves to ``when``) with chance ``listed``,
    else changes silently. Returns ``[{"id", "itens", "listed", "at"}]``."""
    if not (first <= last <= when):
        raise ValueError("need first <= last <= date: items are homologated after they are published")
    if not (0.0 <= share <= 1.0 and 0.0 <= listed <= 1.0):
        raise ValueError("share and listed must be in 0..1")
    from ._data import dumps_exact, loads_exact

    rnd = sim._rounds[when] = sim._rounds.get(when, 0) + 1
    out: list[dict[str, Any]] = []
    d = first
    while d <= last:
        for c in list(sim.day(d).compras):
            if sim.is_gone(c.id):
                continue
            r = random.Random(f"{sim.seed}|homologate|{when.isoformat()}|{rnd}|{c.id}")
            if r.random() >= share:
                continue
            itens = list(sim.item_frags(c))
            at = _stamp(when, r)
            decided = []
            for index, frag in enumerate(itens):
                if b'"situacaoCompraItem":1,' not in frag or r.random() >= ACT_SHARE:
                    continue
                item = loads_exact(frag)
                sit = r.choices((2, 4, 5), (90, 5, 5))[0]
                item["situacaoCompraItem"], item["situacaoCompraItemNome"] = sit, _SITUACAO[sit]
                item["temResultado"], item["dataAtualizacao"] = sit == 2, at
                itens[index] = dumps_exact(item)
                decided.append(item["numeroItem"])
                if sit == 2:
                    sim.homologated[f"{c.id}|{item['numeroItem']}"] = when.isoformat()
            if not decided:
                continue
            c.itens_over = itens
            is_listed = r.random() < listed
            if is_listed and at > c.glob:
                sim.move_global(c, at)
            else:
                is_listed = False
                sim.touch(c)
            out.append({"id": c.id, "itens": decided, "listed": is_listed, "at": at})
        d += dt.timedelta(days=1)
    sim.version += 1
    return out


def _stamp(day: dt.date, r: random.Random) -> str:
    return (
        dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=r.randrange(8 * 3600, 18 * 3600))
    ).strftime("%Y-%m-%dT%H:%M:%S")
