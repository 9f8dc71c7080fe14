"""PNCP daily: today's and yesterday's (Brasília) contratações, then their details, every hour.

The same jobs as examples/crontab. Settings come from the workers' environment (PNCP_DEST,
PNCP_BASE_URL, AWS_* ...; see README "Scaling out"). Needs the pools pncp_consulta and pncp_detail.
"""

from pncp_ingest.airflow import daily_dag

dag = daily_dag("pncp_daily", schedule="15 * * * *")
