"""The bronze datasets: their Arrow schemas (derived from the record models), folders and keys.

Importing this module imports pyarrow; the models alone (``pncp_ingest.records``) do not.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Union

import pyarrow as pa
from pydantic import BaseModel

from .models import DETAIL_KINDS, DETAIL_MODELS, Ata, Contratacao, Contrato
from .values import DECIMAL_COLUMN, INT64_COLUMN, PRECISION, SCALE

MONEY = pa.decimal128(PRECISION, SCALE)
_MARKED: dict[str, pa.DataType] = {DECIMAL_COLUMN: MONEY, INT64_COLUMN: pa.int64()}
LINEAGE = [
    pa.field("_extra", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_run_id", pa.string()),
]


def _arrow_type(annotation: Any) -> pa.DataType:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _arrow_type(inner)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(annotation)
        for marker in metadata:
            if isinstance(marker, str) and marker in _MARKED:
                return _MARKED[marker]
        return _arrow_type(inner)
    if origin is list:
        return pa.list_(_arrow_type(typing.get_args(annotation)[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(model_fields(annotation))
    simple: dict[Any, pa.DataType] = {
        str: pa.string(),
        int: pa.int64(),
        bool: pa.bool_(),
        float: pa.float64(),
        Decimal: MONEY,
        datetime: pa.timestamp("us"),  # Brasília local wall time, as the API sends it
        date: pa.date32(),
    }
    return simple[annotation]


def model_fields(model: type[BaseModel]) -> list[pa.Field]:
    """One Arrow field per model field, same names, nested models as structs."""
    return [pa.field(name, _arrow_type(info.annotation)) for name, info in model.model_fields.items()]


Row = dict[str, Any]


@dataclass(frozen=True)
class Dataset:
    """A bronze dataset: its folder name under the destination, schema and row key.

    ``key`` is a column, or several columns whose values together identify a row (the history
    keeps one row per contratação *and* version); commit records and manifests hold the key as
    one string, built by :meth:`row_key` for a row and :meth:`table_keys` for a table alike.
    ``combine(older, newer)`` merges two rows of one key: details fetched with ``--only`` keep
    the other kind, contratações keep the newest version; without it the newer row simply wins.
    """

    name: str
    schema: pa.Schema
    key: str | tuple[str, ...] = "numeroControlePNCP"
    combine: Callable[[Row, Row], Row] | None = None

    def row_key(self, row: Row) -> str:
        if isinstance(self.key, str):
            return str(row[self.key])
        return KEY_SEPARATOR.join("" if row.get(c) is None else _key_text(row[c]) for c in self.key)

    def table_keys(self, table: pa.Table) -> pa.Array:
        """The key of every row of ``table``, as strings equal to :meth:`row_key`'s."""
        if isinstance(self.key, str):
            return table.column(self.key).combine_chunks()
        columns = [table.column(c).to_pylist() for c in self.key]
        return pa.array(
            [
                KEY_SEPARATOR.join("" if v is None else _key_text(v) for v in values)
                for values in zip(*columns, strict=True)
            ],
            pa.string(),
        )

    def partition(self, day: date) -> str:
        return f"{self.name}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"

    def published_key(self, day: date) -> str:
        # One fixed name per partition: a publish replaces it atomically.
        return f"{self.partition(day)}/part-0.parquet"


KEY_SEPARATOR = "|"


def _key_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, (datetime, date)) else str(value)


def version(row: Row) -> datetime | None:
    """A record's version (contratação, contrato or ata): ``dataAtualizacaoGlobal`` (moves when a
    child changes too), else ``dataAtualizacao``."""
    value = row.get("dataAtualizacaoGlobal") or row.get("dataAtualizacao")
    return value if isinstance(value, datetime) else None


def version_text(row: Row) -> str:
    """The version as commit meta and manifests record it ("" when the record has none)."""
    found = version(row)
    return found.isoformat() if found is not None else ""


def newest(older: Row, newer: Row) -> Row:
    """Newest version wins, whatever order two rows of one record meet in (a tie: the later row)."""
    old, new = version(older), version(newer)
    if old is not None and (new is None or old > new):
        return older
    return newer


CONTRATACOES_SCHEMA = pa.schema(model_fields(Contratacao) + LINEAGE)
CONTRATACOES = Dataset("pncp", CONTRATACOES_SCHEMA, combine=newest)
# Every version ``atualizacoes`` listed, partitioned by the update day listed: one row per
# (contratação, version). A record without dataAtualizacaoGlobal has an empty version part.
ATUALIZACOES = Dataset(
    "pncp_atualizacoes", CONTRATACOES_SCHEMA, key=("numeroControlePNCP", "dataAtualizacaoGlobal"), combine=None
)
# Contratos (and empenhos) by publication day, newest version; every version listed, by update day.
CONTRATOS_SCHEMA = pa.schema(model_fields(Contrato) + LINEAGE)
CONTRATOS = Dataset("pncp_contratos", CONTRATOS_SCHEMA, combine=newest)
CONTRATOS_ATUALIZACOES = Dataset(
    "pncp_contratos_atualizacoes", CONTRATOS_SCHEMA, key=("numeroControlePNCP", "dataAtualizacaoGlobal")
)
# Atas de registro de preço: the same, keyed by their own numeroControlePNCPAta.
ATAS_SCHEMA = pa.schema(model_fields(Ata) + LINEAGE)
ATAS = Dataset("pncp_atas", ATAS_SCHEMA, key="numeroControlePNCPAta", combine=newest)
ATAS_ATUALIZACOES = Dataset(
    "pncp_atas_atualizacoes", ATAS_SCHEMA, key=("numeroControlePNCPAta", "dataAtualizacaoGlobal")
)


def _with_extra(model: type[BaseModel]) -> pa.StructType:
    return pa.struct(model_fields(model) + [pa.field("_extra", pa.string())])


DETAILS_SCHEMA = pa.schema(
    [
        pa.field("numeroControlePNCP", pa.string()),
        pa.field("cnpj", pa.string()),
        pa.field("anoCompra", pa.int64()),
        pa.field("sequencialCompra", pa.int64()),
        # null = not fetched (yet); [] = fetched, and the compra has none.
        *(pa.field(kind, pa.list_(_with_extra(DETAIL_MODELS[kind]))) for kind in DETAIL_KINDS),
        pa.field(
            "metadata",
            pa.struct(
                [
                    *(pa.field(f"total_{kind}", pa.int64()) for kind in DETAIL_KINDS),
                    pa.field("fetch_timestamp", pa.timestamp("us", tz="UTC")),
                ]
            ),
        ),
        *LINEAGE[1:],
    ]
)


def combine_details(older: Row, newer: Row) -> Row:
    """A details row fetched with ``--only`` keeps the other kind from the row it replaces."""
    row = dict(newer)
    metadata = dict(newer.get("metadata") or {})
    previous = older.get("metadata") or {}
    for kind in DETAIL_KINDS:
        if row.get(kind) is None and older.get(kind) is not None:
            row[kind] = older[kind]
            metadata[f"total_{kind}"] = previous.get(f"total_{kind}")
    row["metadata"] = metadata
    return row


DETAILS = Dataset("pncp_details", DETAILS_SCHEMA, combine=combine_details)
