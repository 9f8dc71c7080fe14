"""The ``pncp-ingest`` command line: parse, call the engine, present. No ingestion logic here.

Exit codes: 0 all done; 1 finished with failures recorded (a rerun retries them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the
storage is unreachable.
"""

from __future__ import annotations

import enum
import sys
import traceback
from typing import Annotated, Any, Awaitable, Callable, Optional

import anyio
import typer

from . import __version__
from .config import Settings, load_settings
from .dates import day_range, parse_day
from .errors import PncpIngestError, UsageError
from .pipeline import RunSummary, run_contratacoes, run_details
from .report import PlainReporter, print_json

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
Dest = Annotated[Optional[str], typer.Option("--dest", help="Destination: a folder, or s3://bucket[/prefix]. [env PNCP_DEST; default ./data/bronze]")]
BaseUrl = Annotated[Optional[str], typer.Option("--base-url", help="PNCP API base. [env PNCP_BASE_URL; default https://pncp.gov.br/api]")]
Concurrency = Annotated[Optional[int], typer.Option("--concurrency", help="In-flight requests to the detail API. [env PNCP_CONCURRENCY; default 8]")]
Rate = Annotated[Optional[float], typer.Option("--rate", help="Requests/s to the detail API, 0 = no limit. [env PNCP_RATE; default 10]")]
Timeout = Annotated[Optional[float], typer.Option("--timeout", help="Seconds per request. [env PNCP_TIMEOUT; default 60]")]
MaxRetries = Annotated[Optional[int], typer.Option("--max-retries", help="Retries per request on 429/5xx/timeouts. [env PNCP_MAX_RETRIES; default 6]")]
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
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False,
) -> None:
    """Land Brazil's PNCP procurement data as Hive-partitioned Parquet."""


def _execute(
    command: str,
    common: dict[str, Any],
    overrides: dict[str, Any],
    work: Callable[[Settings, PlainReporter], Awaitable[RunSummary]],
) -> None:
    """Shared by every command: settings, reporting, JSON, and errors → exit codes."""
    reporter = PlainReporter(quiet=common["quiet"], verbose=common["verbose"])
    summary: RunSummary | None = None
    try:
        settings = load_settings(common["env_file"], **overrides)
        summary = anyio.run(work, settings, reporter)
    except PncpIngestError as exc:
        reporter.error(str(exc))
        if common["verbose"]:
            traceback.print_exc()
        partial = getattr(exc, "summary", None)
        if common["json"] and partial is not None:
            print_json(partial)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        reporter.error(f"interrupted: committed work is kept; run the same {command} command again to continue")
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --verbose
        reporter.error(f"unexpected {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)")
        if common["verbose"]:
            traceback.print_exc()
        raise typer.Exit(1) from None
    reporter.summary(summary)
    if common["json"]:
        print_json(summary)
    raise typer.Exit(summary.exit_code)


Date = Annotated[str, typer.Option("--date", help="Day to ingest: YYYY-MM-DD, today or yesterday (Brasília).")]
To = Annotated[Optional[str], typer.Option("--to", help="Last day of a range (inclusive).")]
CheckpointEvery = Annotated[Optional[int], typer.Option("--checkpoint-every", help="Commit every N contratações. [env PNCP_CHECKPOINT_EVERY; default 50]")]
SETTINGS_FLAGS = ("dest", "base_url", "concurrency", "rate", "timeout", "max_retries", "checkpoint_every")
OUTPUT_FLAGS = ("json", "quiet", "verbose", "env_file")


def _split(flags: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A command's locals → (output options, setting overrides)."""
    return {k: flags[k] for k in OUTPUT_FLAGS}, {k: flags.get(k) for k in SETTINGS_FLAGS}


def _days(date: str, to: str | None) -> list[Any]:
    return day_range(parse_day(date, "--date"), parse_day(to, "--to") if to else None)


@app.command()
def contratacoes(
    date: Date,
    to: To = None,
    modalidade: Annotated[Optional[list[int]], typer.Option("--modalidade", help="Only this modalidade code (repeatable). Default: every one PNCP serves.")] = None,
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

    async def work(settings: Settings, reporter: PlainReporter) -> RunSummary:
        days = _days(date, to)
        if any(m < 1 for m in modalidade or []):
            raise UsageError("--modalidade must be a positive modalidade code, e.g. --modalidade 6")
        reporter.start("contratacoes", [d.isoformat() for d in days], settings.dest, settings)
        return await run_contratacoes(settings, days, modalidade or None, on_event=reporter.event)

    _execute("contratacoes", common, overrides, work)


class Only(str, enum.Enum):
    itens = "itens"
    arquivos = "arquivos"


@app.command()
def details(
    date: Date,
    to: To = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip what is committed (default), or refetch the day and replace its details.")] = True,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Take at most N pending contratações this run; the next run continues.")] = None,
    checkpoint_every: CheckpointEvery = None,
    only: Annotated[Optional[Only], typer.Option("--only", help="Fetch one kind only: itens or arquivos.")] = None,
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

    async def work(settings: Settings, reporter: PlainReporter) -> RunSummary:
        days = _days(date, to)
        reporter.start("details", [d.isoformat() for d in days], settings.dest, settings)
        return await run_details(settings, days, resume=resume, batch_size=batch_size,
                                 only=only.value if only else None, on_event=reporter.event)

    _execute("details", common, overrides, work)


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
