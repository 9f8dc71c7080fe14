"""Read the pncp-ingest bronze layer with DuckDB and print a short summary.

    python examples/read_duckdb.py [DEST] [--top N]      # DEST defaults to ./data/bronze
    python examples/read_duckdb.py [DEST] --history [numeroControlePNCP]   # current state and history
    python examples/read_duckdb.py [DEST] --contratos [--top N]   # what was signed, joined to what was bought

Prints, for the contratações (`pncp`) and their details (`pncp_details`) under DEST:
  - how many contratações, days, itens and arquivos there are;
  - contratações per day and modalidade, with their summed valorTotalEstimado;
  - the N itens with the highest valorTotal (the `itens` list unnested, one row per item);
  - arquivos per tipoDocumentoNome.

With --history (after `pncp-ingest atualizacoes`): how many contratações are current at a newer
version than first seen, and one contratação's history (the given one, else the one with the
most versions): its `pncp_atualizacoes` rows plus its current `pncp` row, oldest first.

With --contratos (after `pncp-ingest contratos`): the contratos with the largest valorGlobal, each
joined to its contratação (`numeroControlePncpCompra` = the contratação's `numeroControlePNCP`)
and that contratação's itens: supplier, signed value, what was bought and its estimate. Empenhos
without a compra link are counted apart.

examples/read_polars.py prints the same summary with Polars (tests/test_examples.py checks that
the two agree with each other and with what the PNCP simulator served).

The glob `{DEST}/pncp/*/*/*/*.parquet` matches only the published files (one per day, replaced
atomically), never `_state/`; `hive_partitioning=true` adds the year, month and day columns, and
`hive_types` makes them integers (left to itself, DuckDB reads a zero-padded `month=09` as the
text '09', so `month = 9` would match nothing and make_date(year, month, day) would not bind).
DEST here is a local folder. For an s3:// destination, DuckDB needs its httpfs extension and an
S3 secret (`CREATE SECRET (TYPE s3, KEY_ID ..., SECRET ..., ENDPOINT ..., URL_STYLE 'path')`);
the queries stay the same. Requires DuckDB >= 1.0.
"""

from __future__ import annotations

import argparse
import glob
import sys

import duckdb


def published(dest: str, dataset: str) -> str | None:
    """The read_parquet glob for a dataset, or None if nothing is published there yet."""
    pattern = f"{dest.rstrip('/')}/{dataset}/*/*/*/*.parquet"
    return pattern if glob.glob(pattern) else None


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_parquet(pattern: str) -> str:
    """read_parquet(...) over a dataset's files, with integer year/month/day partition columns."""
    return (
        f"read_parquet({sql_string(pattern)}, hive_partitioning = true, "
        "hive_types = {'year': INTEGER, 'month': INTEGER, 'day': INTEGER})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarise a pncp-ingest bronze layer with DuckDB.")
    parser.add_argument("dest", nargs="?", default="./data/bronze", help="the --dest folder (default ./data/bronze)")
    parser.add_argument("--top", type=int, default=10, help="how many itens to list (default 10)")
    parser.add_argument(
        "--history", nargs="?", const="", metavar="ID", help="current state and one contratação's history"
    )
    parser.add_argument("--contratos", action="store_true", help="contratos joined to their contratação and itens")
    args = parser.parse_args(argv)

    pncp = published(args.dest, "pncp")
    if pncp is None:
        print(
            f"no contratações under {args.dest}/pncp: run `pncp-ingest contratacoes --dest {args.dest}` first",
            file=sys.stderr,
        )
        return 1

    con = duckdb.connect()
    con.execute(f"create view pncp as select * from {read_parquet(pncp)}")
    details = published(args.dest, "pncp_details")
    if details is not None:
        con.execute(f"create view pncp_details as select * from {read_parquet(details)}")
        # One row per item: the `itens` list unnested (a contratação without itens yields no row).
        con.execute("""
            create view itens as
            select d.year, d.month, d.day, d.numeroControlePNCP, i.*
            from pncp_details d, unnest(d.itens) as t(i)
        """)

    if args.history is not None:
        return history(con, args.dest, args.history)
    if args.contratos:
        return contratos(con, args.dest, args.top, with_itens=details is not None)

    print(f"bronze layer: {args.dest}")
    n, days = con.sql("select count(*), count(distinct (year, month, day)) from pncp").fetchall()[0]
    if details is None:
        print(f"{n} contratações on {days} day(s); no details yet (run `pncp-ingest details`)")
    else:
        with_details, itens, arquivos = con.sql("""
            select count(*), coalesce(sum(len(itens)), 0), coalesce(sum(len(arquivos)), 0) from pncp_details
        """).fetchall()[0]
        print(f"{n} contratações on {days} day(s); details for {with_details}: {itens} itens, {arquivos} arquivos")

    print("\ncontratações per day and modalidade")
    print(f"{'day':<10}  {'modalidade':<40}  {'contratações':>12}  {'valor estimado (R$)':>22}")
    rows = con.sql("""
        select year, month, day, modalidadeId, modalidadeNome,
               count(*) as contratacoes, coalesce(sum(valorTotalEstimado), 0) as valor
        from pncp
        group by all
        order by year, month, day, modalidadeId
    """).fetchall()
    for year, month, day, mod_id, mod_nome, count, valor in rows:
        print(
            f"{year:04d}-{month:02d}-{day:02d}  {mod_id:>3} {(mod_nome or '?')[:36]:<36}  {count:>12}  {valor:>22,.2f}"
        )

    if details is None:
        return 0

    print(f"\ntop {args.top} itens by valorTotal")
    print(f"{'day':<10}  {'numeroControlePNCP':<32}  {'item':>5}  {'valorTotal (R$)':>22}  descricao")
    rows = con.sql(
        """
        select year, month, day, numeroControlePNCP, numeroItem, valorTotal, descricao
        from itens
        where valorTotal is not null
        order by valorTotal desc, numeroControlePNCP, numeroItem
        limit $top
    """,
        params={"top": args.top},
    ).fetchall()
    for year, month, day, cid, numero, valor, descricao in rows:
        print(f"{year:04d}-{month:02d}-{day:02d}  {cid:<32}  {numero:>5}  {valor:>22,.2f}  {(descricao or '')[:50]}")

    print("\narquivos per tipoDocumentoNome")
    print(f"{'tipoDocumentoNome':<50}  {'arquivos':>8}")
    rows = con.sql("""
        select coalesce(a.tipoDocumentoNome, '(none)') as tipo, count(*) as arquivos
        from pncp_details d, unnest(d.arquivos) as t(a)
        group by all
        order by arquivos desc, tipo
    """).fetchall()
    for tipo, count in rows:
        print(f"{tipo[:50]:<50}  {count:>8}")
    return 0


def contratos(con: duckdb.DuckDBPyConnection, dest: str, top: int, with_itens: bool) -> int:
    """The largest contratos, each with its contratação and that contratação's itens."""
    found = published(dest, "pncp_contratos")
    if found is None:
        print(f"no contratos under {dest}/pncp_contratos: run `pncp-ingest contratos --dest {dest}` first")
        return 1
    con.execute(f"create view pncp_contratos as select * from {read_parquet(found)}")
    total, linked, empenhos = con.sql("""
        select count(*),
               count(*) filter (where numeroControlePncpCompra in (select numeroControlePNCP from pncp)),
               count(*) filter (where numeroControlePncpCompra is null)
        from pncp_contratos
    """).fetchall()[0]
    print(f"{total} contratos; {linked} joined to a contratação in bronze, {empenhos} without a compra link")
    itens = "itens" if with_itens else "(select null::varchar as numeroControlePNCP, null::decimal as valorTotal)"
    rows = con.sql(
        f"""
        select c.numeroControlePNCP, c.nomeRazaoSocialFornecedor, c.valorGlobal, p.objetoCompra,
               count(i.valorTotal) as itens, sum(i.valorTotal) as estimado
        from pncp_contratos c
        join pncp p on p.numeroControlePNCP = c.numeroControlePncpCompra
        left join {itens} i on i.numeroControlePNCP = p.numeroControlePNCP
        group by all
        order by c.valorGlobal desc nulls last, c.numeroControlePNCP
        limit $top
        """,
        params={"top": top},
    ).fetchall()
    print(f"\ntop {top} contratos by valorGlobal, with their contratação")
    print(
        f"{'contrato':<30}  {'fornecedor':<30}  {'valorGlobal (R$)':>18}  {'itens':>5}  {'estimado (R$)':>18}  objeto"
    )
    for cid, fornecedor, valor, objeto, n_itens, estimado in rows:
        signed = "-" if valor is None else f"{valor:,.2f}"
        estimate = "-" if estimado is None else f"{estimado:,.2f}"
        print(
            f"{cid:<30}  {(fornecedor or '?')[:30]:<30}  {signed:>18}  {n_itens:>5}  {estimate:>18}  {(objeto or '')[:40]}"
        )
    return 0


def history(con: duckdb.DuckDBPyConnection, dest: str, wanted: str) -> int:
    """Current state (``pncp``) and one contratação's versions (``pncp_atualizacoes`` + ``pncp``)."""
    versions = published(dest, "pncp_atualizacoes")
    if versions is None:
        print(f"no history under {dest}/pncp_atualizacoes: run `pncp-ingest atualizacoes --dest {dest}` first")
        return 1
    con.execute(f"create view pncp_atualizacoes as select * from {read_parquet(versions)}")
    # Every version bronze has held: the history, plus the current row (usually in both).
    con.execute("""
        create view versions as
        select distinct on (numeroControlePNCP, dataAtualizacaoGlobal) *
        from (select * from pncp_atualizacoes union all by name select * from pncp)
    """)
    current, updated = con.sql("""
        select count(*), count(*) filter (where numeroControlePNCP in
            (select numeroControlePNCP from versions group by all having count(*) > 1))
        from pncp
    """).fetchall()[0]
    print(f"current state: {current} contratações, {updated} of them changed since first seen")
    if not wanted:
        found = con.sql("""
            select numeroControlePNCP from versions group by all order by count(*) desc, numeroControlePNCP limit 1
        """).fetchall()
        wanted = found[0][0] if found else ""
    rows = con.sql(
        """
        select dataAtualizacaoGlobal, situacaoCompraNome, valorTotalHomologado
        from versions where numeroControlePNCP = $id order by dataAtualizacaoGlobal
        """,
        params={"id": wanted},
    ).fetchall()
    print(f"\nhistory of {wanted}: {len(rows)} version(s), oldest first")
    print(f"{'dataAtualizacaoGlobal':<21}  {'situacaoCompraNome':<40}  {'valorTotalHomologado (R$)':>26}")
    for when, situacao, homologado in rows:
        valor = "-" if homologado is None else f"{homologado:,.2f}"
        print(f"{when!s:<21}  {(situacao or '?')[:40]:<40}  {valor:>26}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
