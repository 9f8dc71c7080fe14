"""Run pncp-ingest from Airflow 3: task functions and two DAG factories (README "Deploying the DAGs").

The tasks call the library (``run_contratacoes``, ``run_details``), not a shell, and map its
outcomes onto Airflow's:

* a day already done is skipped without an API request, by ``pncp-ingest backfill``'s own rules
  (contratações with their details: ``contratacoes_done``; contratos: listed after the day had
  ended; an update day: captured after it had ended), so a rerun goes straight to what is missing;
* all done → the task succeeds; its one XCom entry is the ``--json`` summary (counts only);
* a day held by another run (exit 3) → the task is rescheduled (``AirflowRescheduleException``)
  after ``held_delay``, without using a retry: the holder is usually finishing the day;
* failures recorded (exit 1), the API or storage unreachable (4), stopped by SIGTERM → the task
  fails and Airflow retries it after ``retry_delay``; the retry does only what is left;
* a usage or configuration error (2) → ``AirflowFailException``: fails at once, no retries.

Settings come from the worker's environment (``PNCP_*``, ``AWS_*``, as for the CLI), or the file
named by ``PNCP_ENV_FILE``; ``settings=`` in the factories overrides them per DAG (no secrets
there: they would sit in the DAG file, which Airflow's UI shows). The task log gets the CLI's
plain lines through Python logging, each at its level (Airflow marks stderr as errors). SIGTERM
(the task is killed, the worker shuts down) winds the run down as the CLI does: commit what is
complete, release the lease, then fail so that a retry continues.

Pools cap each PNCP API family across every worker: ``pncp_consulta`` for listings (contratações,
contratos, atualizações), ``pncp_detail`` for itens/arquivos (README "Scaling out" has the numbers
to start from).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import anyio

from .config import Settings, aws_settings_from, load_settings
from .dates import BRASILIA, day_range, parse_day
from .errors import PncpIngestError, UsageError, collapse
from .logreport import LoggingReporter
from .pipeline import (
    LISTINGS,
    DaySummary,
    Event,
    EventSink,
    RunSummary,
    contratacoes_done,
    new_run_id,
    run_atualizacoes,
    run_contratacoes,
    run_contratos,
    run_details,
    run_resultados,
    updates_captured,
)
from .records import DetailKind
from .records.schema import ATUALIZACOES, CONTRATACOES, CONTRATOS, DETAILS
from .signals import run_until_signalled
from .status import DayStatus, read_status
from .storage import ObjectStore, open_store

try:
    from airflow.sdk import DAG, Param, dag, task, task_group
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowRescheduleException
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        f"pncp_ingest.airflow needs Airflow 3 ({exc}): install pncp-ingest with its airflow extra "
        "(README: Deploying the DAGs)"
    ) from exc

__all__ = [
    "CONSULTA_POOL",
    "DETAIL_POOL",
    "HELD_DELAY",
    "XCOM_FAILURES",
    "backfill_dag",
    "capture_atualizacoes",
    "daily_dag",
    "ingest_contratacoes",
    "ingest_contratos",
    "ingest_details",
    "plan_batches",
    "poll_resultados",
    "run_day",
]

CONSULTA_POOL = "pncp_consulta"
DETAIL_POOL = "pncp_detail"
# A summary's failures are listed in full in the task log; XCom keeps the first few.
XCOM_FAILURES = 20
# A held day's holder is usually finishing it: look again soon, without spending a retry.
HELD_DELAY = timedelta(minutes=5)

# Airflow's task runner sends this logger's records to the task log with their levels.
log = logging.getLogger(__name__)

Work = Callable[[Settings, anyio.Event], Awaitable[RunSummary]]


def _settings(overrides: dict[str, Any] | None) -> Settings:
    return load_settings(os.environ.get("PNCP_ENV_FILE"), **(overrides or {}))


def _days(days: str | Sequence[str]) -> list[date]:
    """ISO days (or ``today`` / ``yesterday``, Brasília) as dates."""
    return [parse_day(d, "days") for d in ([days] if isinstance(days, str) else days)]


def run_day(moment: datetime, days_back: int) -> str:
    """The Brasília day ``days_back`` days before that of ``moment`` (a run's data interval end), as
    an ISO day: a rerun, ``catchup`` or Airflow's backfill does the days of its own interval."""
    today = moment.astimezone(BRASILIA).date()
    return (today - timedelta(days=days_back)).isoformat()


def _run(
    command: str, days: list[date], settings: Settings, work: Work, reporter: LoggingReporter, held_delay: timedelta
) -> dict[str, Any]:
    reporter.start(command, [d.isoformat() for d in days], settings.dest, settings)
    # anyio installs its own SIGTERM handler for the run; Airflow's must be back afterwards.
    previous = signal.getsignal(signal.SIGTERM)

    def winding_down(name: str) -> None:
        reporter.warning(f"{name} received: committing what is complete, then stopping")

    try:
        outcome = anyio.run(
            partial(run_until_signalled, partial(work, settings), on_first=winding_down, signals=(signal.SIGTERM,))
        )
    except BaseException as raised:
        exc = collapse(raised)
        if not isinstance(exc, PncpIngestError):
            raise
        reporter.error(str(exc))
        _raise_for(exc.exit_code, str(exc), held_delay)
        raise  # unreachable: _raise_for raises for every non-zero code
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    summary = outcome.value
    summary.interrupted = outcome.interrupted
    reporter.summary(summary)
    if summary.interrupted:
        _raise_for(143, f"{command} stopped by SIGTERM: committed work is kept; the retry continues", held_delay)
    if summary.exit_code:
        held = ", ".join(f"{d.dataset} {d.day}" for d in summary.held)
        _raise_for(summary.exit_code, f"{command}: {len(summary.failures)} failed, held: {held or 'none'}", held_delay)
    return _xcom(summary)


def _raise_for(code: int, message: str, held_delay: timedelta) -> None:
    """Exit-code meaning → Airflow's: 3 reschedule, 2 fail for good, anything else fail and retry."""
    if code == 3:
        raise AirflowRescheduleException(reschedule_date=datetime.now(UTC) + held_delay)  # type: ignore[no-untyped-call]
    if code == UsageError.exit_code:
        raise AirflowFailException(message)
    raise AirflowException(message)


def _xcom(summary: RunSummary) -> dict[str, Any]:
    """The ``--json`` summary, with at most ``XCOM_FAILURES`` failures listed (their count stays)."""
    doc = summary.to_json()
    doc["failures"] = doc["failures"][:XCOM_FAILURES]
    return doc


def ingest_contratacoes(
    days: str | Sequence[str],
    *,
    modalidades: list[int] | None = None,
    settings: dict[str, Any] | None = None,
    held_delay: timedelta = HELD_DELAY,
    skip_complete: bool = True,
) -> dict[str, Any]:
    """``pncp-ingest contratacoes`` for ``days`` inside an Airflow task; returns the summary for XCom.

    Complete days are skipped without a request (``skip_complete=False`` lists them again)."""
    return _task(
        "contratacoes",
        CONTRATACOES.name,
        days,
        settings,
        held_delay,
        _by_status(contratacoes_done) if skip_complete else None,
        lambda s, when, on_event, stop: run_contratacoes(s, when, modalidades, on_event=on_event, stop=stop),
    )


def ingest_contratos(
    days: str | Sequence[str],
    *,
    settings: dict[str, Any] | None = None,
    held_delay: timedelta = HELD_DELAY,
    skip_complete: bool = True,
) -> dict[str, Any]:
    """``pncp-ingest contratos`` for ``days`` inside an Airflow task; returns the summary for XCom.

    Days whose contratos were listed after the day had ended are skipped without a request."""
    return _task(
        "contratos",
        CONTRATOS.name,
        days,
        settings,
        held_delay,
        _by_status(lambda status: status.contratos_listed) if skip_complete else None,
        lambda s, when, on_event, stop: run_contratos(s, when, on_event=on_event, stop=stop),
    )


def capture_atualizacoes(
    days: str | Sequence[str],
    *,
    datasets: list[str] | None = None,
    details: bool = True,
    settings: dict[str, Any] | None = None,
    held_delay: timedelta = HELD_DELAY,
    skip_complete: bool = True,
) -> dict[str, Any]:
    """``pncp-ingest atualizacoes`` for the update days ``days`` (``datasets``: contratacoes,
    contratos, atas; default all three) inside an Airflow task; returns the summary for XCom.

    An update day whose every dataset was captured after the day had ended is skipped."""
    listings = [LISTINGS[name] for name in datasets or LISTINGS]

    async def captured(store: ObjectStore, day: date) -> bool:
        return all([await updates_captured(store, day, listing) for listing in listings])

    return _task(
        "atualizacoes",
        ATUALIZACOES.name,
        days,
        settings,
        held_delay,
        captured if skip_complete else None,
        lambda s, when, on_event, stop: run_atualizacoes(
            s, when, datasets=[x.name for x in listings], details=details, on_event=on_event, stop=stop
        ),
    )


def ingest_details(
    days: str | Sequence[str],
    *,
    batch_size: int | None = None,
    only: DetailKind | None = None,
    settings: dict[str, Any] | None = None,
    held_delay: timedelta = HELD_DELAY,
    skip_complete: bool = True,
) -> dict[str, Any]:
    """``pncp-ingest details`` for ``days`` inside an Airflow task; returns the summary for XCom.

    Complete days are skipped without reading their listing (``skip_complete=False`` looks again)."""
    return _task(
        "details",
        DETAILS.name,
        days,
        settings,
        held_delay,
        _by_status(contratacoes_done) if skip_complete else None,
        lambda s, when, on_event, stop: run_details(
            s, when, batch_size=batch_size, only=only, on_event=on_event, stop=stop
        ),
    )


def poll_resultados(
    days: str | Sequence[str],
    *,
    settings: dict[str, Any] | None = None,
    held_delay: timedelta = HELD_DELAY,
) -> dict[str, Any]:
    """``pncp-ingest resultados`` over the publication days ``days`` inside an Airflow task: the
    unsettled contratações that are due are polled, settled ones cost nothing, so a run over a year
    of days costs only what is due (its schedule is in the state, not in Airflow)."""
    return _task(
        "resultados",
        DETAILS.name,
        days,
        settings,
        held_delay,
        None,
        lambda s, when, on_event, stop: run_resultados(s, when, on_event=on_event, stop=stop),
    )


Command = Callable[[Settings, list[date], EventSink, anyio.Event], Awaitable[RunSummary]]
Done = Callable[[ObjectStore, date], Awaitable[bool]]
"""Whether a task has nothing left to do for a day (it is skipped without a request)."""


def _by_status(rule: Callable[[DayStatus], bool]) -> Done:
    async def done(store: ObjectStore, day: date) -> bool:
        (status,) = await read_status(store, [day])
        return rule(status)

    return done


async def _done_days(settings: Settings, days: list[date], done: Done) -> tuple[list[date], str]:
    """Which of ``days`` the task has nothing left to do for, and the destination's URL."""
    store = open_store(settings.dest, s3_endpoint=settings.s3_endpoint)
    async with store:
        await store.check()  # a bad destination fails here as it would in the run: one line, its exit code
        return [d for d in days if await done(store, d)], store.url


def _task(
    command: str,
    dataset: str,
    days: str | Sequence[str],
    settings: dict[str, Any] | None,
    held_delay: timedelta,
    skip: Done | None,
    call: Command,
) -> dict[str, Any]:
    """What every task shares: settings (a bad one fails for good), days already done skipped, the run."""
    try:
        when, config = _days(days), _settings(settings)
    except UsageError as exc:
        raise AirflowFailException(str(exc)) from None
    reporter = LoggingReporter(log)

    async def work(s: Settings, stop: anyio.Event) -> RunSummary:
        done, url = await _done_days(s, when, skip) if skip is not None else ([], s.dest)
        for day in done:
            reporter.event(Event("day_end", dataset, day, "already complete: skipped"))
        todo = [d for d in when if d not in done]
        if todo:
            summary = await call(s, todo, reporter.event, stop)
        else:
            summary = RunSummary(command, new_run_id(), [], url)
        summary.dates = [d.isoformat() for d in when]
        summary.days[:0] = [DaySummary(d.isoformat(), dataset, status="skipped") for d in done]
        return summary

    # AWS_* lines of PNCP_ENV_FILE reach botocore for this run only, as for the CLI.
    with aws_settings_from(os.environ.get("PNCP_ENV_FILE")):
        return _run(command, when, config, work, reporter, held_delay)


def plan_batches(first: str, last: str, days_per_task: int = 1) -> list[list[str]]:
    """The days from ``first`` to ``last`` (inclusive) in batches: one mapped task each."""
    try:
        days = day_range(parse_day(first, "from"), parse_day(last, "to"), first_option="from")
    except UsageError as exc:
        raise AirflowFailException(str(exc)) from None
    iso = [d.isoformat() for d in days]
    return [iso[i : i + days_per_task] for i in range(0, len(iso), days_per_task)]


def _run_days(context: dict[str, Any], *days_back: int) -> list[str]:
    """The days of a task's DAG run, from the task's context (Airflow passes it as keyword
    arguments): each ``days_back`` days before the Brasília day of the run's data interval end (a
    manual run without one: its logical date, else when it was asked to run)."""
    dag_run = context.get("dag_run")
    moment = (
        context.get("data_interval_end")
        or context.get("logical_date")
        or (dag_run.run_after if dag_run is not None else None)
    )
    if moment is None:
        raise AirflowFailException("the run has no data interval, logical date or run_after: no day to ingest")
    return [run_day(moment, back) for back in days_back]


def daily_dag(
    dag_id: str = "pncp_daily",
    *,
    schedule: str = "15 * * * *",
    today_batch_size: int | None = 2000,
    settings: dict[str, Any] | None = None,
    retries: int = 3,
    retry_delay: timedelta = timedelta(minutes=20),
    held_delay: timedelta = HELD_DELAY,
    consulta_pool: str = CONSULTA_POOL,
    detail_pool: str = DETAIL_POOL,
    atualizacoes_back: int = 3,
    resultados_back: int = 365,
    **dag_kwargs: Any,
) -> DAG:
    """The run's day and the day before (Brasília days of its data interval's end): contratações
    then details, and contratos, each day; then the updates PNCP listed the day before and the
    ``atualizacoes_back`` days before it, for contratações, contratos and atas: the crontab's jobs.

    Then the resultados of the contratações published on the day before and the
    ``resultados_back`` days before it (a year): only those due for a poll cost requests, so after
    the night's run the hourly ones find almost nothing due. A day already done costs no request,
    so after the first run past midnight the day before is only looked at.

    Hourly by default; the run's day takes at most ``today_batch_size`` contratações of details
    per run so a run fits its hour (the next run continues). A failed task is retried ``retries``
    times, ``retry_delay`` (20 minutes) apart; a day held by another run is looked at again after
    ``held_delay`` (5 minutes), without spending a retry."""
    task_args: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay, "multiple_outputs": False}

    @dag(
        dag_id=dag_id,
        schedule=schedule,
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["pncp"],
        **dag_kwargs,
    )
    def daily() -> None:
        for when, back in (("today", 0), ("yesterday", 1)):
            batch = today_batch_size if back == 0 else None

            @task(task_id=f"contratacoes_{when}", pool=consulta_pool, **task_args)
            def listing(days_back: int = back, **context: Any) -> dict[str, Any]:
                return ingest_contratacoes(_run_days(context, days_back), settings=settings, held_delay=held_delay)

            @task(task_id=f"details_{when}", pool=detail_pool, **task_args)
            def detail(days_back: int = back, batch_size: int | None = batch, **context: Any) -> dict[str, Any]:
                days = _run_days(context, days_back)
                return ingest_details(days, batch_size=batch_size, settings=settings, held_delay=held_delay)

            @task(task_id=f"contratos_{when}", pool=consulta_pool, **task_args)
            def contratos(days_back: int = back, **context: Any) -> dict[str, Any]:
                return ingest_contratos(_run_days(context, days_back), settings=settings, held_delay=held_delay)

            listing() >> detail()
            contratos()

        @task(task_id="atualizacoes", pool=consulta_pool, **task_args)
        def atualizacoes(**context: Any) -> dict[str, Any]:
            days = _run_days(context, *range(atualizacoes_back + 1, 0, -1))
            return capture_atualizacoes(days, settings=settings, held_delay=held_delay)

        @task(task_id="resultados", pool=detail_pool, **task_args)
        def resultados(**context: Any) -> dict[str, Any]:
            return poll_resultados(
                _run_days(context, *range(resultados_back + 1, 0, -1)), settings=settings, held_delay=held_delay
            )

        atualizacoes() >> resultados()

    return daily()


def backfill_dag(
    dag_id: str = "pncp_backfill",
    *,
    first: str = "2025-01-01",
    last: str = "2025-01-31",
    days_per_task: int = 1,
    settings: dict[str, Any] | None = None,
    retries: int = 5,
    retry_delay: timedelta = timedelta(minutes=10),
    held_delay: timedelta = HELD_DELAY,
    max_active_days: int = 16,
    consulta_pool: str = CONSULTA_POOL,
    detail_pool: str = DETAIL_POOL,
    **dag_kwargs: Any,
) -> DAG:
    """A range of days, one mapped task group per ``days_per_task`` days: contratações, then
    details; and contratos.

    Triggered by hand (no schedule); ``first`` and ``last`` are the defaults of the run's ``from``
    and ``to`` params, so one DAG serves any range. Complete days cost no API request, so a
    re-triggered range goes straight to what is missing. A failed task is retried ``retries``
    times, ``retry_delay`` (10 minutes) apart; a day held by another run is looked at again after
    ``held_delay`` (5 minutes), without spending a retry."""
    task_args: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay, "multiple_outputs": False}

    @dag(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
        tags=["pncp"],
        params={
            "from": Param(first, type="string", description="first day, YYYY-MM-DD"),
            "to": Param(last, type="string", description="last day (inclusive), YYYY-MM-DD"),
        },
        **dag_kwargs,
    )
    def backfill() -> None:
        @task
        def plan(params: dict[str, Any] | None = None) -> list[list[str]]:
            assert params is not None  # Airflow passes the run's params
            return plan_batches(str(params["from"]), str(params["to"]), days_per_task)

        @task_group(group_id="day")
        def one_batch(days: list[str]) -> None:
            @task(pool=consulta_pool, max_active_tis_per_dag=max_active_days, **task_args)
            def contratacoes(days: list[str]) -> dict[str, Any]:
                return ingest_contratacoes(days, settings=settings, held_delay=held_delay)

            @task(pool=detail_pool, max_active_tis_per_dag=max_active_days, **task_args)
            def details(days: list[str]) -> dict[str, Any]:
                return ingest_details(days, settings=settings, held_delay=held_delay)

            @task(pool=consulta_pool, max_active_tis_per_dag=max_active_days, **task_args)
            def contratos(days: list[str]) -> dict[str, Any]:
                return ingest_contratos(days, settings=settings, held_delay=held_delay)

            contratacoes(days) >> details(days)
            contratos(days)

        one_batch.expand(days=plan())

    return backfill()
