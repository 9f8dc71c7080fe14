"""Deterministic PNCP-like data: contratações per day, their itens and arquivos.

Everything is a pure function of ``(seed, per_day, big_items, date, index)`` (plus the
``grow``/``remove`` calls made on the instance), using string-seeded ``random.Random``
instances, which hash with SHA-512 and so give the same bytes in any process.

Identity scheme (unique across every day and year)::

    cnpj       = pool[perm(date)[index % 300]]        # ~300 órgãos, a per-day permutation
    anoCompra  = year of publication (3 %: year - 1)
    sequencial = 1 + doy * 100 + index // 300          # + 40_000 when anoCompra = year - 1

so ``(cnpj, ano, sequencial)`` decodes back to the publication date, which lets the detail
endpoints find any compra without a prior listing call.

Records are shaped like the real samples (reference ``pncp-samples``), including the
documented type drift.  Each record/item/arquivo is serialised once to a compact JSON
fragment; page bodies are joined from fragments, which keeps the server fast.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from ._homologation import homologate, resultado_frags, resultados_of

__all__ = ["EXOTIC_VALUES", "MODALIDADES", "Raw", "SimulatedPncp", "as_date", "dumps", "dumps_exact", "loads_exact"]

POOL_SIZE = 300
SEQ_BLOCK = 100  # room for index // 300 < 100, i.e. 30,000 contratações per day
PREV_YEAR_OFFSET = 40_000
MAX_PER_DAY = POOL_SIZE * SEQ_BLOCK
BIG_ITEM_COUNTS = (0, 10, 11, 500, 501, 1203)
MAX_GLOBAL_LAG_DAYS = 120  # a generated dataAtualizacaoGlobal is at most this many days after publication

# JSON texts served by the ``exotic`` option: each breaks a float64 or decimal(38,6) reading.
EXACT_PROBE = "1234567890123.4567"  # 17 significant digits: through a float it reads back as ...4568
EXOTIC_VALUES = (
    EXACT_PROBE,
    "0.12345678901234567891",  # 20 decimals
    "98765.4321098765",  # 10 decimals
    "123456789012345678901234567890123.45",  # >= 1e32
    "1.5E+33",  # exponent form, >= 1e32
    "99999999999999999999999",  # an integer beyond int64
    "-9223372036854775809",  # one below int64's minimum
    '"1234.56"',  # a number sent as a string
    '"12.500,75"',  # a Brazilian-formatted number sent as a string
)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as the real API sends it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class Raw(str):
    """The exact JSON text of a number, written verbatim by ``dumps_exact`` (never through a float)."""

    __slots__ = ()


def loads_exact(text: bytes | str) -> Any:
    """Decode JSON keeping every non-integer number as its exact text (``Raw``)."""
    return json.loads(text, parse_float=Raw)


def dumps_exact(obj: Any) -> bytes:
    """Like ``dumps``, but ``Raw`` values are written as the number text they hold."""
    out: list[str] = []

    def write(o: Any) -> None:
        if isinstance(o, Raw):
            out.append(str.__str__(o))
        elif isinstance(o, dict):
            out.append("{")
            for i, (k, v) in enumerate(o.items()):
                if i:
                    out.append(",")
                out.append(json.dumps(k, ensure_ascii=False))
                out.append(":")
                write(v)
            out.append("}")
        elif isinstance(o, list):
            out.append("[")
            for i, v in enumerate(o):
                if i:
                    out.append(",")
                write(v)
            out.append("]")
        else:
            out.append(json.dumps(o, ensure_ascii=False))

    write(obj)
    return "".join(out).encode()


def _exotic_value(text: str) -> Any:
    """The value to put in a record so that ``dumps_exact`` serves exactly ``text``."""
    return json.loads(text) if text.startswith('"') else Raw(text)


def as_date(value: dt.date | str) -> dt.date:
    """Accept a ``datetime.date`` (or datetime) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip())
    raise TypeError(f"expected a date or 'YYYY-MM-DD', got {value!r}")


def _ascii_upper(s: str) -> str:
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().upper()


def _ts(day: dt.date, seconds: int) -> str:
    """Local Brasília time without offset, no fraction: ``2025-10-22T08:17:01``."""
    return (dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


# --------------------------------------------------------------------------- domain tables

# (id, nome) as PNCP's /pncp/v1/modalidades serves them (19 codes as of 2025; 16–19 added last).
_MODALIDADE_NAMES = [
    (1, "Leilão - Eletrônico"),
    (2, "Diálogo Competitivo"),
    (3, "Concurso"),
    (4, "Concorrência - Eletrônica"),
    (5, "Concorrência - Presencial"),
    (6, "Pregão - Eletrônico"),
    (7, "Pregão - Presencial"),
    (8, "Dispensa"),
    (9, "Inexigibilidade"),
    (10, "Manifestação de Interesse"),
    (11, "Pré-qualificação"),
    (12, "Credenciamento"),
    (13, "Leilão - Presencial"),
    (14, "Inaplicabilidade da Licitação"),
    (15, "Chamada pública"),
    (16, "Concorrência - Eletrônica Internacional"),
    (17, "Concorrência - Presencial Internacional"),
    (18, "Pregão - Eletrônico Internacional"),
    (19, "Pregão - Presencial Internacional"),
]
MODALIDADE_NOME = dict(_MODALIDADE_NAMES)
_MODALIDADE_DESCR = {8: "Dispensa de Licitação"}

MODALIDADES: list[dict[str, Any]] = [
    {
        "id": mid,
        "nome": nome,
        "descricao": _MODALIDADE_DESCR.get(mid, nome),
        "dataInclusao": "2021-07-27T00:00:00"
        if mid <= 13
        else ("2025-01-06T10:12:41" if mid == 14 else "2025-11-18T16:40:03"),
        "dataAtualizacao": "2021-07-27T00:00:00"
        if mid <= 13
        else ("2025-01-06T10:12:41" if mid == 14 else "2025-11-18T16:40:03"),
        "statusAtivo": True,
    }
    for mid, nome in _MODALIDADE_NAMES
]

# One day's volume per modalidade (BALIZA-T 2025-07-10); 2, 3, 14–19 never generated.
_MOD_WEIGHTS = {6: 1802, 8: 3030, 9: 1244, 4: 223, 12: 105, 7: 63, 5: 17, 1: 8, 11: 5, 10: 1, 13: 1}
_MOD_IDS = list(_MOD_WEIGHTS)
_MOD_CUM: list[int] = []
_acc = 0
for _w in _MOD_WEIGHTS.values():
    _acc += _w
    _MOD_CUM.append(_acc)
del _acc, _w

_MODO_DISPUTA = {
    1: "Aberto",
    2: "Fechado",
    3: "Aberto-Fechado",
    4: "Dispensa Com Disputa",
    5: "Não se aplica",
    6: "Fechado-Aberto",
}
_INSTRUMENTO = {1: "Edital", 2: "Aviso de Contratação Direta", 3: "Ato que autoriza a Contratação Direta"}
_SITUACAO = {1: "Divulgada no PNCP", 2: "Revogada", 3: "Anulada", 4: "Suspensa"}

_AMPARO = {
    "pregao": [
        (
            1,
            "Lei 14.133/2021, Art. 28, I",
            "Pregão: modalidade de licitação obrigatória para aquisição de bens e serviços comuns, cujo critério de julgamento poderá ser o de menor preço ou o de maior desconto",
        )
    ],
    "concorrencia": [
        (
            2,
            "Lei 14.133/2021, Art. 28, II",
            "Concorrência: modalidade de licitação para contratação de bens e serviços especiais e de obras e serviços comuns e especiais de engenharia",
        )
    ],
    "leilao": [
        (
            4,
            "Lei 14.133/2021, Art. 28, IV",
            "Leilão: modalidade de licitação para alienação de bens imóveis ou de bens móveis inservíveis ou legalmente apreendidos a quem oferecer o maior lance",
        )
    ],
    "dispensa": [
        (
            18,
            "Lei 14.133/2021, Art. 75, I",
            "Dispensa de Licitação: para contratação que envolva valores inferiores a R$ 100.000,00 (cem mil reais), no caso de obras e serviços de engenharia ou de serviços de manutenção de veículos automotores",
        ),
        (
            19,
            "Lei 14.133/2021, Art. 75, II",
            "Dispensa de Licitação: para contratação que envolva valores inferiores a R$ 50.000,00 (cinquenta mil reais), no caso de outros serviços e compras",
        ),
        (
            24,
            "Lei 14.133/2021, Art. 75, VIII",
            "Dispensa de Licitação: nos casos de emergência ou de calamidade pública",
        ),
    ],
    "inexigibilidade": [
        (
            6,
            "Lei 14.133/2021, Art. 74, I",
            "Inexigibilidade: aquisição de materiais, de equipamentos ou de gêneros ou contratação de serviços que só possam ser fornecidos por produtor, empresa ou representante comercial exclusivos",
        ),
        (
            7,
            "Lei 14.133/2021, Art. 74, II",
            "Inexigibilidade: contratação de profissional do setor artístico, diretamente ou por meio de empresário exclusivo",
        ),
        (
            10,
            "Lei 14.133/2021, Art. 74, III, c",
            "Inexigibilidade: contratação de serviços técnicos especializados de natureza predominantemente intelectual - assessorias ou consultorias técnicas e auditorias financeiras ou tributárias",
        ),
    ],
    "credenciamento": [(50, "Lei 14.133/2021, Art. 79, I", "Credenciamento: contratação paralela e não excludente")],
    "manifestacao": [(51, "Lei 14.133/2021, Art. 81", "Procedimento de manifestação de interesse")],
    "prequalificacao": [(52, "Lei 14.133/2021, Art. 80, I", "Pré-qualificação de licitantes")],
}
_MOD_AMPARO = {
    1: "leilao",
    13: "leilao",
    4: "concorrencia",
    5: "concorrencia",
    6: "pregao",
    7: "pregao",
    8: "dispensa",
    9: "inexigibilidade",
    10: "manifestacao",
    11: "prequalificacao",
    12: "credenciamento",
}

_OBJETOS = [
    "Aquisição de {m} para atender às necessidades da {s}",
    "Contratação de empresa especializada para {v}",
    "Registro de preços para futura e eventual aquisição de {m}",
    "AQUISIÇÃO DE {M} PARA A {S}",
    "Contratação de serviços de {v}, conforme termo de referência",
    "Credenciamento de pessoas jurídicas para {v}",
    "Prestação de serviços de {v} — lote único",
]
_MATERIAIS = [
    "material de expediente",
    "gêneros alimentícios",
    "medicamentos",
    "material hospitalar",
    "combustível (gasolina comum e óleo diesel S10)",
    "equipamentos de informática",
    "mobiliário escolar",
    "material de limpeza e higiene",
    "pneus e câmaras de ar",
    "uniformes escolares",
    "kits de merenda",
    "ar-condicionado split 12.000 BTUs",
    "material elétrico",
    "material de construção",
]
_SERVICOS = [
    "manutenção preventiva e corretiva de veículos",
    "limpeza e conservação predial",
    "transporte escolar",
    "locação de máquinas pesadas",
    "assessoria contábil",
    "show artístico na festa do município",
    "exames laboratoriais",
    "coleta de resíduos sólidos",
    "vigilância patrimonial",
    "reforma de unidade básica de saúde",
    "conserto e manutenção dos ar-condicionados",
    "fornecimento de refeições",
]
_SETORES = [
    "Secretaria Municipal de Saúde",
    "Secretaria de Educação",
    "Câmara Municipal",
    "Secretaria de Obras",
    "Assistência Social",
    "administração",
]
_USUARIOS = [
    ("AZ INFORMATICA LTDA", None),
    ("BLL Compras", "https://bllcompras.com/Process/ProcessView?param1={n}"),
    ("SH3 Informática Ltda.", None),
    ("Grupo Assessor", None),
    ("Licitar Digital - Plataforma de Licitações Online", "https://www.licitardigital.com.br/processos/{n}"),
    ("Megasoft Informática", None),
    ("E & L PRODUCOES DE SOFTWARE LTDA", None),
    (
        "Compras.gov.br",
        "https://cnetmobile.estaleiro.serpro.gov.br/comprasnet-web/public/compras/acompanhamento-compra?compra={n}",
    ),
    ("Portal de Compras Públicas", "https://www.portaldecompraspublicas.com.br/processos/{n}"),
    ("IPM Sistemas", None),
]

# (municipio, uf, ibge) — real names/codes
_MUNICIPIOS = [
    ("São Paulo", "SP", 3550308),
    ("Rio de Janeiro", "RJ", 3304557),
    ("Belo Horizonte", "MG", 3106200),
    ("Curitiba", "PR", 4106902),
    ("Porto Alegre", "RS", 4314902),
    ("Salvador", "BA", 2927408),
    ("Fortaleza", "CE", 2304400),
    ("Recife", "PE", 2611606),
    ("Manaus", "AM", 1302603),
    ("Belém", "PA", 1501402),
    ("Goiânia", "GO", 5208707),
    ("Brasília", "DF", 5300108),
    ("Florianópolis", "SC", 4205407),
    ("Campinas", "SP", 3509502),
    ("Natal", "RN", 2408102),
    ("Teresina", "PI", 2211001),
    ("João Pessoa", "PB", 2507507),
    ("Maceió", "AL", 2704302),
    ("Aracaju", "SE", 2800308),
    ("São Luís", "MA", 2111300),
    ("Cuiabá", "MT", 5103403),
    ("Campo Grande", "MS", 5002704),
    ("Vitória", "ES", 3205309),
    ("Porto Velho", "RO", 1100205),
    ("Rio Branco", "AC", 1200401),
    ("Macapá", "AP", 1600303),
    ("Boa Vista", "RR", 1400100),
    ("Palmas", "TO", 1721000),
    ("Amaporã", "PR", 4100905),
    ("Jataizinho", "PR", 4112702),
    ("Nazareno", "MG", 3144508),
    ("Salto de Pirapora", "SP", 3545308),
    ("São José do Rio Preto", "SP", 3549805),
    ("São Bernardo do Campo", "SP", 3548708),
    ("Vargem Alta", "ES", 3205036),
    ("Ivinhema", "MS", 5004700),
    ("Aragarças", "GO", 5201702),
    ("Itaguaí", "RJ", 3302007),
    ("Londrina", "PR", 4113700),
    ("Uberlândia", "MG", 3170206),
    ("Joinville", "SC", 4209102),
    ("Caxias do Sul", "RS", 4305108),
    ("Feira de Santana", "BA", 2910800),
    ("Juiz de Fora", "MG", 3136702),
    ("Sobral", "CE", 2312908),
    ("Petrolina", "PE", 2611101),
    ("Santarém", "PA", 1506807),
    ("Anápolis", "GO", 5201108),
]
_UF_NOME = {
    "SP": "São Paulo",
    "RJ": "Rio de Janeiro",
    "MG": "Minas Gerais",
    "PR": "Paraná",
    "RS": "Rio Grande do Sul",
    "BA": "Bahia",
    "CE": "Ceará",
    "PE": "Pernambuco",
    "AM": "Amazonas",
    "PA": "Pará",
    "GO": "Goiás",
    "DF": "Distrito Federal",
    "SC": "Santa Catarina",
    "RN": "Rio Grande do Norte",
    "PI": "Piauí",
    "PB": "Paraíba",
    "AL": "Alagoas",
    "SE": "Sergipe",
    "MA": "Maranhão",
    "MT": "Mato Grosso",
    "MS": "Mato Grosso do Sul",
    "ES": "Espírito Santo",
    "RO": "Rondônia",
    "AC": "Acre",
    "AP": "Amapá",
    "RR": "Roraima",
    "TO": "Tocantins",
}
_FEDERAIS = [
    "MINISTERIO DA ECONOMIA",
    "MINISTERIO DA SAUDE",
    "UNIVERSIDADE FEDERAL DE {X}",
    "INSTITUTO FEDERAL DE EDUCACAO, CIENCIA E TECNOLOGIA - {UF}",
    "COMANDO DO EXERCITO",
    "INSTITUTO NACIONAL DO SEGURO SOCIAL",
]
_ESTADUAIS = [
    "SECRETARIA DE ESTADO DA SAUDE - {UF}",
    "POLICIA MILITAR DO ESTADO - {UF}",
    "SECRETARIA DE ESTADO DE EDUCACAO - {UF}",
    "DEPARTAMENTO DE ESTRADAS DE RODAGEM - {UF}",
]

_ITEM_SITUACAO = {1: "Em Andamento", 2: "Homologado", 3: "Anulado/Revogado/Cancelado", 4: "Deserto", 5: "Fracassado"}
_TIPO_BENEFICIO = {
    1: "Participação exclusiva para ME/EPP",
    2: "Subcontratação para ME/EPP",
    3: "Cota reservada para ME/EPP",
    4: "Sem benefício",
    5: "Não se aplica",
}
_CRITERIO = {1: "Menor preço", 2: "Maior desconto", 4: "Técnica e preço", 5: "Maior lance", 7: "Não se aplica"}
_ITEM_CATEGORIA = {1: "Bens imóveis", 2: "Bens móveis", 3: "Não se aplica"}
_UNIDADES_MEDIDA = [
    "Unidade",
    "UNIDADE",
    "UNIDADE 1.0 MILILITRO ",
    "Caixa",
    "CX ",
    "Kg",
    "Litro",
    "LITRO ",
    "Pacote",
    "Serviço",
    "Mês",
    "Metro quadrado",
    "FRASCO 500.0 ML ",
]
_ITEM_DESCR = [
    "DIETA, NORMOCALORICA, ENRIQUECIDA COM TAURINA, CARNITINA, ISENTA DE SACAROSE E GLUTEN, ENTERAL SISTEMA FECHADO",
    "PAPEL A4, 75 G/M2, BRANCO, PACOTE COM 500 FOLHAS",
    "CANETA ESFEROGRÁFICA AZUL",
    "ARROZ TIPO 1, PACOTE 5 KG",
    "DIPIRONA SÓDICA 500 MG/ML, SOLUÇÃO INJETÁVEL",
    "GASOLINA COMUM",
    "ÓLEO DIESEL S10",
    "MICROCOMPUTADOR DESKTOP, 16 GB RAM",
    "CADEIRA GIRATÓRIA COM BRAÇOS",
    "DETERGENTE LÍQUIDO NEUTRO 500 ML",
    "LUVA DE PROCEDIMENTO, LÁTEX, TAMANHO M",
    "Serviço de manutenção preventiva de veículo leve",
    "Locação de retroescavadeira com operador (hora)",
    "Pneu 175/70 R14",
]
_TIPO_DOC = {
    1: "Aviso de Contratação Direta",
    2: "Edital",
    3: "Minuta do Contrato",
    4: "Termo de Referência",
    7: "Estudo Técnico Preliminar",
    16: "Outros Documentos",
}
_DOC_TITULOS = {
    1: "AVISO DE DISPENSA.pdf",
    2: "EDITAL.pdf",
    3: "MINUTA DO CONTRATO.pdf",
    4: "TERMO DE REFERENCIA.pdf",
    7: "ETP.pdf",
    16: "TERMO DE HOMOLOGACAO.pdf",
}
_FONTES = [
    (1, "Recursos da União", "Recursos próprios da União"),
    (2, "Recursos do Estado", "Recursos próprios do Estado"),
    (3, "Recursos do Município", "Recursos próprios do Município"),
    (4, "Recursos de Operação de Crédito", "Operação de crédito"),
]


def _cnpj_with_dv(base12: str) -> str:
    def dv(digits: str, weights: list[int]) -> str:
        s = sum(int(d) * w for d, w in zip(digits, weights, strict=False))
        r = s % 11
        return "0" if r < 2 else str(11 - r)

    d1 = dv(base12, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    d2 = dv(base12 + d1, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2])
    return base12 + d1 + d2


@dataclass(slots=True)
class _Orgao:
    cnpj: str
    razao: str
    poder: str
    esfera: str
    unidades: list[dict[str, Any]]
    usuario: int


def _build_pool(seed: int) -> list[_Orgao]:
    r = random.Random(f"{seed}|orgaos")
    pool: list[_Orgao] = []
    seen: set[str] = set()
    while len(pool) < POOL_SIZE:
        base = f"{r.randrange(10**8):08d}" + r.choice(["0001", "0001", "0001", "0002", "0005"])
        cnpj = _cnpj_with_dv(base)
        if cnpj in seen:
            continue
        seen.add(cnpj)
        kind = r.choices(
            ["mun", "camara", "fundo", "consorcio", "estadual", "judiciario", "federal"], [55, 12, 10, 3, 10, 3, 7]
        )[0]
        mun, uf, ibge = r.choice(_MUNICIPIOS)
        if kind == "mun":
            razao, poder, esfera = f"MUNICIPIO DE {_ascii_upper(mun)}", r.choice(["N", "N", "E"]), "M"
            nomes = [
                f"PREFEITURA MUNICIPAL DE {_ascii_upper(mun)}",
                f"Prefeitura Municipal de {mun} - {uf}",
                f"Secretaria Municipal de Saúde de {mun}",
            ]
        elif kind == "camara":
            razao, poder, esfera = f"CAMARA MUNICIPAL DE {_ascii_upper(mun)}", "L", "M"
            nomes = [razao]
        elif kind == "fundo":
            razao, poder, esfera = f"FUNDO MUNICIPAL DE SAUDE DE {_ascii_upper(mun)}", "E", "M"
            nomes = [f"Fundo Municipal de Saúde de {mun}"]
        elif kind == "consorcio":
            razao, poder, esfera = f"CONSORCIO INTERMUNICIPAL DE SAUDE DA REGIAO DE {_ascii_upper(mun)}", "N", "N"
            nomes = [f"Consórcio Intermunicipal de Saúde - {mun}"]
        elif kind == "estadual":
            razao, poder, esfera = r.choice(_ESTADUAIS).format(UF=uf), "E", "E"
            nomes = [f"{razao.title()} - Sede", f"Regional {mun}"]
        elif kind == "judiciario":
            razao, poder, esfera = f"TRIBUNAL DE JUSTICA DO ESTADO DE {_ascii_upper(_UF_NOME[uf])}", "J", "E"
            nomes = [f"Tribunal de Justiça - {uf}"]
        else:
            razao, poder, esfera = r.choice(_FEDERAIS).format(X=_ascii_upper(mun), UF=uf), "E", "F"
            nomes = [f"Superintendência Regional em {mun}", f"Unidade {mun}/{uf}", "Coordenação-Geral de Logística"]
        unidades = []
        for k in range(r.choice([1, 1, 1, 2, 3])):
            if esfera == "F" and k > 0:
                mun, uf, ibge = r.choice(_MUNICIPIOS)
            codigo = r.choice(
                [
                    str(k + 1),
                    f"{r.randrange(1, 999)}",
                    f"{r.randrange(100000, 999999)}",
                    f"{cnpj}-{k + 1:03d}",
                    f"{r.randrange(1, 99):05d}",
                ]
            )
            unidades.append(
                {
                    "ufNome": _UF_NOME[uf],
                    "codigoIbge": str(ibge),
                    "codigoUnidade": codigo,
                    "nomeUnidade": nomes[k % len(nomes)][:60],
                    "ufSigla": uf,
                    "municipioNome": mun,
                }
            )
        pool.append(_Orgao(cnpj, razao, poder, esfera, unidades, r.randrange(len(_USUARIOS))))
    return pool


def _money(r: random.Random, lo: float, hi: float) -> float:
    """Log-uniform amount with 0, 2 or 4 decimals (PNCP keeps up to 4)."""
    x = lo * (hi / lo) ** r.random()
    return float(round(x, r.choice((0, 2, 2, 2, 4))))


# --------------------------------------------------------------------------- the data set


@dataclass(slots=True)
class _Compra:
    id: str
    cnpj: str
    ano: int
    seq: int
    index: int
    frag: bytes  # the record as served now
    pub: str  # dataPublicacaoPncp
    modalidade: int
    n_itens: int
    n_arquivos: int
    inclusao: str
    atualizacao: str  # dataAtualizacao now
    glob: str = ""  # dataAtualizacaoGlobal now
    rev: int = 0  # bumped by every update round that changes it (keys the server's caches)
    versions: list[bytes] = field(default_factory=list)  # every frag served, oldest first (filled on update)
    itens_over: list[bytes] | None = None  # the itens once an update changed them
    arquivos_over: list[bytes] | None = None
    added_at: str | None = None  # server time (UTC) it was published, when added after the day was generated
    exotic: dict[str, str] = field(default_factory=dict)  # field -> exact JSON text served


@dataclass(slots=True)
class _Day:
    date: dt.date
    compras: list[_Compra] = field(default_factory=list)  # sorted by (pub, id)
    by_mod: dict[int, list[_Compra]] = field(default_factory=dict)  # in listing order
    generated: int = 0  # next index to generate
    lead: list[_Compra] = field(default_factory=list)  # grown with order "front": listed first, newest first
    shuffle_round: int = 0  # > 0: the listing order is a permutation, re-drawn at every growth

    def reindex(self, seed: int = 0) -> None:
        self.compras.sort(key=lambda c: (c.pub, c.id))
        lead = {c.id for c in self.lead}
        order = list(reversed(self.lead)) + [c for c in self.compras if c.id not in lead]
        if self.shuffle_round:
            random.Random(f"{seed}|{self.date.isoformat()}|shuffle|{self.shuffle_round}").shuffle(order)
        by_mod: dict[int, list[_Compra]] = {}
        for c in order:
            by_mod.setdefault(c.modalidade, []).append(c)
        self.by_mod = by_mod


GrowOrder = Literal["end", "front", "shuffle"]


@dataclass(slots=True)
class _Head:
    r: random.Random  # positioned after the draws below
    d: dt.date
    index: int
    org: _Orgao
    mod: int
    seq: int
    ano: int
    cid: str
    t: int
    pub: str
    upd_t: int
    atualizacao: str
    glob: str


class SimulatedPncp:
    """Deterministic PNCP data generator (days are generated lazily and cached).

    ``contratacoes(date)`` / ``itens(id)`` / ``arquivos(id)`` / ``truth(date)`` return fresh
    JSON-decoded copies of exactly what the HTTP endpoints serve.

    ``exotic`` (0..1) is the share of contratações (and, separately, of itens) carrying values
    from ``EXOTIC_VALUES``; with ``exotic > 0`` each day's first generated contratação has
    ``valorTotalEstimado = 1234567890123.4567``. ``update()`` changes records over time.
    """

    def __init__(self, seed: int, per_day: int = 200, big_items: bool = True, exotic: float = 0.0) -> None:
        if not 0 <= per_day <= MAX_PER_DAY:
            raise ValueError(f"per_day must be in 0..{MAX_PER_DAY}")
        if not 0.0 <= exotic <= 1.0:
            raise ValueError("exotic must be in 0..1")
        self.seed = int(seed)
        self.per_day = int(per_day)
        self.big_items = bool(big_items)
        self.exotic = float(exotic)
        self._pool = _build_pool(self.seed)
        self._days: dict[dt.date, _Day] = {}
        self._by_id: dict[str, _Compra] = {}
        self._gone: set[str] = set()
        self._itens_cache: dict[str, list[bytes]] = {}
        self._arquivos_cache: dict[str, list[bytes]] = {}
        self._item_exotic: dict[str, dict[int, dict[str, str]]] = {}
        self._perms: dict[dt.date, list[int]] = {}
        self._moved: dict[str, set[str]] = {}  # ISO date of the current dataAtualizacaoGlobal -> updated ids
        self._rounds: dict[dt.date, int] = {}  # update rounds applied per update day
        self._late: dict[dt.date, list[tuple[str, int]]] = {}  # see _late_heads
        self.homologated: dict[str, str] = {}  # "id|numeroItem" -> ISO day homologate() homologated it
        self.version = 0  # bumped by grow() and update(): listings may change

    # ------------------------------------------------------------------ public Python API

    def contratacoes(self, date: dt.date | str) -> list[dict[str, Any]]:
        """All contratações published on ``date``, sorted by (dataPublicacaoPncp, id)."""
        return [json.loads(c.frag) for c in self.day(as_date(date)).compras]

    def itens(self, id: str) -> list[dict[str, Any]]:
        """Every item of compra ``id`` (ignores ``remove``; the endpoint answers 404 then)."""
        return [json.loads(f) for f in self.item_frags(self._need(id))]

    def arquivos(self, id: str) -> list[dict[str, Any]]:
        """Every arquivo of compra ``id`` (ignores ``remove``)."""
        return [json.loads(f) for f in self.arquivo_frags(self._need(id))]

    def truth(self, date: dt.date | str, *, details: bool = False, versions: bool = False) -> dict[str, Any]:
        truth: dict[str, Any] = json.loads(self.truth_bytes(as_date(date), details=details, versions=versions))
        return truth

    def truth_bytes(self, date: dt.date, *, details: bool = False, versions: bool = False) -> bytes:
        """The current state of the contratações published on ``date`` (see the README's simulator section)."""
        return self._truth_of(self.day(date).compras, details=details, versions=versions)

    def truth_atualizacao_bytes(self, date: dt.date, *, details: bool = False, versions: bool = False) -> bytes:
        """Like ``truth_bytes``, for the contratações whose current dataAtualizacaoGlobal is on ``date``."""
        compras = [c for mod in range(1, 20) for c in self.atualizacao_window(date, date, mod)]
        return self._truth_of(compras, details=details, versions=versions)

    def _truth_of(self, compras: list[_Compra], *, details: bool, versions: bool) -> bytes:
        parts = [b'{"contratacoes":[', b",".join(c.frag for c in compras), b"]"]
        if details:
            parts.append(b',"details":{')
            parts.append(
                b",".join(
                    dumps(c.id)
                    + b':{"itens":['
                    + b",".join(self.item_frags(c))
                    + b'],"arquivos":['
                    + b",".join(self.arquivo_frags(c))
                    + b'],"resultados":['
                    + b",".join(resultados_of(self, c))
                    + b"]}"
                    for c in compras
                )
            )
            parts.append(b"}")
        if versions:
            parts.append(b',"versions":{')
            parts.append(b",".join(dumps(c.id) + b":[" + b",".join(c.versions or [c.frag]) + b"]" for c in compras))
            parts.append(b"}")
        rest: dict[str, Any] = {
            "itens": {c.id: c.n_itens for c in compras},
            "arquivos": {c.id: c.n_arquivos for c in compras},
            "gone": sorted(c.id for c in compras if c.id in self._gone),
            "added": {c.id: c.added_at for c in compras if c.added_at is not None},
        }
        if self.exotic:
            rest["exotic"] = {
                "contratacoes": {c.id: c.exotic for c in compras if c.exotic},
                "itens": {c.id: ex for c in compras if (ex := self.item_exotic(c))},
            }
        return b"".join(parts) + b"," + dumps(rest)[1:]

    def grow(
        self, date: dt.date | str, n: int, *, order: GrowOrder = "end", modalidade: int | None = None
    ) -> list[str]:
        """Publish ``n`` more contratações on ``date`` (later times); returns their ids.

        ``order`` says where they are listed: "end" (by publication time, after every other),
        "front" (before every other, newest first) or "shuffle" (the day's whole listing order is
        re-drawn). ``modalidade`` forces theirs.
        """
        d = as_date(date)
        if n < 0:
            raise ValueError("n must be >= 0")
        day = self.day(d)
        if day.generated + n > MAX_PER_DAY:
            raise ValueError(f"at most {MAX_PER_DAY} contratações per day")
        new = [self._make(d, i, modalidade) for i in range(day.generated, day.generated + n)]
        day.generated += n
        now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        for c in new:
            c.added_at = now
            self._by_id[c.id] = c
        day.compras.extend(new)
        if order == "front":
            day.lead.extend(new)
        elif order == "shuffle":
            day.shuffle_round += 1
        day.reindex(self.seed)
        self.version += 1
        return [c.id for c in new]

    def resultados(self, id: str, numero_item: int) -> list[dict[str, Any]] | None:
        """What the item's ``/resultados`` serves (``[]``: no result; None: no such item)."""
        frags = resultado_frags(self, self._need(id), numero_item)
        return None if frags is None else [json.loads(f) for f in frags]

    def homologate(
        self,
        date: dt.date | str,
        first: dt.date | str,
        last: dt.date | str | None = None,
        share: float = 0.5,
        listed: float = 0.5,
    ) -> list[dict[str, Any]]:
        """On day ``date``, a homologation act for ``share`` of the contratações published in [first,
        last] with items in progress (it decides most of them); a changed contratação is listed at
        ``/atualizacao`` with chance ``listed``, else changes silently (see ``_homologation.homologate``)."""
        d0 = as_date(first)
        return homologate(self, as_date(date), d0, as_date(last) if last is not None else d0, share, listed)

    def move_global(self, c: _Compra, ts: str) -> None:
        """A new version of ``c`` whose ``dataAtualizacaoGlobal`` is ``ts``: listed at ``/atualizacao`` on its day."""
        rec = loads_exact(c.frag)
        if not c.versions:
            c.versions.append(c.frag)
        old = c.glob[:10]
        rec["dataAtualizacaoGlobal"] = c.glob = ts
        c.frag = dumps_exact(rec)
        c.versions.append(c.frag)
        c.rev += 1
        self._moved.get(old, set()).discard(c.id)
        self._moved.setdefault(ts[:10], set()).add(c.id)

    def touch(self, c: _Compra) -> None:
        """``c``'s details changed without a new version: caches keyed by ``rev`` drop, listings stay."""
        c.rev += 1
        self._moved.setdefault(c.glob[:10], set()).add(c.id)  # a changed rev is listed through _moved

    def remove(self, id: str) -> None:
        """Make the compra's itens/arquivos answer 404 (it stays in the listings)."""
        self._gone.add(self._need(id).id)

    def is_gone(self, id: str) -> bool:
        return id in self._gone

    # ------------------------------------------------------------------ used by the server

    def day(self, d: dt.date) -> _Day:
        day = self._days.get(d)
        if day is None:
            day = _Day(d)
            # an /atualizacao scan may have built some of the day's records already: keep those objects
            day.compras = [
                self._by_id.get(h.cid) or self._finish(h) for h in (self._head(d, i) for i in range(self.per_day))
            ]
            day.generated = self.per_day
            for c in day.compras:
                self._by_id[c.id] = c
            day.reindex(self.seed)
            self._days[d] = day
        return day

    def find(self, cnpj: str, ano: int, seq: int) -> _Compra | None:
        """Locate a compra by its detail-path triple, generating its day if needed."""
        cid = f"{cnpj}-1-{seq:06d}/{ano}"
        c = self._by_id.get(cid)
        if c is not None:
            return c
        raw = seq - 1
        year = ano
        if raw >= PREV_YEAR_OFFSET:
            raw -= PREV_YEAR_OFFSET
            year = ano + 1
        doy = raw // SEQ_BLOCK
        if not (1 <= doy <= 366 and 1990 <= year <= 2200 and len(cnpj) == 14):
            return None
        try:
            d = dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)
        except OverflowError:
            return None
        if d.year != year:
            return None
        self.day(d)
        return self._by_id.get(cid)

    def lookup(self, id: str) -> _Compra | None:
        c = self._by_id.get(id)
        if c is not None:
            return c
        try:
            head, ano = id.rsplit("/", 1)
            cnpj, one, seq = head.split("-")
            if one != "1":
                return None
            return self.find(cnpj, int(ano), int(seq))
        except ValueError:
            return None

    def window(self, d0: dt.date, d1: dt.date, modalidade: int) -> list[_Compra]:
        """``/publicacao``: the contratações published in [d0, d1], in listing order."""
        out: list[_Compra] = []
        d = d0
        one = dt.timedelta(days=1)
        while d <= d1:
            out.extend(self.day(d).by_mod.get(modalidade, ()))
            d += one
        return out

    def atualizacao_window(self, d0: dt.date, d1: dt.date, modalidade: int) -> list[_Compra]:
        """``/atualizacao``: the contratações whose *current* dataAtualizacaoGlobal is in [d0, d1].

        Sorted by (dataAtualizacaoGlobal, id). Generates the publication days that can hold a
        never-updated record with such a date (up to ``MAX_GLOBAL_LAG_DAYS`` before ``d0``).
        """
        lo, hi = d0.isoformat(), d1.isoformat()
        seen: set[str] = set()
        out: list[_Compra] = []
        d = d0 - dt.timedelta(days=MAX_GLOBAL_LAG_DAYS)
        one = dt.timedelta(days=1)
        while d <= d1:
            if d >= d0 or d in self._days:
                candidates: list[_Compra] = list(self.day(d).by_mod.get(modalidade, ()))
            else:  # a day before the window, never generated: build only its records that land in the window
                candidates = [self._stray(d, i) for glob, i in self._late_heads(d) if lo <= glob[:10] <= hi]
            for c in candidates:
                if c.modalidade == modalidade and not c.rev and lo <= c.glob[:10] <= hi:
                    out.append(c)
                    seen.add(c.id)
            d += one
        for iso, ids in self._moved.items():
            if lo <= iso <= hi:
                for cid in ids:
                    c = self._by_id[cid]
                    if c.modalidade == modalidade and cid not in seen:
                        out.append(c)
        out.sort(key=lambda c: (c.glob, c.id))
        return out

    def _late_heads(self, d: dt.date) -> list[tuple[str, int]]:
        """(dataAtualizacaoGlobal, index) of the base records of ``d`` updated on a later day."""
        late = self._late.get(d)
        if late is None:
            iso = d.isoformat()
            heads = (self._head(d, i) for i in range(self.per_day))
            late = self._late[d] = [(h.glob, h.index) for h in heads if h.glob[:10] > iso]
        return late

    def _stray(self, d: dt.date, index: int) -> _Compra:
        """One base record of a day not generated yet, registered so that the day reuses it."""
        h = self._head(d, index)
        c = self._by_id.get(h.cid)
        if c is None:
            c = self._by_id[h.cid] = self._finish(h)
        return c

    def item_frags(self, c: _Compra) -> list[bytes]:
        if c.itens_over is not None:
            return c.itens_over
        frags = self._itens_cache.get(c.id)
        if frags is None:
            frags = self._make_itens(c)
            self._itens_cache[c.id] = frags
        return frags

    def arquivo_frags(self, c: _Compra) -> list[bytes]:
        if c.arquivos_over is not None:
            return c.arquivos_over
        frags = self._arquivos_cache.get(c.id)
        if frags is None:
            frags = self._make_arquivos(c)
            self._arquivos_cache[c.id] = frags
        return frags

    def item_exotic(self, c: _Compra) -> dict[int, dict[str, str]]:
        """numeroItem -> {field: exact JSON text} for the exotic values among the compra's itens."""
        if not self.exotic:
            return {}
        self.item_frags(c)
        return self._item_exotic.get(c.id, {})

    # ------------------------------------------------------------------ records that change

    def update(
        self, date: dt.date | str, first: dt.date | str, last: dt.date | str | None = None, share: float = 0.3
    ) -> list[dict[str, Any]]:
        """Apply one round of updates on update day ``date`` to ``share`` of the contratações
        published in [first, last] (``last`` defaults to ``first``); returns what changed.

        Each chosen record gets one to three of: a new situação (``situacaoCompraId``/``Nome``),
        a new ``valorTotalHomologado`` (both move ``dataAtualizacao``), an item whose
        ``situacaoCompraItem`` changes, an added arquivo, an added item; ``dataAtualizacaoGlobal``
        moves to a time on ``date`` later than its current value. A record whose
        ``dataAtualizacaoGlobal`` is already past ``date``, or that was removed, is left alone.
        """
        u = as_date(date)
        d0 = as_date(first)
        d1 = as_date(last) if last is not None else d0
        if d0 > d1 or d1 > u:
            raise ValueError("need first <= last <= date: records change after they are published")
        if not 0.0 <= share <= 1.0:
            raise ValueError("share must be in 0..1")
        self._rounds[u] = rnd = self._rounds.get(u, 0) + 1
        out: list[dict[str, Any]] = []
        d = d0
        while d <= d1:
            for c in list(self.day(d).compras):
                r = random.Random(f"{self.seed}|update|{u.isoformat()}|{rnd}|{c.id}")
                if r.random() < share and c.id not in self._gone:
                    change = self._update_one(c, u, r)
                    if change is not None:
                        out.append(change)
            d += dt.timedelta(days=1)
        self.version += 1
        return out

    def _update_one(self, c: _Compra, u: dt.date, r: random.Random) -> dict[str, Any] | None:
        ts = update_time(u, c.glob, r)
        if ts is None:
            return None
        kinds = ["situacao", "homologado", "item_situacao", "arquivo", "item"]
        if c.n_itens == 0:
            kinds.remove("item_situacao")
        changes = sorted(r.sample(kinds, r.choice((1, 1, 2, 3))), key=kinds.index)
        rec = loads_exact(c.frag)
        if not c.versions:
            c.versions.append(c.frag)
        for kind in changes:
            if kind == "situacao":
                sit = r.choice([k for k in _SITUACAO if k != rec["situacaoCompraId"]])
                rec["situacaoCompraId"], rec["situacaoCompraNome"] = sit, _SITUACAO[sit]
            elif kind == "homologado":
                rec["valorTotalHomologado"] = Raw(f"{_money(r, 500.0, 5_000_000.0):.2f}")
                c.exotic.pop("valorTotalHomologado", None)
            elif kind == "item_situacao":
                itens = c.itens_over = list(self.item_frags(c))
                k = r.randrange(len(itens))
                item = loads_exact(itens[k])
                sit = r.choice([s for s in _ITEM_SITUACAO if s != item["situacaoCompraItem"]])
                item["situacaoCompraItem"], item["situacaoCompraItemNome"] = sit, _ITEM_SITUACAO[sit]
                item["temResultado"], item["dataAtualizacao"] = sit == 2, ts
                itens[k] = dumps_exact(item)
            elif kind == "arquivo":
                arquivos = c.arquivos_over = list(self.arquivo_frags(c))
                arquivos.append(dumps(self._arquivo(r, c, len(arquivos) + 1, ts)))
                c.n_arquivos = len(arquivos)
            else:
                itens = c.itens_over = list(self.item_frags(c))
                item = self._item(r, c, len(itens) + 1, r.random())
                item["dataInclusao"] = item["dataAtualizacao"] = ts
                itens.append(dumps(item))
                c.n_itens = len(itens)
        if {"situacao", "homologado"} & set(changes):
            rec["dataAtualizacao"] = c.atualizacao = ts
        old = c.glob[:10]
        rec["dataAtualizacaoGlobal"] = c.glob = ts
        c.frag = dumps_exact(rec)
        c.versions.append(c.frag)
        c.rev += 1
        self._moved.get(old, set()).discard(c.id)
        self._moved.setdefault(ts[:10], set()).add(c.id)
        return {"id": c.id, "changes": changes, "dataAtualizacaoGlobal": ts}

    # ------------------------------------------------------------------ generation

    def _need(self, id: str) -> _Compra:
        c = self.lookup(id)
        if c is None:
            raise KeyError(id)
        return c

    def _perm(self, d: dt.date) -> list[int]:
        perm = list(range(POOL_SIZE))
        random.Random(f"{self.seed}|{d.isoformat()}|perm").shuffle(perm)
        return perm

    def _make(self, d: dt.date, index: int, modalidade: int | None = None) -> _Compra:
        return self._finish(self._head(d, index, modalidade))

    def _head(self, d: dt.date, index: int, modalidade: int | None = None) -> _Head:
        """The first draws of a record: enough to know its id and dates, at a fraction of its cost."""
        r = random.Random(f"{self.seed}|{d.isoformat()}|{index}")
        perm = self._perm_cache(d)
        org = self._pool[perm[index % POOL_SIZE]]
        u = r.random() * _MOD_CUM[-1]
        mod = _MOD_IDS[next(i for i, c in enumerate(_MOD_CUM) if u < c)]
        if modalidade in _MOD_WEIGHTS:
            mod = modalidade
        doy = d.timetuple().tm_yday
        seq = 1 + doy * SEQ_BLOCK + index // POOL_SIZE
        ano = d.year
        if r.random() < 0.03:
            ano -= 1
            seq += PREV_YEAR_OFFSET
        cid = f"{org.cnpj}-1-{seq:06d}/{ano}"

        if index < self.per_day:
            t = 6 * 3600 + int((index + r.random()) * (14 * 3600) / max(self.per_day, 1))
        else:  # grown: after every base record, in growth order
            t = min(20 * 3600 + (index - self.per_day + 1) * 2, 86399)
        pub = _ts(d, t)
        upd_t = t if r.random() < 0.7 else t + r.randrange(60, 3600)
        atualizacao = _ts(d, upd_t)
        glob = (
            atualizacao
            if r.random() < 0.4
            else (
                _ts(d, upd_t + r.randrange(5, 120))
                if r.random() < 0.7
                else _ts(d + dt.timedelta(days=r.randrange(1, MAX_GLOBAL_LAG_DAYS)), r.randrange(28800, 64800))
            )
        )
        return _Head(r, d, index, org, mod, seq, ano, cid, t, pub, upd_t, atualizacao, glob)

    def _finish(self, h: _Head) -> _Compra:
        r, d, index, org, mod, seq, ano, cid = h.r, h.d, h.index, h.org, h.mod, h.seq, h.ano, h.cid
        pub, atualizacao, glob = h.pub, h.atualizacao, h.glob
        unidade = dict(r.choice(org.unidades))
        if r.random() < 0.15:
            unidade["codigoIbge"] = int(unidade["codigoIbge"])  # documented drift: number
        amparo = r.choice(_AMPARO[_MOD_AMPARO[mod]])

        if mod in (8,):
            modo = 4 if r.random() < 0.15 else 5
            instr = 2 if modo == 4 else 3
        elif mod in (9, 10, 11, 12):
            modo, instr = 5, 3 if mod == 9 else 1
        elif mod in (1, 13):
            modo, instr = 1, 1
        elif mod in (5, 7):
            modo, instr = r.choice((1, 1, 5)), 1
        else:
            modo, instr = r.choices((1, 3, 6, 2), (70, 12, 12, 6))[0], 1
        if modo in (5,) and instr == 3:
            abertura = encerramento = None
        else:
            a_day = d + dt.timedelta(days=r.randrange(0, 10))
            abertura = _ts(a_day, r.choice((8, 9, 10, 14)) * 3600)
            encerramento = _ts(
                a_day + dt.timedelta(days=r.randrange(5, 30)),
                r.choice((8 * 3600 + 59 * 60, 9 * 3600 + 30 * 60, 10 * 3600)),
            )

        if mod in (1, 13):
            template = (
                "Alienação de bens móveis inservíveis ({m})"
                if r.random() < 0.7
                else "Leilão Público de VEÍCULOS INSERVÍVEIS, SUCATAS E {M}"
            )
        else:
            template = r.choice(_OBJETOS)
        mat, srv, setor = r.choice(_MATERIAIS), r.choice(_SERVICOS), r.choice(_SETORES)
        objeto = template.format(m=mat, M=mat.upper(), v=srv, s=setor, S=setor.upper())
        n = r.randrange(1, 999)
        if mod == 8 and r.random() < 0.3:
            numero = f"({n}) | {r.randrange(1, 99)}-0"
        else:
            numero = r.choice((f"{n:02d}", f"{n:03d}", f"{n:08d}", str(n), f"{n:06d}"))
        processo = r.choice(
            (
                f"{n:03d}/{ano}",
                f"{r.randrange(1, 9999)}",
                f"{r.randrange(1, 99999):05d}/{ano} - LE.{r.randrange(10, 99)}.{r.randrange(1, 999):03d}",
                f"{r.randrange(10**16, 10**17)}",
            )
        )
        estimado = 0.0 if (mod == 12 and r.random() < 0.5) else _money(r, 500.0, 5_000_000.0)
        homologado = (
            None
            if r.random() < 0.5
            else (
                round(estimado * r.uniform(0.6, 1.0), r.choice((0, 2, 4))) if estimado else _money(r, 500.0, 500_000.0)
            )
        )
        situacao = r.choices((1, 2, 3, 4), (90, 3, 3, 4))[0]
        usuario, link_tpl = _USUARIOS[org.usuario]
        ls = r.random()
        link = (
            (
                link_tpl.format(n=r.randrange(10**5, 10**7))
                if link_tpl
                else f"https://compras.{_ascii_upper(unidade['municipioNome']).lower().replace(' ', '')}.gov.br/processo/{n}"
            )
            if ls < 0.5
            else (None if ls < 0.9 else "")
        )
        info = r.random()
        fontes = []
        if r.random() < 0.2:
            for codigo, nome, descr in r.sample(_FONTES, r.choice((1, 1, 2))):
                fontes.append({"codigo": codigo, "nome": nome, "descricao": descr, "dataInclusao": pub})

        rec: dict[str, Any] = {
            "numeroControlePNCP": cid,
            "dataAtualizacaoGlobal": glob,
            "modalidadeId": mod,
            "srp": (r.random() < 0.3) if mod in (6, 7, 4) else (r.random() < 0.02),
            "orgaoEntidade": {"cnpj": org.cnpj, "razaoSocial": org.razao, "poderId": org.poder, "esferaId": org.esfera},
            "anoCompra": ano,
            "sequencialCompra": seq,
            "dataInclusao": pub,
            "dataPublicacaoPncp": pub,
            "dataAtualizacao": atualizacao,
            "numeroCompra": numero,
            "unidadeOrgao": unidade,
            "amparoLegal": {"descricao": amparo[2], "nome": amparo[1], "codigo": amparo[0]},
            "dataAberturaProposta": abertura,
            "dataEncerramentoProposta": encerramento,
            "informacaoComplementar": None
            if info < 0.45
            else ("" if info < 0.7 else f"Informações adicionais no edital. Processo {processo}."),
            "processo": processo,
            "objetoCompra": objeto,
            "linkSistemaOrigem": link,
            "justificativaPresencial": (
                f"Modalidade presencial justificada: {setor} sem acesso a sistema eletrônico."
                if mod in (5, 7, 13)
                else (None if r.random() < 0.85 else "")
            ),
            "unidadeSubRogada": None,
            "orgaoSubRogado": None,
            "valorTotalHomologado": homologado,
            "modoDisputaId": modo,
            "linkProcessoEletronico": None if r.random() < 0.95 else "",
            "valorTotalEstimado": estimado,
            "modalidadeNome": MODALIDADE_NOME[mod],
            "modoDisputaNome": _MODO_DISPUTA[modo],
            "tipoInstrumentoConvocatorioCodigo": instr,
            "tipoInstrumentoConvocatorioNome": _INSTRUMENTO[instr],
            "fontesOrcamentarias": fontes,
            "situacaoCompraId": situacao,  # documented drift: int, spec says string enum
            "situacaoCompraNome": _SITUACAO[situacao],
            "usuarioNome": usuario,
        }
        if r.random() < 0.10:
            rec["emendaParlamentar"] = r.random() < 0.3
        if r.random() < 0.05:
            rec["campoNovoSimulado"] = r.choice(
                ({"versao": 2, "origem": "simulador"}, [1, 2, 3], "valor novo", 3.5, True, None)
            )

        if self.big_items and index < len(BIG_ITEM_COUNTS):
            n_itens = BIG_ITEM_COUNTS[index]
        elif r.random() < 0.05:
            n_itens = 0
        else:
            n_itens = int(r.triangular(1, 31, 2))
        n_arquivos = r.choices((0, 1, 2, 3, 4, 5), (15, 35, 25, 12, 8, 5))[0]
        exotic = self._exotic_fields(rec, f"{d.isoformat()}|{index}", ("valorTotalEstimado", "valorTotalHomologado"))
        if index == 0 and self.exotic:
            rec["valorTotalEstimado"] = Raw(EXACT_PROBE)
            exotic["valorTotalEstimado"] = EXACT_PROBE
        frag = dumps_exact(rec) if exotic else dumps(rec)
        c = _Compra(cid, org.cnpj, ano, seq, index, frag, pub, mod, n_itens, n_arquivos, pub, atualizacao, glob)
        c.exotic = exotic
        return c

    def _exotic_fields(self, rec: dict[str, Any], key: str, fields: tuple[str, ...]) -> dict[str, str]:
        """With probability ``exotic``, put EXOTIC_VALUES in one or two of ``fields``; returns field -> text."""
        if not self.exotic:
            return {}
        r = random.Random(f"{self.seed}|exotic|{key}")
        if r.random() >= self.exotic:
            return {}
        out: dict[str, str] = {}
        for name in r.sample(fields, min(len(fields), r.choice((1, 2)))):
            out[name] = text = r.choice(EXOTIC_VALUES)
            rec[name] = _exotic_value(text)
        return out

    def _perm_cache(self, d: dt.date) -> list[int]:
        p = self._perms.get(d)
        if p is None:
            p = self._perms[d] = self._perm(d)
        return p

    def _make_itens(self, c: _Compra) -> list[bytes]:
        r = random.Random(f"{self.seed}|itens|{c.id}")
        out = []
        servico_bias = r.random()
        exotic: dict[int, dict[str, str]] = {}
        for k in range(1, c.n_itens + 1):
            item = self._item(r, c, k, servico_bias)
            fields = ("quantidade", "valorUnitarioEstimado", "valorTotal")
            ex = self._exotic_fields(item, f"{c.id}|item|{k}", fields)
            if k == 1 and c.exotic and not ex:  # an exotic compra always has an exotic item too
                ex = {"quantidade": EXOTIC_VALUES[(len(c.id) + c.seq) % len(EXOTIC_VALUES)]}
                item["quantidade"] = _exotic_value(ex["quantidade"])
            if ex:
                exotic[k] = ex
            out.append(dumps_exact(item) if ex else dumps(item))
        if exotic:
            self._item_exotic[c.id] = exotic
        return out

    def _item(self, r: random.Random, c: _Compra, k: int, servico_bias: float) -> dict[str, Any]:
        """Item ``k`` of ``c``, drawing from ``r``."""
        is_serv = r.random() < servico_bias * 0.5
        qtd = (
            float(r.choice((1, 2, 5, 10, 12, 20, 50, 100, 250, 1000, 4638000)))
            if r.random() < 0.8
            else round(r.uniform(1, 5000), 2)
        )
        unit = round(r.uniform(0.01, 5000.0) if r.random() < 0.9 else r.uniform(0.0001, 1), r.choice((2, 2, 4)))
        sigiloso = r.random() < 0.03
        if sigiloso:
            unit = 0.0
        sit = r.choices((1, 2, 3, 4, 5), (45, 40, 5, 5, 5))[0]
        crit = r.choices((1, 2, 4, 5, 7), (80, 10, 3, 2, 5))[0]
        benef = r.choices((1, 2, 3, 4, 5), (35, 2, 5, 50, 8))[0]
        cat = r.choices((1, 2, 3), (2, 18, 80))[0]
        catalogo = None
        categoria = None
        if r.random() < 0.4:
            catalogo = {
                "id": 2,
                "nome": "Outros",
                "descricao": "Outros catálogos",
                "dataInclusao": "2023-09-28T00:00:00",
                "dataAtualizacao": "2023-09-28T00:00:00",
                "statusAtivo": True,
                "url": "",
            }
            categoria = {
                "id": 1 if not is_serv else 2,
                "nome": "Material" if not is_serv else "Serviço",
                "descricao": None,
                "dataInclusao": "2023-09-28T00:00:00",
                "dataAtualizacao": "2023-09-28T00:00:00",
                "statusAtivo": True,
            }
        margem = r.random() < 0.03
        item = {
            "numeroItem": k,
            "descricao": r.choice(_ITEM_DESCR) + ("" if r.random() < 0.7 else f" - ITEM {k}"),
            "materialOuServico": "S" if is_serv else "M",
            "materialOuServicoNome": "Serviço" if is_serv else "Material",
            "valorUnitarioEstimado": unit,
            "valorTotal": round(unit * qtd, 4),
            "quantidade": qtd,
            "unidadeMedida": "Serviço" if is_serv and r.random() < 0.5 else r.choice(_UNIDADES_MEDIDA),
            "orcamentoSigiloso": sigiloso,
            "itemCategoriaId": cat,
            "itemCategoriaNome": _ITEM_CATEGORIA[cat],
            "patrimonio": None,
            "codigoRegistroImobiliario": None,
            "criterioJulgamentoId": crit,
            "criterioJulgamentoNome": _CRITERIO[crit],
            "situacaoCompraItem": sit,  # drift: int on the wire
            "situacaoCompraItemNome": _ITEM_SITUACAO[sit],
            "tipoBeneficio": benef,  # drift: int on the wire
            "tipoBeneficioNome": _TIPO_BENEFICIO[benef],
            "incentivoProdutivoBasico": False,
            "dataInclusao": c.inclusao,
            "dataAtualizacao": c.atualizacao,
            "temResultado": sit == 2,
            "imagem": 0 if r.random() < 0.95 else r.randrange(1, 4),
            "aplicabilidadeMargemPreferenciaNormal": margem,
            "aplicabilidadeMargemPreferenciaAdicional": False,
            "percentualMargemPreferenciaNormal": 10.0 if margem else None,
            "percentualMargemPreferenciaAdicional": None,
            "ncmNbsCodigo": None if r.random() < 0.8 else f"{r.randrange(10**7, 10**8)}",
            "ncmNbsDescricao": None,
            "catalogo": catalogo,
            "categoriaItemCatalogo": categoria,
            "catalogoCodigoItem": None if catalogo is None else str(r.randrange(100000, 999999)),
            "informacaoComplementar": None if r.random() < 0.8 else "Conforme termo de referência.",
            "tipoMargemPreferencia": {"codigo": 1, "nome": "Normal"} if margem else None,
            "exigenciaConteudoNacional": False,
        }
        return item

    def _make_arquivos(self, c: _Compra) -> list[bytes]:
        r = random.Random(f"{self.seed}|arquivos|{c.id}")
        return [dumps(self._arquivo(r, c, k)) for k in range(1, c.n_arquivos + 1)]

    def _arquivo(self, r: random.Random, c: _Compra, k: int, published: str | None = None) -> dict[str, Any]:
        """Arquivo ``k`` of ``c``, drawing from ``r``; ``published`` overrides its dataPublicacaoPncp."""
        tipo = (1 if c.modalidade == 8 else 2) if k == 1 else r.choice((3, 4, 7, 16, 16))
        url = f"https://pncp.gov.br/pncp-api/v1/orgaos/{c.cnpj}/compras/{c.ano}/{c.seq}/arquivos/{k}"
        titulo = _DOC_TITULOS[tipo] if r.random() < 0.7 else f"{r.randrange(10**19, 10**20)}"
        ativo = r.random() >= 0.1
        base_t = dt.datetime.fromisoformat(c.inclusao)
        when = (base_t + dt.timedelta(seconds=k * r.randrange(1, 90))).strftime("%Y-%m-%dT%H:%M:%S")
        return {
            "uri": url,
            "url": url,
            "statusAtivo": ativo,
            "cnpj": c.cnpj,
            "anoCompra": c.ano,
            "sequencialCompra": c.seq,
            "dataPublicacaoPncp": published or when,
            "sequencialDocumento": k,
            "titulo": titulo,
            "tipoDocumentoNome": _TIPO_DOC[tipo],
            "tipoDocumentoId": tipo,
            "tipoDocumentoDescricao": _TIPO_DOC[tipo],
        }


def update_time(u: dt.date, current: str, r: random.Random) -> str | None:
    """A new version's timestamp on update day ``u``, later than the ``current`` one; None when the
    day has no second left after it. An early slot keeps room for later rounds on the same day."""
    start = max(dt.datetime(u.year, u.month, u.day), dt.datetime.fromisoformat(current) + dt.timedelta(seconds=1))
    end = dt.datetime(u.year, u.month, u.day, 23, 59, 59)
    if start > end:
        return None
    return (start + dt.timedelta(seconds=r.randrange(0, (end - start).seconds // 8 + 1))).strftime("%Y-%m-%dT%H:%M:%S")
