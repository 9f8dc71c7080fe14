"""`make demo`: start the PNCP simulator on loopback, ingest one day, show what landed.

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--date", default="2025-10-22")
    parser.add_argument("--dest", default="./data/demo")
    parser.add_argument("--per-day", type=int, default=300, help="simulated contratações per day")
    args = parser.parse_args()

    with SimulatorProcess(seed=42, per_day=args.per_day, latency_ms=20) as sim:
        print(f"simulator: {sim.base_url} ({args.per_day} contratações on {args.date})", flush=True)
        env = {**os.environ, "PNCP_CONSULTA_RATE": "0", "PNCP_CONSULTA_CONCURRENCY": "4"}
        command = [sys.executable, "-m", "pncp_ingest", "contratacoes", "--date", args.date,
                   "--dest", args.dest, "--base-url", sim.base_url]
        print("$ pncp-ingest " + " ".join(command[3:]), flush=True)
        code = subprocess.call(command, env=env)
        if code != 0:
            return code
        expected = len(sim.truth(args.date)["contratacoes"])

    glob = f"{args.dest}/pncp/*/*/*/*.parquet"
    print(f"\nwhat landed (DuckDB: read_parquet('{glob}', hive_partitioning=true)):")
    duckdb.sql(f"""
        select year, month, day, count(*) as contratacoes, count(distinct numeroControlePNCP) as distinct_ids,
               sum(valorTotalEstimado) as valor_total_estimado
        from read_parquet('{glob}', hive_partitioning=true)
        group by all order by all
    """).show()
    landed = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true) "
                        f"where make_date(year, month, day) = DATE '{args.date}'").fetchall()[0][0]
    print(f"{landed} rows for {args.date}; the simulator served {expected}.")
    return 0 if landed == expected else 1


if __name__ == "__main__":
    sys.exit(main())
