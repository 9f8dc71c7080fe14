"""PNCP backfill: a range of days, one mapped task group per day (contratações, then details).

Trigger it with the range as params, e.g.
    airflow dags trigger pncp_backfill -c '{"from": "2024-01-01", "to": "2024-12-31"}'
Complete days cost no API request, so triggering the same range again fills only what is missing.
Settings come from the workers' environment (see README "Scaling out"); setup.sh unpauses this DAG
(a run triggered on a paused DAG waits for ever).
"""

from pncp_ingest.airflow import backfill_dag

dag = backfill_dag("pncp_backfill", first="2025-01-01", last="2025-01-07", days_per_task=1)
