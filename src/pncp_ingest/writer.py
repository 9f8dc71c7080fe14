"""Parquet parts and the streaming publish merge of a bronze dataset (see ``records.schema``).

Everything here is synchronous and CPU-bound; the pipeline calls it through
``anyio.to_thread`` so encoding and compression stay off the event loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .records.schema import Dataset

COMPRESSION = "zstd"
MERGE_BATCH_ROWS = 512  # rows of the published file held at once while merging


# A staged part lives under _state/ until the next publish merges it: it is written once and read
# once, by us. LZ4 without dictionaries or statistics costs about half of zstd's CPU to write and
# read (measured on details parts of 50 rows: 3.5 vs 7.6 ms to write, 2 vs 5 ms to read); the
# published file, the one readers see, is zstd with statistics.
PART_OPTIONS: dict[str, Any] = {"compression": "lz4", "use_dictionary": False, "write_statistics": False}


def write_part(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> int:
    """Write rows (already shaped like ``schema``) to one staged Parquet part; returns its row count."""
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path, **PART_OPTIONS)
    return int(table.num_rows)


def write_encodable(rows: list[dict[str, Any]], schema: pa.Schema, path: Path) -> list[tuple[int, str]]:
    """:func:`write_part`, leaving out any row Arrow cannot encode: returns those as (index in rows, why).

    The record path (``records.rows``) already moves every value that does not fit its column
    into ``_extra``, so this should never leave a row out; it is the last resort that turns a row
    it missed into one failed record instead of a run that aborts at every retry. The common case
    costs one conversion, as ``write_part``; only a batch that fails is converted row by row.
    """
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
        rejected: list[tuple[int, str]] = []
    except Exception:  # whatever Arrow raises for a value: the rows below say which and why
        rejected = []
        fit: list[dict[str, Any]] = []
        for index, row in enumerate(rows):
            try:
                pa.Table.from_pylist([row], schema=schema)
            except Exception as exc:
                rejected.append((index, f"the row cannot be written ({type(exc).__name__}: {str(exc)[:200]})"))
            else:
                fit.append(row)
        table = pa.Table.from_pylist(fit, schema=schema)
    pq.write_table(table, path, **PART_OPTIONS)
    return rejected


def merge(published: Path | None, parts: list[Path], out: Path, dataset: Dataset) -> tuple[int, list[str]]:
    """Merge the published file with committed parts into ``out``: one row per key.

    A later part wins over an earlier one and over the published file (for a dataset with a
    ``combine`` rule, the newer row is completed from the older instead), so re-publishing the
    same parts after a crash cannot duplicate a row. The published file is streamed batch by
    batch; only the pending parts (bounded by the publish cadence) are held in memory.
    Returns (rows, keys written).
    """
    pending = _one_row_per_key([_conform(_read(p), dataset.schema) for p in parts], dataset)
    pending_keys = dataset.table_keys(pending)
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
                keys = dataset.table_keys(table)
                replaced = pc.is_in(keys, value_set=pending_keys)
                if dataset.combine is not None:
                    superseded.extend(table.filter(replaced).to_pylist())
                table = table.filter(pc.invert(replaced))
                if table.num_rows:
                    sink.write_table(table)
                    rows += table.num_rows
                    keys_written.extend(keys.filter(pc.invert(replaced)).to_pylist())
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
    key_array = dataset.table_keys(table)
    keys = key_array.to_pylist()
    if len(set(keys)) == len(keys):
        return table
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    repeated = pa.array([k for k, n in counts.items() if n > 1], pa.string())
    is_repeated = pc.is_in(key_array, value_set=repeated)
    folded: dict[str, dict[str, Any]] = {}
    for row in table.filter(is_repeated).to_pylist():  # only the repeated keys, in part order
        key = dataset.row_key(row)
        older = folded.get(key)
        folded[key] = row if older is None or dataset.combine is None else dataset.combine(older, row)
    rest = table.filter(pc.invert(is_repeated))
    return pa.concat_tables([rest, pa.Table.from_pylist(list(folded.values()), schema=dataset.schema)])


def _fold(pending: pa.Table, older_rows: list[dict[str, Any]], dataset: Dataset) -> pa.Table:
    """Complete pending rows from the published rows they replace (datasets with ``combine``)."""
    assert dataset.combine is not None
    older = {dataset.row_key(row): row for row in older_rows}
    hit = pc.is_in(dataset.table_keys(pending), value_set=pa.array(list(older), pa.string()))
    combined = [dataset.combine(older[dataset.row_key(row)], row) for row in pending.filter(hit).to_pylist()]
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
