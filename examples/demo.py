"""`make demo`: start the PNCP simulator on loopback, ingest one day (contratações, then their
itens and arquivos), show what landed.

Runs the real `pncp-ingest` command against the simulator (the real PNCP API is not needed),
then reads the bronze layer back with DuckDB, the way an analyst would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import duckdb

from pncp_ingest.testing import SimulatorProcess

# Without these DuckDB reads the zero-padded month=09 / day=05 as text.
HIVE_TYPES = "{'year': INTEGER, 'month': INTEGER, 'day': INTEGER}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", default="2025-10-22")
    parser.add_argument("--dest", default="./data/demo")
    parser.add_argument("--per-day", type=int, default=300, help="simulated contratações per day")
    args = parser.parse_args()

    with SimulatorProcess(seed=42, per_day=args.per_day, big_items=True, latency_ms=20) as sim:
        print(f"simulator: {sim.base_url} ({args.per_day} contratações on {args.date})", flush=True)
        env = {
            **os.environ,
            "PNCP_CONSULTA_RATE": "0",
            "PNCP_CONSULTA_CONCURRENCY": "4",
            "PNCP_RATE": "0",
            "PNCP_CONCURRENCY": "16",
        }
        for step in ("contratacoes", "details"):
            command = [
                sys.executable,
                "-m",
                "pncp_ingest",
                step,
                "--date",
                args.date,
                "--dest",
                args.dest,
                "--base-url",
                sim.base_url,
            ]
            print("\n$ pncp-ingest " + " ".join(command[3:]), flush=True)
            code = subprocess.call(command, env=env)
            if code != 0:
                return code
        truth = sim.truth(args.date)
        expected = len(truth["contratacoes"])
        expected_itens = sum(truth["itens"].values())

    glob = f"{args.dest}/pncp/*/*/*/*.parquet"
    print(f"\nwhat landed (DuckDB: read_parquet('{glob}', hive_partitioning=true, hive_types={HIVE_TYPES})):")
    duckdb.sql(f"""
        select year, month, day, count(*) as contratacoes, count(distinct numeroControlePNCP) as distinct_ids,
               sum(valorTotalEstimado) as valor_total_estimado
        from read_parquet('{glob}', hive_partitioning=true, hive_types={HIVE_TYPES})
        group by all order by all
    """).show()
    details = f"{args.dest}/pncp_details/*/*/*/*.parquet"
    print(f"details (DuckDB: read_parquet('{details}', hive_partitioning=true, hive_types={HIVE_TYPES})):")
    duckdb.sql(f"""
        select year, month, day, count(*) as contratacoes, sum(len(itens)) as itens, sum(len(arquivos)) as arquivos,
               max(metadata.total_itens) as most_itens_in_one
        from read_parquet('{details}', hive_partitioning=true, hive_types={HIVE_TYPES})
        group by all order by all
    """).show()
    landed = duckdb.sql(
        f"select count(*) from read_parquet('{glob}', hive_partitioning=true, hive_types={HIVE_TYPES}) "
        f"where make_date(year, month, day) = DATE '{args.date}'"
    ).fetchall()[0][0]
    itens = duckdb.sql(
        f"select sum(len(itens)) from read_parquet('{details}', hive_partitioning=true, hive_types={HIVE_TYPES})"
    ).fetchall()[0][0]
    print(
        f"{landed} contratações and {itens} itens for {args.date}; the simulator served {expected} and {expected_itens}."
    )
    return 0 if (landed, itens) == (expected, expected_itens) else 1


if __name__ == "__main__":
    sys.exit(main())
