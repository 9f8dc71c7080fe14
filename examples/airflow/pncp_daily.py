"""PNCP daily, every hour: the run's day and the day before (Brasília days of the run's data
interval end), contratações then details; complete days are skipped without a request.

The same jobs as examples/crontab. Settings come from the workers' environment (PNCP_DEST,
PNCP_BASE_URL, AWS_* ...; see README "Scaling out"). setup.sh creates the pools pncp_consulta and
pncp_detail and unpauses this DAG.
"""

from pncp_ingest.airflow import daily_dag

dag = daily_dag("pncp_daily", schedule="15 * * * *")
