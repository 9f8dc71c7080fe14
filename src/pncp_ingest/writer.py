"""Arrow schemas derived from the record models, Parquet parts, and the streaming publish merge.

Everything here is synchronous and CPU-bound; the pipeline calls it through
``anyio.to_thread`` so encoding and compression stay off the event loop.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Union

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel

from .pncp import Arquivo, Contratacao, Item

MONEY = pa.decimal128(38, 6)
LINEAGE = [
    pa.field("_extra", pa.string()),
    pa.field("_ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("_run_id", pa.string()),
]
COMPRESSION = "zstd"
MERGE_BATCH_ROWS = 512  # rows of the published file held at once while merging


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
    """A bronze dataset: its folder name under the destination, schema and row key.

    ``combine(older, newer)`` merges two rows of one key when a newer row may carry only part
    of the record (details fetched with ``--only``); without it the newer row simply wins.
    """

    name: str
    schema: pa.Schema
    key: str = "numeroControlePNCP"
    combine: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None

    def partition(self, day: date) -> str:
        return f"{self.name}/year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"

    def published_key(self, day: date) -> str:
        # One fixed name per partition: a publish replaces it atomically.
        return f"{self.partition(day)}/part-0.parquet"


CONTRATACOES = Dataset("pncp", CONTRATACOES_SCHEMA)


def _with_extra(model: type[BaseModel]) -> pa.StructType:
    return pa.struct(model_fields(model) + [pa.field("_extra", pa.string())])


DETAIL_KINDS = ("itens", "arquivos")
DETAILS_SCHEMA = pa.schema(
    [
        pa.field("numeroControlePNCP", pa.string()),
        pa.field("cnpj", pa.string()),
        pa.field("anoCompra", pa.int64()),
        pa.field("sequencialCompra", pa.int64()),
        # null = not fetched (yet); [] = fetched, and the compra has none.
        pa.field("itens", pa.list_(_with_extra(Item))),
        pa.field("arquivos", pa.list_(_with_extra(Arquivo))),
        pa.field(
            "metadata",
            pa.struct(
                [
                    pa.field("total_itens", pa.int64()),
                    pa.field("total_arquivos", pa.int64()),
                    pa.field("fetch_timestamp", pa.timestamp("us", tz="UTC")),
                ]
            ),
        ),
        *LINEAGE[1:],
    ]
)


def combine_details(older: dict[str, Any], newer: dict[str, Any]) -> dict[str, Any]:
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


# A staged part lives under _state/ until the next publish merges it: it is written once and read
# once, by us. LZ4 without dictionaries or statistics costs about half of zstd's CPU to write and
# read (measured on details parts of 50 rows: 3.5 vs 7.6 ms to write, 2 vs 5 ms to read); the
# published file, the one readers see, is zstd with statistics.
PART_OPTIONS: dict[str, Any] = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}


def write_part(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> int:
    """Write rows (already shaped like ``schema``) to one staged Parquet part; returns its row count."""
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, **PART_OPTIONS)
    return table.num_rows


def merge(published: Path | None, parts: list[Path], out: Path, dataset: Dataset) -> tuple[int, list[str]]:
    """Merge the published file with committed parts into ``out``: one row per key.

    A later part wins over an earlier one and over the published file (for a dataset with a
    ``combine`` rule, the newer row is completed from the older instead), so re-publishing the
    same parts after a crash cannot duplicate a row. The published file is streamed batch by
    batch; only the pending parts (bounded by the publish cadence) are held in memory.
    Returns (rows, keys written).
    """
    key = dataset.key
    pending = _one_row_per_key([_conform(_read(p), dataset.schema) for p in parts], dataset)
    pending_keys = pending.column(key).combine_chunks()
    superseded: list[dict[str, Any]] = []
    keys_written: list[str] = []
    rows = 0
    with pq.ParquetWriter(out, dataset.schema, compression=COMPRESSION) as sink:
        if published is not None:
            # Small batches, one thread, no pre-buffering: what this holds is a few hundred rows,
            # not a row group's worth per decoding thread, so memory stays flat as the day grows.
            source = pq.ParquetFile(published, pre_buffer=False)
            for batch in source.iter_batches(batch_size=MERGE_BATCH_ROWS, use_threads=False):
                table = _conform(pa.Table.from_batches([batch]), dataset.schema)
                replaced = pc.is_in(table.column(key), value_set=pending_keys)
                if dataset.combine is not None:
                    superseded.extend(table.filter(replaced).to_pylist())
                table = table.filter(pc.invert(replaced))
                if table.num_rows:
                    sink.write_table(table)
                    rows += table.num_rows
                    keys_written.extend(table.column(key).to_pylist())
        if superseded:
            pending = _fold(pending, superseded, dataset)
        sink.write_table(pending)
        rows += pending.num_rows
        keys_written.extend(pending_keys.to_pylist())
    return rows, keys_written


def _read(path: Path) -> pa.Table:
    return pq.ParquetFile(path, pre_buffer=False).read(use_threads=False)


def _one_row_per_key(tables: list[pa.Table], dataset: Dataset) -> pa.Table:
    """Concatenate parts (oldest first) keeping one row per key: the newest, or the fold of all."""
    table = pa.concat_tables(tables) if tables else dataset.schema.empty_table()
    keys = table.column(dataset.key).to_pylist()
    if len(set(keys)) == len(keys):
        return table
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    repeated = pa.array([k for k, n in counts.items() if n > 1], pa.string())
    is_repeated = pc.is_in(table.column(dataset.key), value_set=repeated)
    folded: dict[str, dict[str, Any]] = {}
    for row in table.filter(is_repeated).to_pylist():  # only the repeated keys, in part order
        older = folded.get(row[dataset.key])
        folded[row[dataset.key]] = row if older is None or dataset.combine is None else dataset.combine(older, row)
    rest = table.filter(pc.invert(is_repeated))
    return pa.concat_tables([rest, pa.Table.from_pylist(list(folded.values()), schema=dataset.schema)])


def _fold(pending: pa.Table, older_rows: list[dict[str, Any]], dataset: Dataset) -> pa.Table:
    """Complete pending rows from the published rows they replace (datasets with ``combine``)."""
    assert dataset.combine is not None
    older = {row[dataset.key]: row for row in older_rows}
    hit = pc.is_in(pending.column(dataset.key), value_set=pa.array(list(older), pa.string()))
    combined = [dataset.combine(older[row[dataset.key]], row) for row in pending.filter(hit).to_pylist()]
    return pa.concat_tables([pending.filter(pc.invert(hit)), pa.Table.from_pylist(combined, schema=dataset.schema)])


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
