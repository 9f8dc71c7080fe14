"""Read the pncp-ingest bronze layer with Polars and print a short summary.

    python examples/read_polars.py [DEST] [--top N]      # DEST defaults to ./data/bronze

Prints, for the contratações (`pncp`) and their details (`pncp_details`) under DEST:
  - how many contratações, days, itens and arquivos there are;
  - contratações per day and modalidade, with their summed valorTotalEstimado;
  - the N itens with the highest valorTotal (the `itens` list exploded, one row per item);
  - arquivos per tipoDocumentoNome.

The same summary as examples/read_duckdb.py, line for line (tests/test_examples.py checks it).

The glob `{DEST}/pncp/*/*/*/*.parquet` matches only the published files (one per day, replaced
atomically), never `_state/`; `hive_partitioning=True` adds the year, month and day columns
(typed by `hive_schema` as integers).
Everything is lazy (`scan_parquet`): Polars reads only the columns each query needs. DEST here
is a local folder; for an s3:// destination, pass `storage_options` (endpoint, keys, region) to
`pl.scan_parquet`. Requires Polars >= 1.0.
"""

from __future__ import annotations

import argparse
import glob
import sys

import polars as pl

# The partition columns, typed explicitly rather than inferred from the folder names (month=09).
HIVE_SCHEMA = {"year": pl.Int32, "month": pl.Int32, "day": pl.Int32}


def scan(dest: str, dataset: str) -> pl.LazyFrame | None:
    """A dataset's published files as a LazyFrame, or None if nothing is published there yet."""
    pattern = f"{dest.rstrip('/')}/{dataset}/*/*/*/*.parquet"
    if not glob.glob(pattern):
        return None
    return pl.scan_parquet(pattern, hive_partitioning=True, hive_schema=HIVE_SCHEMA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarise a pncp-ingest bronze layer with Polars.")
    parser.add_argument("dest", nargs="?", default="./data/bronze", help="the --dest folder (default ./data/bronze)")
    parser.add_argument("--top", type=int, default=10, help="how many itens to list (default 10)")
    args = parser.parse_args(argv)

    pncp = scan(args.dest, "pncp")
    if pncp is None:
        print(
            f"no contratações under {args.dest}/pncp: run `pncp-ingest contratacoes --dest {args.dest}` first",
            file=sys.stderr,
        )
        return 1
    details = scan(args.dest, "pncp_details")

    print(f"bronze layer: {args.dest}")
    n, days = pncp.select(pl.len(), pl.struct("year", "month", "day").n_unique()).collect().row(0)
    if details is None:
        print(f"{n} contratações on {days} day(s); no details yet (run `pncp-ingest details`)")
    else:
        with_details, itens, arquivos = (
            details.select(pl.len(), pl.col("itens").list.len().sum(), pl.col("arquivos").list.len().sum())
            .collect()
            .row(0)
        )
        print(f"{n} contratações on {days} day(s); details for {with_details}: {itens} itens, {arquivos} arquivos")

    print("\ncontratações per day and modalidade")
    print(f"{'day':<10}  {'modalidade':<40}  {'contratações':>12}  {'valor estimado (R$)':>22}")
    per_day = (
        pncp.group_by("year", "month", "day", "modalidadeId", "modalidadeNome")
        .agg(pl.len().alias("contratacoes"), pl.col("valorTotalEstimado").sum().alias("valor"))
        .sort("year", "month", "day", "modalidadeId")
        .collect()
    )
    for year, month, day, mod_id, mod_nome, count, valor in per_day.iter_rows():
        print(
            f"{year:04d}-{month:02d}-{day:02d}  {mod_id:>3} {(mod_nome or '?')[:36]:<36}  {count:>12}  {valor:>22,.2f}"
        )

    if details is None:
        return 0

    # One row per item: explode the `itens` list, then lift the struct's fields into columns.
    # (Explode gives a null row for a null list, and for an empty one in some Polars versions.)
    itens_rows = (
        details.select("year", "month", "day", "numeroControlePNCP", "itens")
        .explode("itens")
        .filter(pl.col("itens").is_not_null())
        .unnest("itens")
    )
    print(f"\ntop {args.top} itens by valorTotal")
    print(f"{'day':<10}  {'numeroControlePNCP':<32}  {'item':>5}  {'valorTotal (R$)':>22}  descricao")
    top = (
        itens_rows.filter(pl.col("valorTotal").is_not_null())
        .sort(["valorTotal", "numeroControlePNCP", "numeroItem"], descending=[True, False, False])
        .head(args.top)
        .select("year", "month", "day", "numeroControlePNCP", "numeroItem", "valorTotal", "descricao")
        .collect()
    )
    for year, month, day, cid, numero, valor, descricao in top.iter_rows():
        print(f"{year:04d}-{month:02d}-{day:02d}  {cid:<32}  {numero:>5}  {valor:>22,.2f}  {(descricao or '')[:50]}")

    print("\narquivos per tipoDocumentoNome")
    print(f"{'tipoDocumentoNome':<50}  {'arquivos':>8}")
    tipos = (
        details.select(pl.col("arquivos").explode())
        .filter(pl.col("arquivos").is_not_null())
        .select(pl.col("arquivos").struct.field("tipoDocumentoNome").fill_null("(none)").alias("tipo"))
        .group_by("tipo")
        .agg(pl.len().alias("arquivos"))
        .sort(["arquivos", "tipo"], descending=[True, False])
        .collect()
    )
    for tipo, count in tipos.iter_rows():
        print(f"{tipo[:50]:<50}  {count:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
