"""Who won, and at what price against the estimate: a question answered from bronze alone (DuckDB).

    python examples/resultados_duckdb.py [DEST] [--top N]      # DEST defaults to ./data/bronze

After `pncp-ingest contratacoes`, `details` and (nightly) `resultados`, prints:
  - the N suppliers (niFornecedor) with the most homologated value, over every órgão, with how many
    items they won and in how many órgãos;
  - per órgão, its top winner and that winner's share of the órgão's homologated value (a first
    concentration signal);
  - how far homologated unit prices fall from the estimate: the median of
    valorUnitarioHomologado / valorUnitarioEstimado per materialOuServico.

One row per resultado is one UNNEST of `pncp_details.resultados`; each resultado carries its
numeroItem, which joins it to its item (UNNEST of `itens`). Cancelled resultados (with a
dataCancelamento) are kept in bronze and left out here; an SRP item's ranked suppliers beyond the
first (ordemClassificacaoSrp > 1) are registered for the price registry, not homologated winners of
value, so only rank 1 counts. Money columns are exact decimals. Requires DuckDB >= 1.0.
"""

from __future__ import annotations

import argparse
import glob
import sys

import duckdb


def read_parquet(dest: str, dataset: str) -> str | None:
    pattern = f"{dest.rstrip('/')}/{dataset}/*/*/*/*.parquet"
    if not glob.glob(pattern):
        return None
    return f"read_parquet('{pattern.replace(chr(39), chr(39) * 2)}', hive_partitioning = true)"


WINNERS = """
    create view winners as
    select p.orgaoEntidade.cnpj as orgao, p.orgaoEntidade.razaoSocial as orgao_nome,
           r.numeroControlePNCPCompra, r.numeroItem, r.niFornecedor, r.nomeRazaoSocialFornecedor,
           r.valorTotalHomologado, r.valorUnitarioHomologado
    from pncp_details d, unnest(d.resultados) as t(r), pncp p
    where p.numeroControlePNCP = d.numeroControlePNCP
      and r.dataCancelamento is null and coalesce(r.ordemClassificacaoSrp, 1) = 1
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Who won, and at what price against the estimate.")
    parser.add_argument("dest", nargs="?", default="./data/bronze", help="the --dest folder (default ./data/bronze)")
    parser.add_argument("--top", type=int, default=10, help="how many suppliers and órgãos to list (default 10)")
    args = parser.parse_args(argv)
    pncp, details = read_parquet(args.dest, "pncp"), read_parquet(args.dest, "pncp_details")
    if pncp is None or details is None:
        print(f"no contratações or details under {args.dest}: run `pncp-ingest contratacoes`, then `details`")
        return 1
    con = duckdb.connect()
    con.execute(f"create view pncp as select * from {pncp}")
    con.execute(f"create view pncp_details as select * from {details}")
    con.execute(WINNERS)

    print(f"top {args.top} suppliers by homologated value")
    print(
        f"{'niFornecedor':<15}  {'nomeRazaoSocialFornecedor':<40}  {'itens':>5}  {'órgãos':>6}  {'homologado (R$)':>20}"
    )
    rows = con.sql(
        """
        select niFornecedor, any_value(nomeRazaoSocialFornecedor), count(*), count(distinct orgao),
               sum(valorTotalHomologado) as valor
        from winners group by niFornecedor order by valor desc nulls last, niFornecedor limit $top
        """,
        params={"top": args.top},
    ).fetchall()
    for ni, nome, itens, orgaos, valor in rows:
        print(f"{ni:<15}  {(nome or '')[:40]:<40}  {itens:>5}  {orgaos:>6}  {valor or 0:>20,.2f}")

    print(f"\ntop winner of the {args.top} órgãos with the most homologated value")
    print(f"{'órgão':<40}  {'top winner':<40}  {'share':>6}  {'órgão total (R$)':>20}")
    rows = con.sql(
        """
        with per as (
            select orgao, any_value(orgao_nome) as nome, niFornecedor,
                   any_value(nomeRazaoSocialFornecedor) as fornecedor, sum(valorTotalHomologado) as valor
            from winners group by orgao, niFornecedor
        )
        select nome, arg_max(fornecedor, valor), max(valor) / sum(valor), sum(valor) as total
        from per group by orgao, nome having sum(valor) > 0 order by total desc, nome limit $top
        """,
        params={"top": args.top},
    ).fetchall()
    for nome, fornecedor, share, total in rows:
        print(f"{(nome or '')[:40]:<40}  {(fornecedor or '')[:40]:<40}  {share:>6.1%}  {total:>20,.2f}")

    print("\nhomologated unit price against the estimate (median ratio)")
    print(f"{'materialOuServico':<17}  {'itens':>6}  {'median homologado / estimado':>28}")
    rows = con.sql("""
        select i.materialOuServicoNome, count(*),
               median(w.valorUnitarioHomologado / i.valorUnitarioEstimado)
        from winners w
        join (select d.numeroControlePNCP, i.* from pncp_details d, unnest(d.itens) as t(i)) i
          on i.numeroControlePNCP = w.numeroControlePNCPCompra and i.numeroItem = w.numeroItem
        where i.valorUnitarioEstimado > 0
        group by all order by 1
    """).fetchall()
    for kind, count, ratio in rows:
        print(f"{kind or '?':<17}  {count:>6}  {float(ratio):>28.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
