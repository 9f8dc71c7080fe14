"""Records: real PNCP samples, the documented type drift, and nothing dropped."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from pncp_ingest.records import (
    DETAIL_KINDS,
    DETAIL_MODELS,
    Arquivo,
    Contratacao,
    Item,
    Resultado,
    bronze_row,
    bronze_rows_json,
    loads,
)
from pncp_ingest.records.schema import CONTRATACOES_SCHEMA, DETAILS, DETAILS_SCHEMA, model_fields

DATA = Path(__file__).parent / "data"


def sample_contratacoes() -> list[dict]:
    rows = json.loads((DATA / "consulta_contratacoes_publicacao.json").read_text())["data"]
    return rows + json.loads((DATA / "consulta_contratacoes_publicacao_dispensa_reduced.json").read_text())["data"]


def test_real_samples_become_typed_rows_with_nothing_left_over():
    for raw in sample_contratacoes():
        row = bronze_row(Contratacao, raw)
        assert row["numeroControlePNCP"] == raw["numeroControlePNCP"]
        assert row["orgaoEntidade"]["cnpj"] == raw["orgaoEntidade"]["cnpj"]
        assert row["_extra"] is None, f"a known field was not modelled: {row['_extra']}"
    rows = [
        bronze_row(Contratacao, r) | {"_ingested_at": datetime.now(UTC), "_run_id": "r"} for r in sample_contratacoes()
    ]
    table = pa.Table.from_pylist(rows, schema=CONTRATACOES_SCHEMA)
    assert table.num_rows == 13


def test_money_is_exact_and_times_are_brasilia_wall_time():
    raw = sample_contratacoes()[0]
    row = bronze_row(Contratacao, raw)
    assert row["valorTotalEstimado"] == Decimal("32101.0")
    assert row["dataPublicacaoPncp"] == datetime(2024, 7, 1, 8, 17, 1)
    # An offset, if PNCP ever sends one, is converted to Brasília wall time.
    row = bronze_row(Contratacao, {**raw, "dataInclusao": "2024-07-01T11:17:01Z"})
    assert row["dataInclusao"] == datetime(2024, 7, 1, 8, 17, 1)


def test_type_drift_is_absorbed():
    raw = sample_contratacoes()[0]
    drifted = {**raw, "situacaoCompraId": "1", "unidadeOrgao": {**raw["unidadeOrgao"], "codigoIbge": 4100905}}
    row = bronze_row(Contratacao, drifted)
    assert row["situacaoCompraId"] == 1
    assert row["unidadeOrgao"]["codigoIbge"] == "4100905"
    assert row["_extra"] is None


def test_unknown_fields_and_misfits_are_kept_in_extra():
    raw = sample_contratacoes()[0]
    drifted = {
        **raw,
        "campoNovo": {"a": [1, 2]},
        "modalidadeId": "not a number",
        "orgaoEntidade": {**raw["orgaoEntidade"], "novoSubcampo": True},
    }
    row = bronze_row(Contratacao, drifted)
    extra = json.loads(row["_extra"])
    assert extra == {"campoNovo": {"a": [1, 2]}, "modalidadeId": "not a number", "orgaoEntidade.novoSubcampo": True}
    assert row["modalidadeId"] is None


def test_a_record_without_its_identity_is_rejected():
    raw = dict(sample_contratacoes()[0])
    del raw["numeroControlePNCP"]
    with pytest.raises(ValueError, match="numeroControlePNCP"):
        bronze_row(Contratacao, raw)


def test_item_and_arquivo_samples():
    item = json.loads((DATA / "pncp_itens.json").read_text())[0]
    row = bronze_row(Item, item)
    assert row["valorUnitarioEstimado"] == Decimal("0.0951")
    assert row["situacaoCompraItem"] == 2
    assert row["unidadeMedida"] == "UNIDADE 1.0 MILILITRO "  # kept as sent, trailing space included
    assert row["_extra"] is None
    arquivo = json.loads((DATA / "pncp_arquivos_compra.json").read_text())[0]
    assert bronze_row(Arquivo, arquivo)["_extra"] is None


def test_the_real_resultado_sample_fits_every_column_exactly():
    raw = json.loads((DATA / "pncp_item_resultados.json").read_text(), parse_float=Decimal)[0]
    row = bronze_row(Resultado, raw)
    assert row["_extra"] is None  # every field the real API sends is a column
    assert row["valorUnitarioHomologado"] == Decimal("0.0545") and row["quantidadeHomologada"] == Decimal("4638000.0")
    assert row["dataResultado"] == date(2026, 4, 24) and row["dataCancelamento"] is None
    assert (row["numeroItem"], row["sequencialResultado"], row["ordemClassificacaoSrp"]) == (1, 1, 1)
    assert row["reservaRemanescente"] == {"codigo": "1", "nome": "Não se aplica"}


def test_details_columns_follow_the_detail_kinds_and_their_models():
    assert DETAIL_KINDS == ("itens", "arquivos", "resultados")
    assert {"itens": Item, "arquivos": Arquivo, "resultados": Resultado} == DETAIL_MODELS
    assert DETAILS_SCHEMA.names == [
        "numeroControlePNCP",
        "cnpj",
        "anoCompra",
        "sequencialCompra",
        "itens",
        "arquivos",
        "resultados",
        "metadata",
        "_ingested_at",
        "_run_id",
    ]
    for kind, model in DETAIL_MODELS.items():
        element = DETAILS_SCHEMA.field(kind).type.value_type
        assert [f.name for f in element] == [*model.model_fields, "_extra"]
        assert list(element)[:-1] == model_fields(model)
    metadata = DETAILS_SCHEMA.field("metadata").type
    assert [f.name for f in metadata] == ["total_itens", "total_arquivos", "total_resultados", "fetch_timestamp"]
    assert DETAILS.schema is DETAILS_SCHEMA and DETAILS.key == "numeroControlePNCP"


def test_a_row_fetched_with_only_one_kind_keeps_the_other_from_the_row_it_replaces():
    older = {"itens": [{"numeroItem": 1}], "arquivos": [], "metadata": {"total_itens": 1, "total_arquivos": 0}}
    newer = {"itens": None, "arquivos": [{"titulo": "Edital"}], "metadata": {"total_itens": None, "total_arquivos": 1}}
    assert DETAILS.combine is not None
    row = DETAILS.combine(older, newer)
    assert row["itens"] == [{"numeroItem": 1}] and row["arquivos"] == [{"titulo": "Edital"}]
    assert row["metadata"] == {"total_itens": 1, "total_arquivos": 1}


# -- exact numbers and what fits a column ------------------------------------------------------


def item_row(**fields: object) -> dict:
    """The row of one item sent as ``fields`` (values given as the JSON text they are sent as)."""
    body = "[{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}]"
    (row,) = bronze_rows_json(Item, body.encode())
    return row


def test_numbers_are_decoded_from_the_json_text_without_a_float():
    assert loads(b"1234567890123.4567") == Decimal("1234567890123.4567")
    assert loads(b"[0.1, 7]") == [Decimal("0.1"), 7]
    row = item_row(valorTotal="1234567890123.4567", quantidade="4638000.0")
    assert row["valorTotal"] == Decimal("1234567890123.4567") and row["_extra"] is None
    row = bronze_row(Contratacao, loads(b'{"numeroControlePNCP": "x", "valorTotalEstimado": 1234567890123.4567}'))
    assert row["valorTotalEstimado"] == Decimal("1234567890123.4567")


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("1234567890123.4567", Decimal("1234567890123.4567")),
        ("99999999999999999999999999999999.999999", Decimal("99999999999999999999999999999999.999999")),
        ("99999999999999999999999", Decimal("99999999999999999999999")),  # beyond int64, fits decimal(38, 6)
        ('"1234.56"', Decimal("1234.56")),  # a number sent as text
        ("0.0000010", Decimal("0.000001")),  # a trailing zero past the scale loses nothing
        ("1E+31", Decimal("1E+31")),
        ("0E-1000000000", Decimal(0)),  # written as is, Arrow crashes on it
        ("0.12345678901234567891", None),  # more than 6 decimals
        ("0.0000001", None),  # kept as sent, not as Decimal writes it (1E-7)
        ("123456789012345678901234567890123.45", None),  # 33 integer digits
        ("1.5E+33", None),
        ('"12.500,75"', None),  # Brazilian format: not a number
        ('"NaN"', None),
        ("true", None),
    ],
)
def test_a_decimal_lands_in_its_column_only_when_it_fits_decimal_38_6_exactly(text, column):
    row = item_row(valorTotal=text)
    table = pa.Table.from_pylist([{"itens": [row]}], schema=pa.schema([DETAILS_SCHEMA.field("itens")]))
    landed = table.to_pylist()[0]["itens"][0]
    assert landed["valorTotal"] == column
    if column is None:
        assert row["_extra"] == '{"valorTotal":' + text + "}"  # the JSON text as sent
    else:
        assert row["_extra"] is None


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("7", 7),
        ('"7"', 7),  # an enum sent as text (situacaoCompraId)
        ('"-7"', -7),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        (str(-(2**63) - 1), None),
        ("3.0", None),  # a number with a fraction is not an integer, even .0
        ("true", None),
        ('"7 "', None),
        ('"1_000"', None),
        ('"99999999999999999999"', None),
    ],
)
def test_an_integer_lands_only_when_it_is_one_within_int64(text, column):
    row = item_row(numeroItem=text)
    assert row["numeroItem"] == column
    assert row["_extra"] == (None if column is not None else '{"numeroItem":' + text + "}")


@pytest.mark.parametrize(
    ("field", "text", "column"),
    [
        ("orcamentoSigiloso", "true", True),
        ("orcamentoSigiloso", '"true"', None),
        ("orcamentoSigiloso", "1", None),
        ("descricao", "4100905", "4100905"),  # codigoIbge-style drift: a number kept as its digits
        ("descricao", "4638000.0", "4638000.0"),
        ("descricao", "false", None),
        ("descricao", '{"a": 1}', None),  # an object where a text goes
        ("dataInclusao", '"2024-07-01T08:17:01"', datetime(2024, 7, 1, 8, 17, 1)),
        ("dataInclusao", '"2024-07-01T11:17:01Z"', datetime(2024, 7, 1, 8, 17, 1)),
        ("dataInclusao", '"2024-13-01T00:00:00"', None),
        ("dataInclusao", '"2024-07-01T08:17:01.1234567"', None),  # finer than a microsecond
        ("dataInclusao", '"0001-01-01T00:00:00+01:00"', None),  # before year 1 in Brasília
        ("dataInclusao", '""', None),
        ("dataInclusao", "20240701", None),
    ],
)
def test_booleans_texts_and_date_times_land_only_as_what_they_are(field, text, column):
    row = item_row(**{field: text})
    assert row[field] == column
    if column is None:
        assert json.loads(row["_extra"]) == {field: json.loads(text)}


def test_nested_misfits_and_list_elements_keep_their_dotted_path_and_the_record():
    raw = loads(
        b'{"numeroControlePNCP": "x", "orgaoEntidade": {"cnpj": "1", "poderId": {"a": 1}},'
        b' "amparoLegal": "not an object", "fontesOrcamentarias": [7, {"codigo": 99999999999999999999}, null]}'
    )
    row = bronze_row(Contratacao, raw)
    assert row["orgaoEntidade"]["cnpj"] == "1" and row["orgaoEntidade"]["poderId"] is None
    assert row["amparoLegal"] is None
    assert row["fontesOrcamentarias"][0] is None and row["fontesOrcamentarias"][1]["codigo"] is None
    assert len(row["fontesOrcamentarias"]) == 3, "an element that is not an object keeps its place"
    assert json.loads(row["_extra"]) == {
        "orgaoEntidade.poderId": {"a": 1},
        "amparoLegal": "not an object",
        "fontesOrcamentarias.0": 7,
        "fontesOrcamentarias.1.codigo": 99999999999999999999,
    }


def test_an_item_that_is_not_an_object_still_lands_with_the_element_in_extra():
    rows = bronze_rows_json(Item, b'[{"numeroItem": 1}, 5, "x", null]')
    assert [r["numeroItem"] for r in rows] == [1, None, None, None]
    assert [r["_extra"] for r in rows] == [None, '{"":5}', '{"":"x"}', '{"":null}']


def test_texts_utf8_cannot_encode_go_to_extra_escaped():
    for body in (
        rb'[{"descricao": "a\ud800b", "unidadeMedida": "ok \ud83d\ude00"}]',
        b'[{"descricao": "a\xed\xa0\x80b"}]',
    ):
        (row,) = bronze_rows_json(Item, body)
        assert row["descricao"] is None
        assert row["_extra"] == r'{"descricao":"a\ud800b"}'
        assert loads(row["_extra"]) == {"descricao": "a\ud800b"}
    (row,) = bronze_rows_json(Item, rb'[{"unidadeMedida": "ok \ud83d\ude00"}]')
    assert row["unidadeMedida"] == "ok \U0001f600" and row["_extra"] is None  # a surrogate pair is a character
    row = bronze_row(Contratacao, {"numeroControlePNCP": "x", "\udc80campo": 1})
    assert row["_extra"] == r'{"\udc80campo":1}'


def test_extra_keeps_every_number_as_the_json_text_it_was_sent_as():
    row = item_row(novo="[1, 1.0, 0E0, 1e5, -0.0, 0.0000001, 12345678901234567890.123456789]")
    assert row["_extra"] == '{"novo":[1,1.0,0E0,1e5,-0.0,0.0000001,12345678901234567890.123456789]}'
    novo = loads(row["_extra"])["novo"]
    assert novo == [1, 1, 0, 100000, 0, Decimal("1E-7"), Decimal("12345678901234567890.123456789")]
    assert [type(n) is int for n in novo] == [True] + [False] * 6, "a number with a fraction stays one"
    # A record decoded elsewhere with plain Decimals: the same digits, still not an integer.
    row = bronze_row(Item, {"novo": [Decimal("0E0"), Decimal("1e5")]})
    assert row["_extra"] == '{"novo":[0E0,1E+5]}'


def test_a_body_nested_too_deeply_is_a_value_error_not_a_crash():
    with pytest.raises(ValueError, match="nests too deeply"):
        bronze_rows_json(Item, b"[" * 100_000 + b"]" * 100_000)
