"""Arrow schemas derived from the record models, Parquet parts, and the streaming publish merge.

Everything here is synchronous and CPU-bound; the pipeline calls it through
``anyio.to_thread`` so encoding and compression stay off the event loop.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel

from .pncp import Contratacao

MONEY = pa.decimal128(38, 6)
LINEAGE = [
    pa.field("_extra", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_run_id", pa.string()),
]
COMPRESSION = "zstd"


def _arrow_type(annotation: Any) -> pa.DataType:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _arrow_type(inner)
    if origin is typing.Annotated:
        return _arrow_type(typing.get_args(annotation)[0])
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


CONTRATACOES_SCHEMA = pa.schema(model_fields(Contratacao) + LINEAGE)


@dataclass(frozen=True)
class Dataset:
    """A bronze dataset: its folder name under the destination, schema and row key."""

    name: str
    schema: pa.Schema
    key: str = "numeroControlePNCP"

    def partition(self, day: date) -> str:
        return f"{self.name}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"

    def published_key(self, day: date) -> str:
        # One fixed name per partition: a publish replaces it atomically.
        return f"{self.partition(day)}/part-0.parquet"


CONTRATACOES = Dataset("pncp", CONTRATACOES_SCHEMA)


def write_part(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> int:
    """Write rows (already shaped like ``schema``) to one zstd Parquet file; returns its row count."""
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, compression=COMPRESSION)
    return table.num_rows


def read_keys(path: Path, key: str) -> pa.Array:
    return pq.read_table(path, columns=[key]).column(key).combine_chunks()


def merge(published: Path | None, parts: list[Path], out: Path, dataset: Dataset) -> tuple[int, list[str]]:
    """Merge the published file with committed parts into ``out``, streaming, one row per key.

    A later part wins over an earlier one and over the published file, so re-publishing the
    same parts (after a crash between publish and cleanup) cannot duplicate a row. Memory is
    one record batch plus the parts' keys, not the partition. Returns (rows, keys written).
    """
    key = dataset.key
    later_keys: list[pa.Array] = [read_keys(p, key) for p in parts]
    keys_written: list[str] = []
    rows = 0
    with pq.ParquetWriter(out, dataset.schema, compression=COMPRESSION) as sink:

        def emit(batches: Iterable[pa.RecordBatch], superseded: pa.Array | None) -> None:
            nonlocal rows
            for batch in batches:
                table = _conform(pa.Table.from_batches([batch]), dataset.schema)
                if superseded is not None and len(superseded):
                    table = table.filter(pc.invert(pc.is_in(table.column(key), value_set=superseded)))
                if table.num_rows:
                    sink.write_table(table)
                    rows += table.num_rows
                    keys_written.extend(table.column(key).to_pylist())

        sources = ([published] if published is not None else []) + parts
        for index, source in enumerate(sources):
            part_index = index - (1 if published is not None else 0)
            after = later_keys[part_index + 1 :]
            superseded = pa.concat_arrays(after).unique() if after else None
            batches = pq.ParquetFile(source).iter_batches(batch_size=2048)
            if part_index >= 0:
                batches = _last_per_key(batches, key)
            emit(batches, superseded)
    return rows, keys_written


def _last_per_key(batches: Iterable[pa.RecordBatch], key: str) -> Iterable[pa.RecordBatch]:
    """Within one part (small: one checkpoint), keep the last row of each key."""
    table = pa.Table.from_batches(list(batches))
    if table.num_rows == 0:
        return []
    keys = table.column(key).to_pylist()
    last = {k: i for i, k in enumerate(keys)}
    if len(last) == len(keys):
        return table.to_batches()
    return table.take(sorted(last.values())).to_batches()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Cast a table written by another version to ``schema``: missing columns become null."""
    if table.schema.equals(schema):
        return table
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(columns, schema=schema)
