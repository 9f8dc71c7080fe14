#!/usr/bin/env bash
# Airflow's side of deploying the pncp DAGs: run once on the scheduler host, with its AIRFLOW_HOME,
# after the DAG files are in the DAGs folder (README "Deploying the DAGs"). Every step is safe to
# run again. Pool sizes: PNCP_CONSULTA_SLOTS (1) and PNCP_DETAIL_SLOTS (1), one egress IP's share; see README "How many
# workers, what concurrency".
set -euo pipefail

# A fresh AIRFLOW_HOME has no metadata tables yet: pools and DAGs need them.
airflow db migrate
airflow pools set pncp_consulta "${PNCP_CONSULTA_SLOTS:-1}" "PNCP consulta API (listings: contratações, contratos, atualizações)"
airflow pools set pncp_detail "${PNCP_DETAIL_SLOTS:-1}" "PNCP detail API (itens, arquivos)"
# Parse the DAGs folder now rather than at the DAG processor's next pass, so the DAGs exist to unpause.
airflow dags reserialize
# New DAGs start paused: a triggered run would wait, queued and silent, for ever.
airflow dags unpause pncp_daily
airflow dags unpause pncp_backfill
