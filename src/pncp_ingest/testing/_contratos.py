"""Deterministic contratos (empenhos included) and atas de registro de preço over a ``SimulatedPncp``.

Records are generated per publication day, lazily, from string-seeded ``random.Random`` streams of
their own (``"{seed}|contrato|..."``, ``"{seed}|ata|..."``): the contratações, itens and arquivos of a
seed are byte for byte what they are without this module. Links point into the same world:

- a contrato is published with ``numeroControlePNCP = {cnpj}-2-{seq:06d}/{ano}`` (``seq`` decodes to
  the publication day, as a contratação's does); about 40 % (the empenhos) have no
  ``numeroControlePncpCompra``, the rest name a contratação published that day or up to
  ``CONTRATO_LINK_DAYS`` before (mostly one of the contrato's own órgão, found through the
  contratações' per-day órgão permutation, so no contratação has to be generated);
- an ata names an SRP contratação published one to eleven weeks before it, on the same weekday as
  the ata's own week anchor (so one week of atas shares a few contratação days), and its id is
  ``{compra id}-{n:06d}``; its dates are ``YYYY-MM-DD`` text as the real API sends them.

``amend`` changes records over time and keeps every version served. Every record is one compact JSON
fragment; listings are joined from fragments.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ._data import (
    _MATERIAIS,
    _OBJETOS,
    _SERVICOS,
    _SETORES,
    _USUARIOS,
    EXACT_PROBE,
    POOL_SIZE,
    SEQ_BLOCK,
    Raw,
    _cnpj_with_dv,
    _money,
    _ts,
    dumps,
    dumps_exact,
    loads_exact,
    update_time,
)

if TYPE_CHECKING:
    from ._data import SimulatedPncp, _Orgao

__all__ = ["ATAS_PER_DAY", "CONTRATOS_PER_DAY", "Dataset", "SimulatedOutcomes"]

Dataset = Literal["contratos", "atas"]

CONTRATOS_PER_DAY = 30
ATAS_PER_DAY = 6
MAX_CONTRATOS_PER_DAY = POOL_SIZE * SEQ_BLOCK  # the id scheme's room, as for contratações
MAX_ATAS_PER_DAY = 999  # the ata number n = weeks-apart * 1000 + index + 1 stays unique per compra
CONTRATO_LINK_DAYS = 90  # a contrato's contratação is published at most this many days before it
CONTRATO_GLOBAL_LAG_DAYS = 60  # a generated contrato's dataAtualizacaoGlobal is at most this much later
ATA_GLOBAL_LAG_DAYS = 180  # the same for an ata
ATA_START_BEFORE = 10  # vigenciaInicio is within [publication - 10, publication + 7] days
ATA_START_AFTER = 7
ATA_MAX_VIGENCIA_DAYS = 731  # two years
ONE_DAY = dt.timedelta(days=1)

_TIPO_CONTRATO = {
    1: "Contrato (termo inicial)",
    2: "Comodato",
    3: "Arrendamento",
    4: "Concessão",
    5: "Termo de Adesão",
    6: "Convênio",
    7: "Empenho",
    8: "Outros",
    12: "Carta Contrato",
}
_CATEGORIA_PROCESSO = {
    1: "Cessão",
    2: "Compras",
    3: "Informática (TIC)",
    5: "Locação Imóveis",
    6: "Mão de Obra",
    7: "Obras",
    8: "Serviços",
    9: "Serviços de Engenharia",
    10: "Serviços de Saúde",
}
_FORNECEDOR_NOMES = [
    "COMERCIAL {x} LTDA",
    "{x} DISTRIBUIDORA DE MEDICAMENTOS LTDA",
    "{x} SERVICOS E OBRAS EIRELI",
    "{x} COMERCIO DE PNEUS LTDA",
    "{x} TECNOLOGIA DA INFORMACAO S.A.",
    "AUTO POSTO {x} LTDA",
    "{x} ALIMENTOS LTDA - ME",
    "CONSTRUTORA {x} LTDA",
]
_NOMES = ["SANTOS", "OLIVEIRA", "POZZI", "SCHWAB", "SUPERAR", "NOVA ERA", "PLANALTO", "BOA VISTA", "ALIANCA"]
_PESSOAS = ["JOSE DA SILVA", "MARIA APARECIDA SOUZA", "ANTONIO CARLOS PEREIRA", "ANA PAULA RODRIGUES"]


def _cpf_with_dv(base9: str) -> str:
    digits = base9
    for n in (10, 11):
        s = sum(int(d) * w for d, w in zip(digits, range(n, 1, -1), strict=False))
        r = (s * 10) % 11
        digits += str(0 if r == 10 else r)
    return digits


def _fornecedores(seed: int) -> list[tuple[str, str, str, str]]:
    """(niFornecedor, tipoPessoa, nomeRazaoSocialFornecedor, codigoPaisFornecedor) of the world's suppliers."""
    r = random.Random(f"{seed}|fornecedores")
    out = []
    for _ in range(240):
        kind = r.choices(("PJ", "PF", "PE"), (85, 13, 2))[0]
        if kind == "PJ":
            ni = _cnpj_with_dv(f"{r.randrange(10**8):08d}" + r.choice(("0001", "0001", "0002")))
            nome = r.choice(_FORNECEDOR_NOMES).format(x=r.choice(_NOMES))
            pais = "BRA"
        elif kind == "PF":
            ni, nome, pais = _cpf_with_dv(f"{r.randrange(10**9):09d}"), r.choice(_PESSOAS), "BRA"
        else:
            ni, nome, pais = f"EX{r.randrange(10**6, 10**7)}", "GLOBAL MEDICAL SUPPLIES INC", r.choice(("USA", "PRT"))
        out.append((ni, kind, nome, pais))
    return out


def _add_months(d: dt.date, months: int) -> dt.date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return dt.date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- one dataset's records


@dataclass(slots=True)
class _Rec:
    id: str
    day: dt.date  # publication day
    index: int
    pub: str  # dataPublicacaoPncp
    glob: str  # current dataAtualizacaoGlobal
    frag: bytes  # the record as served now
    rev: int = 0  # amendments applied
    versions: list[bytes] = field(default_factory=list)  # every frag served, oldest first (filled on amend)
    exotic: dict[str, str] = field(default_factory=dict)  # field -> exact JSON text served


@dataclass(slots=True)
class _Head:
    """The first draws of a record: its dates, enough to place it in every listing without building it."""

    r: random.Random  # positioned after the draws below
    day: dt.date
    index: int
    pub: str
    atualizacao: str
    glob: str
    vigencia: tuple[dt.date, dt.date] | None = None  # atas: [vigenciaInicio, vigenciaFim]


@dataclass(slots=True, frozen=True)
class _Mark:
    """What the listings need to know of a record before it is built."""

    index: int
    glob: str  # dataAtualizacaoGlobal as generated
    vigencia: tuple[dt.date, dt.date] | None


class _Store:
    """One dataset: records per publication day, built lazily from heads, amended in place."""

    def __init__(
        self,
        per_day: int,
        head: Callable[[dt.date, int], _Head],
        finish: Callable[[_Head], _Rec],
        lag_days: int,
    ) -> None:
        self.per_day = per_day
        self._head, self._finish, self.lag_days = head, finish, lag_days
        self._recs: dict[tuple[dt.date, int], _Rec] = {}
        self._days: dict[dt.date, list[_Rec]] = {}
        self._marks: dict[dt.date, list[_Mark]] = {}
        self._moved: dict[str, set[tuple[dt.date, int]]] = {}  # date of the current glob -> amended records
        self._rounds: dict[dt.date, int] = {}  # amend rounds applied per update day

    def marks(self, d: dt.date) -> list[_Mark]:
        """The dates of each record of day ``d``, without the heads' random state (kept for every day scanned)."""
        ms = self._marks.get(d)
        if ms is None:
            heads = (self._head(d, i) for i in range(self.per_day))
            ms = self._marks[d] = [_Mark(h.index, h.glob, h.vigencia) for h in heads]
        return ms

    def rec(self, d: dt.date, i: int) -> _Rec:
        key = (d, i)
        rec = self._recs.get(key)
        if rec is None:
            rec = self._recs[key] = self._finish(self._head(d, i))
        return rec

    def day(self, d: dt.date) -> list[_Rec]:
        """The records published on ``d``, sorted by (publication, id)."""
        recs = self._days.get(d)
        if recs is None:
            recs = self._days[d] = sorted((self.rec(d, i) for i in range(self.per_day)), key=lambda c: (c.pub, c.id))
        return recs

    def window(self, d0: dt.date, d1: dt.date) -> list[_Rec]:
        """By publication day in [d0, d1], in listing order."""
        return [rec for d in _days(d0, d1) for rec in self.day(d)]

    def atualizacao_window(self, d0: dt.date, d1: dt.date) -> list[_Rec]:
        """The records whose *current* dataAtualizacaoGlobal is in [d0, d1], by (that date, id)."""
        lo, hi = d0.isoformat(), d1.isoformat()
        out: list[_Rec] = []
        for d in _days(d0 - dt.timedelta(days=self.lag_days), d1):
            for h in self.marks(d):
                if lo <= h.glob[:10] <= hi:
                    rec = self.rec(d, h.index)
                    if not rec.rev:
                        out.append(rec)
        for iso, keys in self._moved.items():
            if lo <= iso <= hi:
                out.extend(self._recs[k] for k in keys)
        out.sort(key=lambda c: (c.glob, c.id))
        return out

    def amend(
        self,
        u: dt.date,
        d0: dt.date,
        d1: dt.date,
        share: float,
        kind: str,
        seed: int,
        one: Callable[[_Rec, dt.date, random.Random], dict[str, Any] | None],
    ) -> list[dict[str, Any]]:
        """Amend ``share`` of the records published in [d0, d1] on update day ``u``; keeps every version."""
        if d0 > d1 or d1 > u:
            raise ValueError("need first <= last <= date: records change after they are published")
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be in 0..1")
        self._rounds[u] = rnd = self._rounds.get(u, 0) + 1
        out: list[dict[str, Any]] = []
        for d in _days(d0, d1):
            for rec in self.day(d):
                r = random.Random(f"{seed}|amend|{kind}|{u.isoformat()}|{rnd}|{rec.id}")
                if r.random() >= share:
                    continue
                old_glob, old_frag = rec.glob, rec.frag
                change = one(rec, u, r)
                if change is None:
                    continue
                if not rec.versions:
                    rec.versions.append(old_frag)
                rec.versions.append(rec.frag)
                rec.rev += 1
                key = (rec.day, rec.index)
                self._moved.get(old_glob[:10], set()).discard(key)
                self._moved.setdefault(rec.glob[:10], set()).add(key)
                out.append({"id": rec.id, "changes": change["changes"], "dataAtualizacaoGlobal": rec.glob})
        return out


def _days(d0: dt.date, d1: dt.date) -> Iterator[dt.date]:
    d = d0
    while d <= d1:
        yield d
        d += ONE_DAY


# --------------------------------------------------------------------------- the two datasets


class SimulatedOutcomes:
    """Contratos and atas of the world of ``sim`` (see the module docstring).

    ``contratos_per_day`` / ``atas_per_day`` records are published each day. Truth and listings
    return exactly the fragments the HTTP endpoints serve.
    """

    def __init__(
        self, sim: SimulatedPncp, contratos_per_day: int = CONTRATOS_PER_DAY, atas_per_day: int = ATAS_PER_DAY
    ) -> None:
        if not 0 <= contratos_per_day <= MAX_CONTRATOS_PER_DAY:
            raise ValueError(f"contratos_per_day must be in 0..{MAX_CONTRATOS_PER_DAY}")
        if not 0 <= atas_per_day <= MAX_ATAS_PER_DAY:
            raise ValueError(f"atas_per_day must be in 0..{MAX_ATAS_PER_DAY}")
        self.sim = sim
        self.seed = sim.seed
        self.contratos_per_day, self.atas_per_day = contratos_per_day, atas_per_day
        self._fornecedores = _fornecedores(self.seed)
        self._org_index = {o.cnpj: k for k, o in enumerate(sim._pool)}
        self._perms: dict[dt.date, list[int]] = {}
        self._compra_inv: dict[dt.date, list[int]] = {}
        self._srp: dict[dt.date, list[bytes]] = {}
        self._vig: dict[tuple[dt.date, dt.date], list[tuple[dt.date, int]]] = {}
        self.contratos = _Store(contratos_per_day, self._contrato_head, self._contrato, CONTRATO_GLOBAL_LAG_DAYS)
        self.atas = _Store(atas_per_day, self._ata_head, self._ata, ATA_GLOBAL_LAG_DAYS)
        self.version = 0  # bumped by amend(): listings may change

    def store(self, dataset: Dataset) -> _Store:
        return self.contratos if dataset == "contratos" else self.atas

    # ------------------------------------------------------------------ truth

    def truth_bytes(self, dataset: Dataset, d: dt.date, *, versions: bool = False) -> bytes:
        """The current version of every record of ``dataset`` published on ``d``."""
        return self._truth_of(dataset, self.store(dataset).day(d), versions)

    def truth_atualizacao_bytes(self, dataset: Dataset, d: dt.date, *, versions: bool = False) -> bytes:
        """What ``/atualizacao`` lists for ``d``: every record whose current dataAtualizacaoGlobal is on ``d``."""
        return self._truth_of(dataset, self.store(dataset).atualizacao_window(d, d), versions)

    def truth(self, dataset: Dataset, d: dt.date, *, versions: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.truth_bytes(dataset, d, versions=versions))
        return out

    def _truth_of(self, dataset: Dataset, recs: list[_Rec], versions: bool) -> bytes:
        parts = [b'{"', dataset.encode(), b'":[', b",".join(c.frag for c in recs), b"]"]
        if versions:
            parts.append(b',"versions":{')
            parts.append(b",".join(dumps(c.id) + b":[" + b",".join(c.versions or [c.frag]) + b"]" for c in recs))
            parts.append(b"}")
        if self.sim.exotic and dataset == "contratos":
            parts.append(b',"exotic":' + dumps({"contratos": {c.id: c.exotic for c in recs if c.exotic}}))
        parts.append(b"}")
        return b"".join(parts)

    # ------------------------------------------------------------------ listings

    def window(self, dataset: Dataset, d0: dt.date, d1: dt.date) -> list[_Rec]:
        return self.store(dataset).window(d0, d1)

    def atualizacao_window(self, dataset: Dataset, d0: dt.date, d1: dt.date) -> list[_Rec]:
        return self.store(dataset).atualizacao_window(d0, d1)

    def vigencia_window(self, d0: dt.date, d1: dt.date) -> list[tuple[dt.date, int]]:
        """``/v1/atas``: (publication day, index) of every ata whose vigência overlaps [d0, d1].

        Decided from the atas' heads, so counting never builds a record (nor the contratações they
        link); ``ata(key)`` builds the ones a page shows. Ordered by publication day, then index.
        """
        key = (d0, d1)
        win = self._vig.get(key)
        if win is None:
            if len(self._vig) > 1000:
                self._vig.clear()
            first = d0 - dt.timedelta(days=ATA_MAX_VIGENCIA_DAYS + ATA_START_AFTER)
            win = self._vig[key] = [
                (p, h.index)
                for p in _days(first, d1 + dt.timedelta(days=ATA_START_BEFORE))
                for h in self.atas.marks(p)
                if h.vigencia is not None and h.vigencia[0] <= d1 and h.vigencia[1] >= d0
            ]
        return win

    def ata(self, key: tuple[dt.date, int]) -> _Rec:
        return self.atas.rec(*key)

    # ------------------------------------------------------------------ changes over time

    def amend(
        self, dataset: Dataset, date: dt.date, first: dt.date, last: dt.date | None = None, share: float = 0.3
    ) -> list[dict[str, Any]]:
        """Amend ``share`` of the ``dataset`` records published in [first, last] on update day ``date``.

        Contratos: ``numeroRetificacao`` + 1, a new ``valorGlobal`` and ``valorAcumulado``, sometimes a
        vigência extension (``dataVigenciaFim``). Atas: sometimes cancelled (``cancelado``,
        ``dataCancelamento``), else the objeto is rectified. Both move ``dataAtualizacao`` and
        ``dataAtualizacaoGlobal`` to ``date`` (a time on it for contratos, later than the current
        one; atas carry dates only, so an ata already updated on ``date`` or later is left alone).
        Returns ``[{"id", "changes", "dataAtualizacaoGlobal"}]``.
        """
        one = self._amend_contrato if dataset == "contratos" else self._amend_ata
        out = self.store(dataset).amend(date, first, last or first, share, dataset, self.seed, one)
        self.version += 1
        return out

    def _amend_contrato(self, rec: _Rec, u: dt.date, r: random.Random) -> dict[str, Any] | None:
        ts = update_time(u, rec.glob, r)
        if ts is None:
            return None
        c = loads_exact(rec.frag)
        changes = ["retificacao", "valor"]
        c["numeroRetificacao"] += 1
        places = r.choice((2, 2, 4))
        novo = _money(r, 100.0, 3_000_000.0)
        c["valorGlobal"] = Raw(f"{novo:.{places}f}")
        c["valorAcumulado"] = Raw(f"{novo * r.uniform(0.1, 1.0):.{places}f}")
        rec.exotic.pop("valorGlobal", None)
        rec.exotic.pop("valorAcumulado", None)
        if r.random() < 0.4:
            changes.append("vigencia")
            fim = dt.date.fromisoformat(c["dataVigenciaFim"])
            c["dataVigenciaFim"] = _add_months(fim, r.choice((3, 6, 12))).isoformat()
        c["dataAtualizacao"] = c["dataAtualizacaoGlobal"] = rec.glob = ts
        rec.frag = dumps_exact(c)
        return {"changes": changes}

    def _amend_ata(self, rec: _Rec, u: dt.date, r: random.Random) -> dict[str, Any] | None:
        iso = u.isoformat()
        if rec.glob[:10] >= iso:
            return None
        a = json.loads(rec.frag)
        if not a["cancelado"] and r.random() < 0.35:
            changes = ["cancelamento"]
            a["cancelado"], a["dataCancelamento"] = True, iso
        else:
            changes = ["objeto"]
            a["objetoContratacao"] = f"{a['objetoContratacao'].removesuffix(' (retificado)')} (retificado)"
        a["dataAtualizacao"] = a["dataAtualizacaoGlobal"] = rec.glob = iso
        rec.frag = dumps(a)
        return {"changes": changes}

    # ------------------------------------------------------------------ contratos

    def _perm(self, d: dt.date) -> list[int]:
        perm = self._perms.get(d)
        if perm is None:
            if len(self._perms) > 4000:
                self._perms.clear()
            perm = list(range(POOL_SIZE))
            random.Random(f"{self.seed}|contrato|{d.isoformat()}|perm").shuffle(perm)
            self._perms[d] = perm
        return perm

    def _contrato_head(self, d: dt.date, index: int) -> _Head:
        r = random.Random(f"{self.seed}|contrato|{d.isoformat()}|{index}")
        t = 6 * 3600 + int((index + r.random()) * (14 * 3600) / max(self.contratos_per_day, 1))
        pub = _ts(d, t)
        atualizacao = _ts(d, t + r.randrange(2, 15))
        glob = (
            atualizacao
            if r.random() < 0.7
            else _ts(d + dt.timedelta(days=r.randrange(1, CONTRATO_GLOBAL_LAG_DAYS + 1)), r.randrange(28800, 64800))
        )
        return _Head(r, d, index, pub, atualizacao, glob)

    def _compra_for(self, r: random.Random, org_idx: int, d: dt.date) -> str | None:
        """A contratação of the world published on ``d`` or up to CONTRATO_LINK_DAYS before, of this
        órgão when one is found in a few draws; computed from contratação heads only."""
        sim = self.sim
        per = sim.per_day
        if per == 0:
            return None
        for _ in range(6):
            cd = d - dt.timedelta(days=r.randrange(CONTRATO_LINK_DAYS + 1))
            inv = self._compra_inv.get(cd)
            if inv is None:
                if len(self._compra_inv) > 4000:
                    self._compra_inv.clear()
                inv = [0] * POOL_SIZE
                for pos, k in enumerate(sim._perm_cache(cd)):
                    inv[k] = pos
                self._compra_inv[cd] = inv
            pos = inv[org_idx]
            if pos < per:
                return sim._head(cd, pos + POOL_SIZE * r.randrange((per - 1 - pos) // POOL_SIZE + 1)).cid
        cd = d - dt.timedelta(days=r.randrange(CONTRATO_LINK_DAYS + 1))
        return sim._head(cd, r.randrange(per)).cid

    def _contrato(self, h: _Head) -> _Rec:
        r, d, index = h.r, h.day, h.index
        org_idx = self._perm(d)[index % POOL_SIZE]
        org: _Orgao = self.sim._pool[org_idx]
        seq = 1 + d.timetuple().tm_yday * SEQ_BLOCK + index // POOL_SIZE
        ano = d.year
        cid = f"{org.cnpj}-2-{seq:06d}/{ano}"
        empenho = r.random() < 0.4
        compra = None if empenho else self._compra_for(r, org_idx, d)
        if empenho:
            tipo = r.choices((7, 8, 1), (60, 25, 15))[0]
            numero = r.choice((f"{r.randrange(1, 9999)}", f"{ano}NE{r.randrange(1, 99999):06d}"))
            categoria = r.choices((2, 8, 6), (70, 25, 5))[0]
        else:
            tipo = r.choices((1, 8, 12, 5, 2, 3, 4, 6), (70, 15, 5, 4, 2, 1, 1, 2))[0]
            numero = r.choice((f"{r.randrange(1, 999):03d}/{ano}", f"AF{r.randrange(100000, 999999)}", str(index + 1)))
            categoria = r.choice(list(_CATEGORIA_PROCESSO))
        ni, tipo_pessoa, fornecedor, pais = r.choice(self._fornecedores)
        assinatura = d - dt.timedelta(days=r.randrange(0, 30))
        inicio = assinatura + dt.timedelta(days=r.choice((0, 0, 0, 1, 5)))
        if empenho:
            fim = inicio + dt.timedelta(days=r.randrange(30, 366))
        else:
            fim = _add_months(inicio, r.choice((3, 6, 12, 12, 12, 24, 30, 60)))
        inicial = _money(r, 100.0, 2_000_000.0)
        parcelas = 1 if empenho else r.choice((1, 1, 6, 12, 24))
        valor_parcela = 0.0 if r.random() < 0.5 else round(inicial / parcelas, 2)
        acumulado = 0.0 if r.random() < 0.6 else inicial
        mat, srv, setor = r.choice(_MATERIAIS), r.choice(_SERVICOS), r.choice(_SETORES)
        objeto = r.choice(_OBJETOS).format(m=mat, M=mat.upper(), v=srv, s=setor, S=setor.upper())
        n = r.randrange(1, 999)
        processo = r.choice((f"{n:06d}/{ano}: {objeto.upper()[:80]}", f"{n}/{ano}", f"{r.randrange(10**5, 10**6)}"))
        unidade = dict(r.choice(org.unidades))
        if r.random() < 0.1:
            unidade["codigoIbge"] = int(unidade["codigoIbge"])  # the drift contratações show too
        info = r.random()
        sub = r.random() < 0.03
        sub_ni, sub_tipo, sub_nome, _ = r.choice(self._fornecedores)
        subrogado = self.sim._pool[r.randrange(POOL_SIZE)] if r.random() < 0.02 else None
        obra = categoria in (7, 9) and r.random() < 0.3
        cipi = f"{unidade['ufSigla']}.{r.randrange(10**5, 10**6)}.{ano}" if obra else None
        rec: dict[str, Any] = {
            "codigoPaisFornecedor": pais,
            "numeroControlePncpCompra": compra,
            "nomeRazaoSocialFornecedor": fornecedor,
            "anoContrato": ano,
            "tipoContrato": {"id": tipo, "nome": _TIPO_CONTRATO[tipo]},
            "numeroContratoEmpenho": numero,
            "dataAssinatura": assinatura.isoformat(),
            "dataVigenciaInicio": inicio.isoformat(),
            "dataVigenciaFim": fim.isoformat(),
            "niFornecedor": ni,
            "tipoPessoa": tipo_pessoa,
            "orgaoEntidade": {"cnpj": org.cnpj, "razaoSocial": org.razao, "poderId": org.poder, "esferaId": org.esfera},
            "categoriaProcesso": {"id": categoria, "nome": _CATEGORIA_PROCESSO[categoria]},
            "dataPublicacaoPncp": h.pub,
            "dataAtualizacao": h.atualizacao,
            "sequencialContrato": seq,
            "unidadeOrgao": unidade,
            "informacaoComplementar": None if info < 0.6 else ("" if info < 0.8 else f"Processo {processo}."),
            "processo": processo,
            "unidadeSubRogada": None if subrogado is None else dict(subrogado.unidades[0]),
            "orgaoSubRogado": None
            if subrogado is None
            else {
                "cnpj": subrogado.cnpj,
                "razaoSocial": subrogado.razao,
                "poderId": subrogado.poder,
                "esferaId": subrogado.esfera,
            },
            "niFornecedorSubContratado": sub_ni if sub else None,
            "nomeFornecedorSubContratado": sub_nome if sub else None,
            "numeroControlePNCP": cid,
            "receita": r.random() < 0.02,
            "numeroParcelas": parcelas,
            "numeroRetificacao": 0 if r.random() < 0.95 else 1,
            "tipoPessoaSubContratada": sub_tipo if sub else None,
            "objetoContrato": objeto,
            "valorInicial": inicial,
            "valorParcela": valor_parcela,
            "valorGlobal": inicial,
            "valorAcumulado": acumulado,
            "dataAtualizacaoGlobal": h.glob,
            "identificadorCipi": cipi,
            "urlCipi": None if cipi is None else f"https://cipi.economia.gov.br/intervencao/{cipi}",
            "usuarioNome": _USUARIOS[org.usuario][0],
        }
        if r.random() < 0.10:
            rec["emendaParlamentar"] = r.random() < 0.3
        exotic = self.sim._exotic_fields(
            rec, f"contrato|{cid}", ("valorInicial", "valorParcela", "valorGlobal", "valorAcumulado")
        )
        if index == 0 and self.sim.exotic:
            rec["valorGlobal"] = Raw(EXACT_PROBE)
            exotic["valorGlobal"] = EXACT_PROBE
        frag = dumps_exact(rec) if exotic else dumps(rec)
        return _Rec(cid, d, index, h.pub, h.glob, frag, exotic=exotic)

    # ------------------------------------------------------------------ atas

    def _ata_head(self, d: dt.date, index: int) -> _Head:
        r = random.Random(f"{self.seed}|ata|{d.isoformat()}|{index}")
        iso = d.isoformat()
        glob = iso if r.random() < 0.6 else (d + dt.timedelta(days=r.randrange(1, ATA_GLOBAL_LAG_DAYS + 1))).isoformat()
        inicio = d + dt.timedelta(days=r.randrange(-ATA_START_BEFORE, ATA_START_AFTER + 1))
        months = r.choice((3, 6, 12, 12, 12, 24))
        fim = min(
            _add_months(inicio, months) - ONE_DAY * r.choice((0, 1)), inicio + dt.timedelta(ATA_MAX_VIGENCIA_DAYS)
        )
        return _Head(r, d, index, iso, glob, glob, (inicio, fim))

    def _srp_compras(self, cd: dt.date) -> list[bytes]:
        """The SRP contratações among the base (never grown) records published on ``cd``."""
        frags = self._srp.get(cd)
        if frags is None:
            if len(self._srp) > 4000:
                self._srp.clear()
            base = [c for c in self.sim.day(cd).compras if c.index < self.sim.per_day]
            frags = self._srp[cd] = [c.frag for c in base if b'"srp":true' in c.frag]
        return frags

    def _ata(self, h: _Head) -> _Rec:
        r, p, index = h.r, h.day, h.index
        assert h.vigencia is not None
        inicio, fim = h.vigencia
        anchor = p - dt.timedelta(days=p.toordinal() % 7)
        weeks = r.randrange(1, 5)
        compra: dict[str, Any] | None = None
        cd = anchor - dt.timedelta(weeks=weeks)
        for w in range(weeks, weeks + 7):
            frags = self._srp_compras(anchor - dt.timedelta(weeks=w))
            if frags:
                cd = anchor - dt.timedelta(weeks=w)
                compra = json.loads(r.choice(frags))
                break
        if compra is None:  # a world with too few contratações for an SRP one: any, or one outside the world
            base = [c for c in self.sim.day(cd).compras if c.index < self.sim.per_day]
            if base:
                compra = json.loads(r.choice(base).frag)
            else:
                head = self.sim._head(cd, 0)
                org = head.org
                compra = {
                    "numeroControlePNCP": head.cid,
                    "orgaoEntidade": {"cnpj": org.cnpj, "razaoSocial": org.razao},
                    "unidadeOrgao": org.unidades[0],
                    "objetoCompra": "Registro de preços para futura e eventual aquisição de material de expediente",
                    "usuarioNome": _USUARIOS[org.usuario][0],
                }
        n = (p - cd).days * 1000 + index + 1
        aid = f"{compra['numeroControlePNCP']}-{n:06d}"
        assinatura = inicio - dt.timedelta(days=r.choice((0, 0, 0, 1, 3)))
        cancelado = h.glob > h.pub and r.random() < 0.03
        unidade = compra["unidadeOrgao"]
        rec = {
            "numeroControlePNCPAta": aid,
            "numeroAtaRegistroPreco": r.choice((str(r.randrange(1, 300)), f"{r.randrange(1, 300):03d}/{p.year}")),
            "anoAta": assinatura.year,
            "numeroControlePNCPCompra": compra["numeroControlePNCP"],
            "cancelado": cancelado,
            "dataCancelamento": h.glob if cancelado else None,
            "dataAssinatura": assinatura.isoformat(),
            "vigenciaInicio": inicio.isoformat(),
            "vigenciaFim": fim.isoformat(),
            "dataPublicacaoPncp": h.pub,
            "dataInclusao": h.pub,
            "dataAtualizacao": h.atualizacao,
            "dataAtualizacaoGlobal": h.glob,
            "usuario": compra["usuarioNome"],
            "objetoContratacao": compra["objetoCompra"],
            "cnpjOrgao": compra["orgaoEntidade"]["cnpj"],
            "nomeOrgao": compra["orgaoEntidade"]["razaoSocial"],
            "cnpjOrgaoSubrogado": None,
            "nomeOrgaoSubrogado": None,
            "codigoUnidadeOrgao": str(unidade["codigoUnidade"]),
            "nomeUnidadeOrgao": unidade["nomeUnidade"],
            "codigoUnidadeOrgaoSubrogado": None,
            "nomeUnidadeOrgaoSubrogado": None,
        }
        return _Rec(aid, p, index, h.pub, h.glob, dumps(rec))
