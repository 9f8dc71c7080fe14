"""The ``pncp-ingest`` command line: parse, call the engine, present. No ingestion logic here.

Exit codes: 0 all done; 1 finished with failures recorded (a rerun retries them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the
storage is unreachable; 130 / 143 stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import enum
import json as _json
import os
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date as Day
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer

from . import __version__
from .config import Settings, load_settings, unknown_settings
from .dates import brasilia_today, day_range, parse_day
from .errors import PncpIngestError, StoppedAtOnce, UsageError, collapse

if TYPE_CHECKING:  # the engine (pyarrow, aioboto3) is imported by the command that runs, not by --help
    from .pipeline import RunSummary
    from .report import Reporter

EXIT_CODES = """Exit codes: 0 all done; 1 finished with failures recorded (run again to retry them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the storage is unreachable;
130 / 143 stopped by Ctrl-C (SIGINT) / SIGTERM (committed work is kept: run the same command again)."""

app = typer.Typer(
    help=f"Land Brazil's PNCP procurement data as Hive-partitioned Parquet (local folder or S3).\n\n{EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Options every command takes. None means "not given": the environment, .env or default decides.
Dest = Annotated[
    str | None,
    typer.Option(
        "--dest", help="Destination: a folder, or s3://bucket[/prefix]. [env PNCP_DEST; default ./data/bronze]"
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option("--base-url", help="PNCP API base. [env PNCP_BASE_URL; default https://pncp.gov.br/api]"),
]
Concurrency = Annotated[
    int | None,
    typer.Option("--concurrency", help="In-flight requests to the detail API. [env PNCP_CONCURRENCY; default 8]"),
]
Rate = Annotated[
    float | None,
    typer.Option("--rate", help="Requests/s to the detail API, 0 = no limit. [env PNCP_RATE; default 10]"),
]
Timeout = Annotated[float | None, typer.Option("--timeout", help="Seconds per request. [env PNCP_TIMEOUT; default 60]")]
MaxRetries = Annotated[
    int | None,
    typer.Option("--max-retries", help="Retries per request on 429/5xx/timeouts. [env PNCP_MAX_RETRIES; default 6]"),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON summary object on stdout at the end.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the summary.")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Every event, and tracebacks on errors.")]
EnvFile = Annotated[str, typer.Option("--env-file", help="Settings file read beneath the environment.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pncp-ingest {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Land Brazil's PNCP procurement data as Hive-partitioned Parquet."""


def make_reporter(*, quiet: bool, verbose: bool) -> Reporter:
    """Rich panels when a person is watching (stderr is a terminal), plain lines otherwise."""
    if sys.stderr.isatty():
        from .live import RichReporter

        return RichReporter(quiet=quiet, verbose=verbose)
    from .report import PlainReporter

    return PlainReporter(quiet=quiet, verbose=verbose)


Work = Callable[[Settings, "Reporter", anyio.Event], Awaitable["RunSummary"]]
SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def _run_until_signalled(work: Work, settings: Settings, reporter: Reporter) -> RunSummary:
    """Run ``work``; SIGINT/SIGTERM ask it to wind down (commit what is complete, release the
    lease), a second signal stops it at once (:class:`StoppedAtOnce`)."""
    stop = anyio.Event()
    received: list[str] = []
    summary: RunSummary | None = None
    try:
        async with anyio.create_task_group() as tg:

            async def watch() -> None:
                with anyio.open_signal_receiver(*SIGNALS) as signals:
                    async for signum in signals:
                        received.append(signal.Signals(signum).name)
                        if stop.is_set():
                            tg.cancel_scope.cancel()
                            return
                        stop.set()
                        reporter.line(
                            f"{received[0]} received: committing what is complete, then stopping "
                            "(send it again to stop at once)",
                            always=True,
                        )

            tg.start_soon(watch)
            summary = await work(settings, reporter, stop)
            tg.cancel_scope.cancel()
    except BaseException as raised:
        if len(received) > 1:  # whatever the cancelled work raised on its way out
            raise StoppedAtOnce(received[-1]) from None
        exc = collapse(raised)  # the task group wraps what the run raised
        if exc is raised:
            raise
        raise exc from None
    if summary is None:  # the second signal cancelled the work before it returned
        raise StoppedAtOnce(received[-1])
    summary.interrupted = received[0] if received else None
    return summary


def _stop_now(signum: int, frame: FrameType | None) -> None:
    raise StoppedAtOnce(signal.Signals(signum).name, second=False)


@contextmanager
def _signals_stop_at_once() -> Iterator[None]:
    """Outside the event loop (start-up, the summary), a signal stops at once too, with the same
    line and exit code. The event loop's own handlers replace these while it runs and put the
    defaults back when it ends, hence :func:`_reinstall`.

    Leaving, a process run from the command line ignores further signals: its work is done and
    it exits within moments, so a late second Ctrl-C must not turn exit 130 into a traceback or
    a death by signal. Called in-process (tests), the caller's handlers are put back."""
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    _reinstall()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if _exiting_process else handler)


_exiting_process = False  # set by main(): this interpreter ends when the command does


def _reinstall() -> None:
    for sig in SIGNALS:
        signal.signal(sig, _stop_now)


def _execute(command: str, common: dict[str, Any], overrides: dict[str, Any], work: Work) -> None:
    """Shared by every command: settings, reporting, signals, JSON, and errors → exit codes."""
    from .report import print_json

    reporter = make_reporter(quiet=common["quiet"], verbose=common["verbose"])
    settings: Settings | None = None
    again = f"run the same {command} command again to continue"
    with _signals_stop_at_once():
        try:
            settings = load_settings(common["env_file"], **overrides)
            for warning in unknown_settings(common["env_file"]):
                reporter.warning(warning)
            try:
                summary = anyio.run(_run_until_signalled, work, settings, reporter)
            finally:
                _reinstall()
            reporter.summary(summary)
            if summary.interrupted:
                reporter.line(
                    f"stopped by {summary.interrupted}: committed work is kept and the lease released; {again}",
                    always=True,
                )
            if common["json"]:
                print_json(summary)
        except StoppedAtOnce as exc:
            reporter.error(f"{exc}; {again}")
            _json_after_error(command, common, settings, exc, interrupted=exc.signal_name)
            raise typer.Exit(exc.exit_code) from None
        except PncpIngestError as exc:
            reporter.error(str(exc))
            if common["verbose"]:
                traceback.print_exc()
            _json_after_error(command, common, settings, exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C before the event loop's handler was in place
            reporter.error(f"stopped at once by SIGINT: committed work is kept; {again}")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so in one line, keep the traceback for --verbose
            reporter.error(f"unexpected {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)")
            if common["verbose"]:
                traceback.print_exc()
            _json_after_error(command, common, settings, exc)
            raise typer.Exit(1) from None
    raise typer.Exit(summary.exit_code)


def _json_after_error(
    command: str,
    common: dict[str, Any],
    settings: Settings | None,
    exc: Exception,
    interrupted: str | None = None,
) -> None:
    """With --json, one object per run whatever happened: the partial summary if the run had
    started, else one that carries the error and the exit code (1 for a bug)."""
    if not common["json"]:
        return
    from .pipeline import RunSummary
    from .report import print_json

    summary: RunSummary | None = None
    if isinstance(exc, PncpIngestError):
        summary, error, code = exc.summary, str(exc), exc.exit_code
    else:
        error, code = f"unexpected {type(exc).__name__}: {exc}", 1
    if summary is None:
        summary = RunSummary(command, "", [], settings.dest if settings else "")
    summary.error, summary.error_exit_code = error, code
    summary.interrupted = interrupted or summary.interrupted
    print_json(summary)


Date = Annotated[str, typer.Option("--date", help="Day to ingest: YYYY-MM-DD, today or yesterday (Brasília).")]
To = Annotated[str | None, typer.Option("--to", help="Last day of a range (inclusive).")]
CheckpointEvery = Annotated[
    int | None,
    typer.Option("--checkpoint-every", help="Commit every N contratações. [env PNCP_CHECKPOINT_EVERY; default 50]"),
]
SETTINGS_FLAGS = ("dest", "base_url", "concurrency", "rate", "timeout", "max_retries", "checkpoint_every")
OUTPUT_FLAGS = ("json", "quiet", "verbose", "env_file")


def _split(flags: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A command's locals → (output options, setting overrides)."""
    return {k: flags[k] for k in OUTPUT_FLAGS}, {k: flags.get(k) for k in SETTINGS_FLAGS}


def _days(date: str, to: str | None, first: str = "--date") -> list[Day]:
    return day_range(parse_day(date, first), parse_day(to, "--to") if to else None, first_option=first)


def _ingest_days(date: str, to: str | None, reporter: Reporter, first: str = "--date") -> list[Day]:
    """The days to ingest: PNCP has nothing after today (Brasília), so a range entirely in the
    future is an error and one that ends in it a warning."""
    days = _days(date, to, first)
    today = brasilia_today()
    if days[0] > today:
        raise UsageError(
            f"{first} {days[0]} is in the future (today is {today} in Brasília): PNCP has nothing for it yet"
        )
    if days[-1] > today:
        reporter.warning(
            f"--to {days[-1]} is in the future (today is {today} in Brasília): the days after today have nothing yet"
        )
    return days


def _modalidades(values: list[str] | None) -> list[int] | None:
    """``--modalidade 6 --modalidade 8`` or ``--modalidade 6,8`` → [6, 8]; None means every one."""
    codes: list[int] = []
    for value in values or []:
        for part in value.split(","):
            try:
                code = int(part.strip())
            except ValueError:
                code = 0
            if code < 1:
                raise UsageError(
                    f"--modalidade {value!r} is not a modalidade code: give positive codes, "
                    "e.g. --modalidade 6 --modalidade 8 or --modalidade 6,8"
                )
            codes.append(code)
    return codes or None


Modalidade = Annotated[
    list[str] | None,
    typer.Option(
        "--modalidade",
        metavar="CODE",
        help="Only these modalidade codes: repeat the flag or separate with commas (6,8). Default: every one PNCP serves.",
    ),
]


@app.command()
def contratacoes(
    date: Date,
    to: To = None,
    modalidade: Modalidade = None,
    checkpoint_every: CheckpointEvery = None,
    dest: Dest = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    json: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    env_file: EnvFile = ".env",
) -> None:
    """List the day's contratações (every modalidade, every page) and commit the new ones.

    Example: pncp-ingest contratacoes --date yesterday --dest s3://lake/bronze --json
    """
    common, overrides = _split(locals())

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_contratacoes

        days = _ingest_days(date, to, reporter)
        codes = _modalidades(modalidade)
        reporter.start("contratacoes", [d.isoformat() for d in days], settings.dest, settings)
        return await run_contratacoes(settings, days, codes, on_event=reporter.event, stop=stop)

    _execute("contratacoes", common, overrides, work)


class Only(str, enum.Enum):
    itens = "itens"
    arquivos = "arquivos"
    resultados = "resultados"


@app.command()
def details(
    date: Date,
    to: To = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume", help="Skip what is committed (default), or refetch the day and replace its details."
        ),
    ] = True,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", min=1, help="Take at most N pending contratações this run; the next run continues."
        ),
    ] = None,
    checkpoint_every: CheckpointEvery = None,
    only: Annotated[
        Only | None,
        typer.Option("--only", help="Fetch one kind only: itens, arquivos or resultados (with their itens)."),
    ] = None,
    dest: Dest = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    json: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    env_file: EnvFile = ".env",
) -> None:
    """Fetch itens (every page) and arquivos for the day's committed contratações.

    Example: pncp-ingest details --date yesterday --dest s3://lake/bronze --batch-size 2000
    """
    common, overrides = _split(locals())

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_details

        days = _ingest_days(date, to, reporter)
        reporter.start(
            "details",
            [d.isoformat() for d in days],
            settings.dest,
            settings,
            resume="yes" if resume else "no (refetch and replace)",
            **({"batch size": batch_size} if batch_size else {}),
            **({"only": only.value} if only else {}),
        )
        return await run_details(
            settings,
            days,
            resume=resume,
            batch_size=batch_size,
            only=only.value if only else None,
            on_event=reporter.event,
            stop=stop,
        )

    _execute("details", common, overrides, work)


@app.command()
def resultados(
    date: Date,
    to: To = None,
    back: Annotated[
        int, typer.Option("--back", min=0, help="Also the N publication days before --date (e.g. 365 nightly).")
    ] = 0,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Poll every unsettled contratação now, due or not (settled ones still cost nothing)."
        ),
    ] = False,
    checkpoint_every: CheckpointEvery = None,
    dest: Dest = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    json: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    env_file: EnvFile = ".env",
) -> None:
    """Bring the resultados (who won each item, at what price) of the day(s)' contratações up to date:
    settled ones cost no request, unsettled ones are polled when due (1, 2, 4 … up to 7 days apart).

    Example: pncp-ingest resultados --date today --back 365 --dest s3://lake/bronze --json
    """
    common, overrides = _split(locals())

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from datetime import timedelta

        from .pipeline import run_resultados

        days = _ingest_days(date, to, reporter)
        days = [days[0] - timedelta(days=n) for n in range(back, 0, -1)] + days
        reporter.start(
            "resultados", [d.isoformat() for d in days], settings.dest, settings, force="yes" if force else "no"
        )
        return await run_resultados(settings, days, force=force, on_event=reporter.event, stop=stop)

    _execute("resultados", common, overrides, work)


@app.command()
def backfill(
    from_: Annotated[str, typer.Option("--from", help="First day: YYYY-MM-DD, today or yesterday (Brasília).")],
    to: Annotated[str, typer.Option("--to", help="Last day (inclusive).")],
    with_details: Annotated[
        bool, typer.Option("--details/--no-details", help="Fetch itens and arquivos too (default).")
    ] = True,
    with_atualizacoes: Annotated[
        bool, typer.Option("--atualizacoes", help="Then capture each day's updates too (as `atualizacoes`).")
    ] = False,
    modalidade: Modalidade = None,
    checkpoint_every: CheckpointEvery = None,
    dest: Dest = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    json: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    env_file: EnvFile = ".env",
) -> None:
    """Each day of a range in order: contratações, then details. Complete days are skipped.

    Resumable: stop it (Ctrl-C, SIGTERM, a crash) and run the same command again.

    Example: pncp-ingest backfill --from 2025-01-01 --to 2025-01-31 --dest s3://lake/bronze
    """
    common, overrides = _split(locals())

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_backfill

        days = _ingest_days(from_, to, reporter, first="--from")
        codes = _modalidades(modalidade)
        reporter.start(
            "backfill", [d.isoformat() for d in days], settings.dest, settings, details="yes" if with_details else "no"
        )
        return await run_backfill(
            settings,
            days,
            details=with_details,
            atualizacoes=with_atualizacoes,
            modalidades=codes,
            on_event=reporter.event,
            stop=stop,
        )

    _execute("backfill", common, overrides, work)


@app.command()
def atualizacoes(
    date: Annotated[
        str, typer.Option("--date", help="Update day to capture: YYYY-MM-DD, today or yesterday (Brasília).")
    ],
    to: To = None,
    back: Annotated[
        int,
        typer.Option(
            "--back", min=0, help="Also the N update days before --date (records move between windows: re-list them)."
        ),
    ] = 0,
    modalidade: Modalidade = None,
    with_details: Annotated[
        bool,
        typer.Option("--details/--no-details", help="Fetch again the itens and arquivos of what changed (default)."),
    ] = True,
    checkpoint_every: CheckpointEvery = None,
    dest: Dest = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    json: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    env_file: EnvFile = ".env",
) -> None:
    """List the contratações PNCP changed on the day(s) (/atualizacao), keep every version in
    pncp_atualizacoes, and bring pncp (and, by default, pncp_details) of their publication days
    up to the newest version.

    Example: pncp-ingest atualizacoes --date yesterday --back 3 --dest s3://lake/bronze --json
    """
    common, overrides = _split(locals())

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from datetime import timedelta

        from .pipeline import run_atualizacoes

        days = _ingest_days(date, to, reporter)
        days = [days[0] - timedelta(days=n) for n in range(back, 0, -1)] + days
        codes = _modalidades(modalidade)
        reporter.start(
            "atualizacoes",
            [d.isoformat() for d in days],
            settings.dest,
            settings,
            details="yes" if with_details else "no",
        )
        return await run_atualizacoes(
            settings, days, modalidades=codes, details=with_details, on_event=reporter.event, stop=stop
        )

    _execute("atualizacoes", common, overrides, work)


@app.command()
def status(
    date: Annotated[str, typer.Option("--date", help="First day to show: YYYY-MM-DD, today or yesterday (Brasília).")],
    to: To = None,
    dest: Dest = None,
    base_url: BaseUrl = None,
    concurrency: Concurrency = None,
    rate: Rate = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    checkpoint_every: CheckpointEvery = None,
    json: Json = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    env_file: EnvFile = ".env",
) -> None:
    """Per day: whether it is complete, contratações committed, details committed/failed/gone/pending,
    staged parts, the last run and its outcome, and whether a run holds the day. Reads only the
    state (no API request; the API options are accepted so one set of flags fits every command).
    A day no run ever touched says so ("never run"). A destination that does not exist is an error (exit 2).

    Example: pncp-ingest status --date 2025-10-01 --to 2025-10-31 --json
    """
    from .report import print_status_lines
    from .status import read_dest_status

    common, overrides = _split(locals())
    reporter = make_reporter(quiet=quiet, verbose=verbose)
    try:
        settings = load_settings(env_file, **overrides)
        for warning in unknown_settings(env_file):
            reporter.warning(warning)
        days = _days(date, to)
        statuses = anyio.run(read_dest_status, settings, days)
    except PncpIngestError as exc:
        reporter.error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    if common["json"]:
        typer.echo(
            _json.dumps(
                {"command": "status", "dest": settings.dest, "days": [s.to_json() for s in statuses]},
                ensure_ascii=False,
            )
        )
    elif sys.stdout.isatty():
        from rich.console import Console

        from .tables import status_table

        console = Console()
        console.print(status_table(console, statuses))
    else:
        print_status_lines(statuses)
    raise typer.Exit(0)


def main() -> None:
    global _exiting_process
    _exiting_process = True
    try:
        app()
    except SystemExit as exc:
        if isinstance(exc.code, int | None):
            _exit_now(exc.code or 0)
        raise
    except BaseException as exc:  # pragma: no cover - last resort, never a bare traceback for the user
        print(f"error: unexpected {type(exc).__name__}: {exc} (rerun with --verbose)", file=sys.stderr)
        if "--verbose" in sys.argv or "-v" in sys.argv:
            traceback.print_exc()
        sys.exit(1)


def _exit_now(code: int) -> None:
    """End the process with ``code`` once its output is flushed, skipping the interpreter's teardown.

    The command's work is over by then: every file is closed, every commit made, every thread
    idle. What teardown would still do is free every object and module one by one (pyarrow's
    included), which took 0.1-0.2 s of each command's wall time for nothing (measured with
    `make bench`). The command line only: called as a library, nothing here runs."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written anyway
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
