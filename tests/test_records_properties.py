"""Property tests of the record path: real-sample-shaped JSON with arbitrary values in every field
(huge and tiny numbers, many decimals, strings where numbers go, objects where strings go, nulls,
unknown keys, deep nesting, lone surrogates) always lands as a row that Parquet takes, and every
value the JSON carried is recoverable, exactly, from its column or from ``_extra`` (there, a number
as the very text it was sent as)."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from exactness import Number, assert_recoverable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pncp_ingest.records import Arquivo, Contratacao, Item, bronze_row, bronze_rows_json, loads
from pncp_ingest.records.schema import CONTRATACOES_SCHEMA, DETAILS_SCHEMA
from pncp_ingest.testing._data import EXOTIC_VALUES
from pncp_ingest.writer import write_part

DATA = Path(__file__).parent / "data"
PROPERTIES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def sample(name: str) -> Any:
    return json.loads((DATA / name).read_text(), parse_float=Decimal)


CONTRATACOES = [
    *sample("consulta_contratacoes_publicacao.json")["data"],
    *sample("consulta_contratacoes_publicacao_dispensa_reduced.json")["data"],
]
ITENS = sample("pncp_itens.json")
ARQUIVOS = sample("pncp_arquivos_compra.json")
# The samples hold fontesOrcamentarias as []: give the list elements a real shape to mutate.
FONTE = {"codigo": 1, "nome": "Tesouro", "descricao": "Recursos do Tesouro", "dataInclusao": "2024-07-01T08:17:01"}


class NumberText(str):
    """A JSON number written exactly as this text (``1e5``, ``-0.0``, 40 digits...)."""


def to_json(value: Any, ascii_only: bool) -> bytes:
    """JSON text with numbers exactly as given; a text with a lone surrogate is always \\u-escaped."""
    out: list[str] = []

    def write(v: Any) -> None:
        if isinstance(v, NumberText):
            out.append(str.__str__(v))
        elif isinstance(v, str):
            out.append(json.dumps(v, ensure_ascii=ascii_only or not _encodable(v)))
        elif isinstance(v, Decimal):
            out.append(str(v))
        elif isinstance(v, dict):
            out.append("{" + ",".join(_pair(k, x) for k, x in v.items()) + "}")
        elif isinstance(v, list):
            out.append("[" + ",".join(_one(x) for x in v) + "]")
        else:
            out.append(json.dumps(v))

    def _one(v: Any) -> str:
        start = len(out)
        write(v)
        text = "".join(out[start:])
        del out[start:]
        return text

    def _pair(k: str, v: Any) -> str:
        return json.dumps(k, ensure_ascii=ascii_only or not _encodable(k)) + ":" + _one(v)

    write(value)
    return "".join(out).encode("utf-8")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# -- values ------------------------------------------------------------------------------------

number_texts = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.sampled_from([str(2**63 - 1), str(2**63), str(-(2**63)), str(-(2**63) - 1), "0", "-0"]),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(
        [t for t in EXOTIC_VALUES if not t.startswith('"')]
        + ["4638000.0", "0.0951", "1.000000000000000000000000000000000000000000", "0E-1000000000", "0E+40", "1E+31"]
    ),
).map(NumberText)

date_texts = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S")),
    st.sampled_from(
        [
            "2024-07-01T08:17:01",
            "2024-07-01T11:17:01Z",
            "2024-07-01",
            "2024-13-01T00:00:00",
            "2024-02-30T10:00:00",
            "2024-07-01T08:17:01.1234567",
            "2024-07-01T08:17:01.123456",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-03:00",
            "01/07/2024",
            " 2024-07-01T08:17:01 ",
        ]
    ),
)

texts = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates included
    st.sampled_from(
        ["", " ", "S", "N", "true", "1", "01", "-7", " 7 ", "1_000", "0x10", "NaN", "Infinity", "1e400", '"1234.56"']
    ),
    st.sampled_from([json.loads(t) for t in EXOTIC_VALUES if t.startswith('"')]),
    date_texts,
)

scalars = st.one_of(st.none(), st.booleans(), number_texts, texts)
keys = st.text(st.characters(exclude_categories=()), min_size=1, max_size=10).filter(lambda k: "." not in k)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=8
)


def nest(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"n": value}
    return value


deep = st.builds(nest, scalars, st.integers(10, 150), st.booleans())
anything = st.one_of(scalars, json_values, deep)


@st.composite
def mutated(draw: st.DrawFn, record: dict[str, Any], keep: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``record`` with a share of its values (at any depth) replaced by anything, plus unknown keys."""
    rate = draw(st.sampled_from([0, 3, 10, 30]))  # percent; 0 keeps the record as PNCP sent it
    return _mutate(draw, record, rate, keep)


def _mutate(draw: st.DrawFn, record: dict[str, Any], rate: int, keep: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in keep:
            out[key] = value
        elif rate and draw(st.integers(0, 99)) < rate:
            out[key] = draw(anything)
        elif isinstance(value, dict):
            out[key] = _mutate(draw, value, rate, frozenset())
        elif key == "fontesOrcamentarias" and rate:
            shapes = draw(st.lists(st.booleans(), max_size=3))  # True: a fonte-shaped object
            out[key] = [_mutate(draw, FONTE, rate, frozenset()) if shaped else draw(anything) for shaped in shapes]
        else:
            out[key] = value
    if rate:
        for key in draw(st.lists(keys, max_size=2)):
            out.setdefault(key, draw(anything))
    return out


def contratacoes() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(CONTRATACOES).flatmap(lambda r: mutated(r, keep=frozenset({"numeroControlePNCP"})))


def element_lists(samples: list[dict[str, Any]]) -> st.SearchStrategy[list[Any]]:
    record = st.sampled_from(samples).flatmap(lambda r: mutated(r))
    return st.lists(st.one_of(record, record, record, anything), min_size=1, max_size=4)


# -- landing and reading back -------------------------------------------------------------------


def land(rows: list[dict[str, Any]], schema: pa.Schema) -> list[dict[str, Any]]:
    """Write ``rows`` as the pipeline stages them (``write_part``) and read them back from Parquet."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "part.parquet"
        assert write_part(rows, schema, path) == len(rows)
        back: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return back


def lineage(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "_ingested_at": None, "_run_id": "property"}


@PROPERTIES
@given(record=contratacoes(), ascii_only=st.booleans())
def test_any_contratacao_lands_and_every_value_is_in_its_column_or_in_extra(record, ascii_only):
    body = to_json(record, ascii_only)
    sent = json.loads(body, parse_float=Number)  # what the API sent, number texts verbatim
    row = bronze_row(Contratacao, loads(body))
    (back,) = land([lineage(row)], CONTRATACOES_SCHEMA)
    assert back["numeroControlePNCP"] == sent["numeroControlePNCP"]
    assert_recoverable(CONTRATACOES_SCHEMA, sent, back, Number)


def details_of(kind: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return lineage(
        {
            "numeroControlePNCP": "00000000000191-1-000001/2025",
            "itens": rows if kind == "itens" else [],
            "arquivos": rows if kind == "arquivos" else [],
            "metadata": {"total_itens": None, "total_arquivos": None, "fetch_timestamp": None},
        }
    )


@PROPERTIES
@given(records=element_lists(ITENS), ascii_only=st.booleans())
def test_any_itens_page_lands_and_every_value_is_in_its_column_or_in_extra(records, ascii_only):
    check_detail_page("itens", Item, records, ascii_only)


@PROPERTIES
@given(records=element_lists(ARQUIVOS), ascii_only=st.booleans())
def test_any_arquivos_page_lands_and_every_value_is_in_its_column_or_in_extra(records, ascii_only):
    check_detail_page("arquivos", Arquivo, records, ascii_only)


def check_detail_page(kind: str, model: Any, records: list[Any], ascii_only: bool) -> None:
    body = to_json(records, ascii_only)
    sent = json.loads(body, parse_float=Number)
    rows = bronze_rows_json(model, body)
    assert len(rows) == len(sent), "every element of the page is a row"
    (back,) = land([details_of(kind, rows)], DETAILS_SCHEMA)
    element = DETAILS_SCHEMA.field(kind).type.value_type
    for raw, landed in zip(sent, back[kind], strict=True):
        assert_recoverable(element, raw, landed, Number)
