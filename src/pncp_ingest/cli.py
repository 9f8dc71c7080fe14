"""The ``pncp-ingest`` command line: parse, call the engine, present. No ingestion logic here.

Exit codes: 0 all done; 1 finished with failures recorded (a rerun retries them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the
storage is unreachable.
"""

from __future__ import annotations

import enum
import json as _json
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer

from . import __version__
from .config import Settings, load_settings
from .dates import day_range, parse_day
from .errors import PncpIngestError, UsageError, collapse

if TYPE_CHECKING:  # the engine (pyarrow, aioboto3) is imported by the command that runs, not by --help
    from .pipeline import RunSummary
    from .report import Reporter

EXIT_CODES = """Exit codes: 0 all done; 1 finished with failures recorded (run again to retry them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the storage is unreachable."""

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


Work = Callable[[Settings, "Reporter", anyio.Event], Awaitable["RunSummary"]]


async def _run_until_signalled(work: Work, settings: Settings, reporter: Reporter) -> RunSummary:
    """Run ``work``; SIGINT/SIGTERM ask it to wind down (commit what is complete, release the
    lease), a second signal stops at once."""
    try:
        return await _with_signals(work, settings, reporter)
    except BaseExceptionGroup as group:  # the task group wraps what the run raised
        raise collapse(group) from None


async def _with_signals(work: Work, settings: Settings, reporter: Reporter) -> RunSummary:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for signum in received:
                    if stop.is_set():
                        tg.cancel_scope.cancel()
                        return
                    watch.signal = signal.Signals(signum).name  # type: ignore[attr-defined]
                    stop.set()
                    reporter.line(
                        f"{watch.signal} received: committing what is complete, then stopping "  # type: ignore[attr-defined]
                        "(send it again to stop at once)",
                        always=True,
                    )

        watch.signal = None  # type: ignore[attr-defined]
        tg.start_soon(watch)
        summary = await work(settings, reporter, stop)
        summary.interrupted = watch.signal  # type: ignore[attr-defined]
        tg.cancel_scope.cancel()
    return summary


def _execute(command: str, common: dict[str, Any], overrides: dict[str, Any], work: Work) -> None:
    """Shared by every command: settings, reporting, signals, JSON, and errors → exit codes."""
    from .report import make_reporter, print_json

    reporter = make_reporter(quiet=common["quiet"], verbose=common["verbose"])
    try:
        settings = load_settings(common["env_file"], **overrides)
        summary = anyio.run(_run_until_signalled, work, settings, reporter)
    except PncpIngestError as exc:
        reporter.error(str(exc))
        if common["verbose"]:
            traceback.print_exc()
        partial = getattr(exc, "summary", None)
        if common["json"] and partial is not None:
            print_json(partial)
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, anyio.get_cancelled_exc_class()):
        reporter.error(f"stopped at once: committed work is kept; run the same {command} command again to continue")
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --verbose
        reporter.error(f"unexpected {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)")
        if common["verbose"]:
            traceback.print_exc()
        raise typer.Exit(1) from None
    reporter.summary(summary)
    if summary.interrupted:
        reporter.line(
            f"stopped by {summary.interrupted}: committed work is kept and the lease released; "
            f"run the same {command} command again to continue",
            always=True,
        )
    if common["json"]:
        print_json(summary)
    raise typer.Exit(summary.exit_code)


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


def _days(date: str, to: str | None, first: str = "--date") -> list[Any]:
    return day_range(parse_day(date, first), parse_day(to, "--to") if to else None, first_option=first)


def _check_modalidades(codes: list[int] | None) -> None:
    if any(m < 1 for m in codes or []):
        raise UsageError("--modalidade must be a positive modalidade code, e.g. --modalidade 6")


@app.command()
def contratacoes(
    date: Date,
    to: To = None,
    modalidade: Annotated[
        list[int] | None,
        typer.Option("--modalidade", help="Only this modalidade code (repeatable). Default: every one PNCP serves."),
    ] = None,
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

        days = _days(date, to)
        _check_modalidades(modalidade)
        reporter.start("contratacoes", [d.isoformat() for d in days], settings.dest, settings)
        return await run_contratacoes(settings, days, modalidade or None, on_event=reporter.event, stop=stop)

    _execute("contratacoes", common, overrides, work)


class Only(str, enum.Enum):
    itens = "itens"
    arquivos = "arquivos"


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
    only: Annotated[Only | None, typer.Option("--only", help="Fetch one kind only: itens or arquivos.")] = None,
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

        days = _days(date, to)
        reporter.start(
            "details",
            [d.isoformat() for d in days],
            settings.dest,
            settings,
            resume="resume" if resume else "no resume (refetch and replace)",
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
def backfill(
    from_: Annotated[str, typer.Option("--from", help="First day: YYYY-MM-DD, today or yesterday (Brasília).")],
    to: Annotated[str, typer.Option("--to", help="Last day (inclusive).")],
    with_details: Annotated[
        bool, typer.Option("--details/--no-details", help="Fetch itens and arquivos too (default).")
    ] = True,
    with_atualizacoes: Annotated[
        bool, typer.Option("--atualizacoes", help="Then capture each day's updates too (as `atualizacoes`).")
    ] = False,
    modalidade: Annotated[
        list[int] | None, typer.Option("--modalidade", help="Only this modalidade code (repeatable).")
    ] = None,
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

        days = _days(from_, to, first="--from")
        _check_modalidades(modalidade)
        reporter.start(
            "backfill", [d.isoformat() for d in days], settings.dest, settings, details="yes" if with_details else "no"
        )
        return await run_backfill(
            settings,
            days,
            details=with_details,
            atualizacoes=with_atualizacoes,
            modalidades=modalidade or None,
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
    modalidade: Annotated[
        list[int] | None,
        typer.Option("--modalidade", help="Only this modalidade code (repeatable). Default: every one PNCP serves."),
    ] = None,
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

        days = _days(date, to)
        days = [days[0] - timedelta(days=n) for n in range(back, 0, -1)] + days
        _check_modalidades(modalidade)
        reporter.start(
            "atualizacoes",
            [d.isoformat() for d in days],
            settings.dest,
            settings,
            details="yes" if with_details else "no",
        )
        return await run_atualizacoes(
            settings, days, modalidades=modalidade or None, details=with_details, on_event=reporter.event, stop=stop
        )

    _execute("atualizacoes", common, overrides, work)


@app.command()
def status(
    date: Date,
    to: To = None,
    dest: Dest = None,
    json: Json = False,
    env_file: EnvFile = ".env",
) -> None:
    """Per day: contratações committed, details committed/failed/gone/pending, staged parts,
    the last run and its outcome, and whether a run holds the day. Reads only the state.

    Example: pncp-ingest status --date 2025-10-01 --to 2025-10-31 --json
    """
    from .report import make_reporter, print_status
    from .status import read_dest_status

    reporter = make_reporter(quiet=False, verbose=False)
    try:
        settings = load_settings(env_file, dest=dest)
        days = _days(date, to)
        statuses = anyio.run(read_dest_status, settings, days)
    except PncpIngestError as exc:
        reporter.error(str(exc))
        raise typer.Exit(exc.exit_code) from None
    if json:
        typer.echo(
            _json.dumps(
                {"command": "status", "dest": settings.dest, "days": [s.to_json() for s in statuses]},
                ensure_ascii=False,
            )
        )
    else:
        print_status(statuses)
    raise typer.Exit(0)


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except BaseException:  # pragma: no cover - last resort, never a bare traceback for the user
        print("error: unexpected failure (rerun with --verbose)", file=sys.stderr)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
