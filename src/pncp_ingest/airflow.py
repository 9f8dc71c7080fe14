"""Run pncp-ingest from Airflow 3: task functions and two DAG factories (``pip install 'pncp-ingest[airflow]'``).

The tasks call the library (``run_contratacoes``, ``run_details``), not a shell, and map its
outcomes onto Airflow's:

* all done → the task succeeds; its XCom is the ``--json`` summary (counts only, never data);
* a day held by another run (exit 3) → the task is rescheduled (``AirflowRescheduleException``)
  after ``held_delay``, without using a retry: the holder is usually finishing the day;
* failures recorded (exit 1), the API or storage unreachable (4), stopped by SIGTERM → the task
  fails and Airflow retries it (``retries`` per task); the retry does only what is left;
* a usage or configuration error (2) → ``AirflowFailException``: fails at once, no retries.

Settings come from the worker's environment (``PNCP_*``, ``AWS_*``, as for the CLI), or the file
named by ``PNCP_ENV_FILE``; ``settings=`` in the factories overrides them per DAG (no secrets
there: they would sit in the DAG file, which Airflow's UI shows). Output is the CLI's plain lines, in the task
log. SIGTERM (the task is killed, the worker shuts down) winds the run down as the CLI does:
commit what is complete, release the lease, then fail so that a retry continues.

Pools cap each PNCP API family across every worker: ``pncp_consulta`` for listings, ``pncp_detail``
for itens/arquivos (README "Scaling out" has the numbers to start from).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio

from .config import Settings, load_settings
from .dates import day_range, parse_day
from .errors import PncpIngestError, UsageError, collapse
from .pipeline import EventSink, RunSummary, run_contratacoes, run_details
from .records import DetailKind
from .report import PlainReporter

try:
    from airflow.sdk import DAG, Param, dag, task, task_group
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowRescheduleException
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        f"pncp_ingest.airflow needs Airflow 3 ({exc}): install it with pip install 'pncp-ingest[airflow]'"
    ) from exc

__all__ = [
    "CONSULTA_POOL",
    "DETAIL_POOL",
    "XCOM_FAILURES",
    "backfill_dag",
    "daily_dag",
    "ingest_contratacoes",
    "ingest_details",
    "plan_batches",
]

CONSULTA_POOL = "pncp_consulta"
DETAIL_POOL = "pncp_detail"
# A summary's failures are listed in full in the task log; XCom keeps the first few.
XCOM_FAILURES = 20
HELD_DELAY = timedelta(minutes=5)

Work = Callable[[Settings, anyio.Event], Awaitable[RunSummary]]


def _settings(overrides: dict[str, Any] | None) -> Settings:
    return load_settings(os.environ.get("PNCP_ENV_FILE"), **(overrides or {}))


def _days(days: str | Sequence[str]) -> list[date]:
    """ISO days (or ``today`` / ``yesterday``, Brasília) as dates."""
    return [parse_day(d, "days") for d in ([days] if isinstance(days, str) else days)]


async def _until_sigterm(work: Work, settings: Settings, reporter: PlainReporter) -> RunSummary:
    """Run ``work``; SIGTERM asks it to wind down (a second one stops at once), as in the CLI."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM) as received:
                async for _ in received:
                    if stop.is_set():
                        tg.cancel_scope.cancel()
                        return
                    stop.set()
                    reporter.line("SIGTERM received: committing what is complete, then stopping", always=True)

        # Signals reach only the main thread; elsewhere Airflow's own handling applies.
        if threading.current_thread() is threading.main_thread():
            tg.start_soon(watch)
        summary = await work(settings, stop)
        if stop.is_set():
            summary.interrupted = "SIGTERM"
        tg.cancel_scope.cancel()
    return summary


def _run(
    command: str, days: list[date], settings: Settings, work: Work, reporter: PlainReporter, held_delay: timedelta
) -> dict[str, Any]:
    reporter.start(command, [d.isoformat() for d in days], settings.dest, settings)
    # anyio installs its own SIGTERM handler for the run; Airflow's must be back afterwards.
    previous = signal.getsignal(signal.SIGTERM)
    try:
        summary = anyio.run(_until_sigterm, work, settings, reporter)
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
) -> dict[str, Any]:
    """``pncp-ingest contratacoes`` for ``days`` inside an Airflow task; returns the summary for XCom."""
    return _task(
        "contratacoes",
        days,
        settings,
        held_delay,
        lambda s, when, on_event, stop: run_contratacoes(s, when, modalidades, on_event=on_event, stop=stop),
    )


def ingest_details(
    days: str | Sequence[str],
    *,
    batch_size: int | None = None,
    only: DetailKind | None = None,
    settings: dict[str, Any] | None = None,
    held_delay: timedelta = HELD_DELAY,
) -> dict[str, Any]:
    """``pncp-ingest details`` for ``days`` inside an Airflow task; returns the summary for XCom."""
    return _task(
        "details",
        days,
        settings,
        held_delay,
        lambda s, when, on_event, stop: run_details(
            s, when, batch_size=batch_size, only=only, on_event=on_event, stop=stop
        ),
    )


Command = Callable[[Settings, list[date], EventSink, anyio.Event], Awaitable[RunSummary]]


def _task(
    command: str,
    days: str | Sequence[str],
    settings: dict[str, Any] | None,
    held_delay: timedelta,
    call: Command,
) -> dict[str, Any]:
    """What every task shares: settings (a bad one fails for good), plain log lines, the run."""
    try:
        when, config = _days(days), _settings(settings)
    except UsageError as exc:
        raise AirflowFailException(str(exc)) from None
    reporter = PlainReporter(stream=sys.stderr)

    async def work(s: Settings, stop: anyio.Event) -> RunSummary:
        return await call(s, when, reporter.event, stop)

    return _run(command, when, config, work, reporter, held_delay)


def plan_batches(first: str, last: str, days_per_task: int = 1) -> list[list[str]]:
    """The days from ``first`` to ``last`` (inclusive) in batches: one mapped task each."""
    try:
        days = day_range(parse_day(first, "from"), parse_day(last, "to"), first_option="from")
    except UsageError as exc:
        raise AirflowFailException(str(exc)) from None
    iso = [d.isoformat() for d in days]
    return [iso[i : i + days_per_task] for i in range(0, len(iso), days_per_task)]


def daily_dag(
    dag_id: str = "pncp_daily",
    *,
    schedule: str = "15 * * * *",
    today_batch_size: int | None = 2000,
    settings: dict[str, Any] | None = None,
    retries: int = 3,
    retry_delay: timedelta = timedelta(minutes=20),
    consulta_pool: str = CONSULTA_POOL,
    detail_pool: str = DETAIL_POOL,
    **dag_kwargs: Any,
) -> DAG:
    """Today's and yesterday's (Brasília) contratações, then their details: the crontab's two jobs.

    Hourly by default; today's details take at most ``today_batch_size`` contratações per run so a
    run fits its hour (the next run continues)."""
    task_args: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay}

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
        for when in ("today", "yesterday"):

            @task(task_id=f"contratacoes_{when}", pool=consulta_pool, **task_args)
            def listing(day: str = when) -> dict[str, Any]:
                return ingest_contratacoes(day, settings=settings)

            batch = today_batch_size if when == "today" else None

            @task(task_id=f"details_{when}", pool=detail_pool, **task_args)
            def detail(day: str = when, batch_size: int | None = batch) -> dict[str, Any]:
                return ingest_details(day, batch_size=batch_size, settings=settings)

            listing() >> detail()

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
    max_active_days: int = 16,
    consulta_pool: str = CONSULTA_POOL,
    detail_pool: str = DETAIL_POOL,
    **dag_kwargs: Any,
) -> DAG:
    """A range of days, one mapped task group per ``days_per_task`` days: contratações, then details.

    Triggered by hand (no schedule); ``first`` and ``last`` are the defaults of the run's ``from``
    and ``to`` params, so one DAG serves any range. Complete days cost no API request, so a
    re-triggered range goes straight to what is missing."""
    task_args: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay}

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
                return ingest_contratacoes(days, settings=settings)

            @task(pool=detail_pool, max_active_tis_per_dag=max_active_days, **task_args)
            def details(days: list[str]) -> dict[str, Any]:
                return ingest_details(days, settings=settings)

            contratacoes(days) >> details(days)

        one_batch.expand(days=plan())

    return backfill()
