"""Records: real PNCP samples, the documented type drift, and nothing dropped."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from pncp_ingest.records import DETAIL_KINDS, DETAIL_MODELS, Arquivo, Contratacao, Item, bronze_row
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


def test_details_columns_follow_the_detail_kinds_and_their_models():
    assert DETAIL_KINDS == ("itens", "arquivos")
    assert {"itens": Item, "arquivos": Arquivo} == DETAIL_MODELS
    assert DETAILS_SCHEMA.names == [
        "numeroControlePNCP",
        "cnpj",
        "anoCompra",
        "sequencialCompra",
        "itens",
        "arquivos",
        "metadata",
        "_ingested_at",
        "_run_id",
    ]
    for kind, model in DETAIL_MODELS.items():
        element = DETAILS_SCHEMA.field(kind).type.value_type
        assert [f.name for f in element] == [*model.model_fields, "_extra"]
        assert list(element)[:-1] == model_fields(model)
    metadata = DETAILS_SCHEMA.field("metadata").type
    assert [f.name for f in metadata] == ["total_itens", "total_arquivos", "fetch_timestamp"]
    assert DETAILS.schema is DETAILS_SCHEMA and DETAILS.key == "numeroControlePNCP"


def test_a_row_fetched_with_only_one_kind_keeps_the_other_from_the_row_it_replaces():
    older = {"itens": [{"numeroItem": 1}], "arquivos": [], "metadata": {"total_itens": 1, "total_arquivos": 0}}
    newer = {"itens": None, "arquivos": [{"titulo": "Edital"}], "metadata": {"total_itens": None, "total_arquivos": 1}}
    assert DETAILS.combine is not None
    row = DETAILS.combine(older, newer)
    assert row["itens"] == [{"numeroItem": 1}] and row["arquivos"] == [{"titulo": "Edital"}]
    assert row["metadata"] == {"total_itens": 1, "total_arquivos": 1}
