"""Exact numbers end to end: a day whose records carry exotic values (many decimals, >= 1e32,
integers beyond int64, numbers as strings) runs to the end, and every value lands exactly, in its
column or in ``_extra``; plus the writer's last-resort guard."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest
from bronze import read_bronze, run_cli
from exactness import assert_recoverable, read_extra

from pncp_ingest.records import Item, bronze_rows_json
from pncp_ingest.records.schema import CONTRATACOES_SCHEMA, DETAILS_SCHEMA
from pncp_ingest.testing import SimulatorProcess
from pncp_ingest.writer import write_encodable

DAY = "2025-10-22"
PROBE = "1234567890123.4567"  # 17 significant digits: through a float it reads back as ...4568


@pytest.fixture(scope="module")
def exotic_day(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One day with exotic values in a fifth of the records, ingested once: contratações, then details."""
    with SimulatorProcess(seed=11, per_day=40, big_items=False, exotic=0.2) as sim:
        dest = str(tmp_path_factory.mktemp("exact") / "bronze")
        common = ("--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--json")
        listing = run_cli("contratacoes", *common)
        details = run_cli("details", *common)
        truth = sim.truth(DAY, details=True, exact=True)
    return SimpleNamespace(dest=dest, listing=listing, details=details, truth=truth)


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["numeroControlePNCP"]: r for r in rows}


def test_a_day_with_exotic_values_runs_to_the_end_and_lands_whole(exotic_day):
    assert exotic_day.listing.code == 0, exotic_day.listing.stderr
    assert exotic_day.details.code == 0, exotic_day.details.stderr
    truth = exotic_day.truth
    assert truth["exotic"]["contratacoes"] and truth["exotic"]["itens"], "the day carries exotic values"
    ids = {r["numeroControlePNCP"] for r in truth["contratacoes"]}
    assert set(by_id(read_bronze(exotic_day.dest).to_pylist())) == ids
    details = by_id(read_bronze(exotic_day.dest, "pncp_details").to_pylist())
    assert set(details) == ids
    for cid, row in details.items():
        assert len(row["itens"]) == truth["itens"][cid] and len(row["arquivos"]) == truth["arquivos"][cid]


def test_every_item_and_arquivo_value_is_exact_in_its_column_or_in_extra(exotic_day):
    details = by_id(read_bronze(exotic_day.dest, "pncp_details").to_pylist())
    for kind in ("itens", "arquivos"):
        element = DETAILS_SCHEMA.field(kind).type.value_type
        for cid, sent in exotic_day.truth["details"].items():
            for raw, landed in zip(sent[kind], details[cid][kind], strict=True):
                assert_recoverable(element, raw, landed)


def test_each_exotic_item_value_is_its_json_text_in_the_column_or_verbatim_in_extra(exotic_day):
    details = by_id(read_bronze(exotic_day.dest, "pncp_details").to_pylist())
    checked = {"column": 0, "_extra": 0}
    for cid, by_numero in exotic_day.truth["exotic"]["itens"].items():
        itens = {i["numeroItem"]: i for i in details[cid]["itens"]}
        for numero, fields in by_numero.items():
            item = itens[int(numero)]
            for name, text in fields.items():
                checked[assert_exact(item, name, text)] += 1
    assert checked["column"] and checked["_extra"], checked


def assert_exact(row: dict[str, Any], name: str, text: str) -> str:
    """``text`` (the JSON served) is the column's value, or sits verbatim in ``_extra``; says which."""
    if row[name] is not None:
        assert row[name] == Decimal(json.loads(text) if text.startswith('"') else text), (name, text, row[name])
        return "column"
    assert f'"{name}":{text}' in row["_extra"], (name, text, row["_extra"])
    assert name in read_extra(row["_extra"])
    return "_extra"


def test_every_contratacao_value_is_exact_in_its_column_or_in_extra(exotic_day):
    landed = by_id(read_bronze(exotic_day.dest).to_pylist())
    for raw in exotic_day.truth["contratacoes"]:
        assert_recoverable(CONTRATACOES_SCHEMA, raw, landed[raw["numeroControlePNCP"]])


def test_the_probe_1234567890123_4567_reads_back_exactly_from_the_published_parquet(exotic_day):
    (path,) = Path(exotic_day.dest, "pncp").rglob("*.parquet")
    values = pq.read_table(path, columns=["valorTotalEstimado"]).column(0).to_pylist()
    assert Decimal(PROBE) in values
    assert Decimal("1234567890123.4568") not in values


def test_the_probe_reads_back_exactly_through_the_detail_path(tmp_path):
    body = b'[{"numeroItem":1,"valorTotal":' + PROBE.encode() + b',"quantidade":0.12345678901234567891}]'
    rows = bronze_rows_json(Item, body)
    row = {"numeroControlePNCP": "x", "itens": rows, "arquivos": [], "metadata": None}
    path = tmp_path / "part.parquet"
    assert write_encodable([row], DETAILS_SCHEMA, path) == []
    (item,) = pq.read_table(path).to_pylist()[0]["itens"]
    assert str(item["valorTotal"]) == PROBE + "00"  # decimal(38, 6): the same digits, two zeros of scale
    assert item["quantidade"] is None and item["_extra"] == '{"quantidade":0.12345678901234567891}'


def test_a_row_arrow_cannot_encode_is_left_out_with_its_reason_and_the_others_are_written(tmp_path):
    good = {"numeroControlePNCP": "ok", "valorTotalEstimado": Decimal("1.5")}
    # What the record path never lets through: too many decimals, a text UTF-8 cannot encode.
    decimals = {"numeroControlePNCP": "decimals", "valorTotalEstimado": Decimal("0.1234567")}
    surrogate = {"numeroControlePNCP": "surrogate", "objetoCompra": "\ud800"}
    path = tmp_path / "part.parquet"
    rejected = write_encodable(
        [good, decimals, good | {"numeroControlePNCP": "ok2"}, surrogate], CONTRATACOES_SCHEMA, path
    )
    assert [index for index, _ in rejected] == [1, 3]
    assert all(reason.startswith("the row cannot be written") for _, reason in rejected)
    assert "data loss" in rejected[0][1]
    assert pq.read_table(path).column("numeroControlePNCP").to_pylist() == ["ok", "ok2"]
