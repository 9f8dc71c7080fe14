"""The ``pncp-ingest`` command line: parse, call the engine, present. No ingestion logic here.

Exit codes: 0 all done; 1 finished with failures recorded (a rerun retries them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the
storage is unreachable; 130 / 143 stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import difflib
import enum
import inspect
import json as _json
import os
import sys
import traceback
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date as Day
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import anyio
import typer
from click import Context
from click.exceptions import NoArgsIsHelpError, NoSuchOption
from click.exceptions import UsageError as ClickUsageError
from typer.core import TyperGroup

from . import __version__
from .config import Settings, aws_settings_from, load_settings, unknown_settings
from .dates import brasilia_today, day_range, parse_day
from .errors import PncpIngestError, StoppedAtOnce, UnknownModalidadeError, UsageError
from .signals import run_until_signalled, stop_at_once_outside_the_loop

if TYPE_CHECKING:  # the engine (pyarrow, aioboto3) is imported by the command that runs, not by --help
    from .pipeline import RunSummary
    from .report import Reporter

EXIT_CODES = """Exit codes: 0 all done; 1 finished with failures recorded (run again to retry them);
2 usage or configuration error; 3 the day is held by another run; 4 the API or the storage is unreachable;
130 / 143 stopped by Ctrl-C (SIGINT) / SIGTERM (committed work is kept: run the same command again)."""


class Commands(TyperGroup):
    """Usage errors (an unknown option, a missing --date, a bad number) as every other error: one
    ``error:`` line naming the fix, exit 2, and with ``--json`` one JSON object on stdout."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        ctx.meta["pncp_ingest.json"] = "--json" in args
        try:
            return super().parse_args(ctx, args)
        except ClickUsageError as exc:  # before the command: `pncp-ingest --foo`
            self._fail(ctx, exc)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClickUsageError as exc:  # the command's own options, or an unknown command
            self._fail(ctx, exc)

    def _fail(self, ctx: Context, exc: ClickUsageError) -> NoReturn:
        if isinstance(exc, NoArgsIsHelpError):  # `pncp-ingest` alone: the help, as typer shows it
            raise exc
        command = exc.ctx.command.name if exc.ctx is not None and exc.ctx.command is not self else None
        message = _usage_message(exc, command)
        typer.echo(f"error: {message}", err=True)
        if ctx.meta.get("pncp_ingest.json"):
            _print_error_json(command or "", "", message, 2)
        raise typer.Exit(2)


def _usage_message(exc: ClickUsageError, command: str | None) -> str:
    """The parser's complaint, a suggestion only when one option is really close, and where to look."""
    help_hint = f"(see `pncp-ingest {command} --help`)" if command else "(see `pncp-ingest --help`)"
    if isinstance(exc, NoSuchOption) and exc.ctx is not None:
        if exc.option_name in _options_of(*_commands(exc.ctx)):  # another command's option, not a typo
            return f"{command} does not take {exc.option_name} {help_hint}"
        known = _options_of(exc.ctx.command)
        close = difflib.get_close_matches(exc.option_name, known, n=1, cutoff=0.8)
        suggestion = f": did you mean {close[0]}?" if close else ""
        where = f" for {command}" if command else ""
        return f"no such option {exc.option_name}{where}{suggestion} {help_hint}"
    text = exc.format_message().removesuffix(".")
    return f"{text[:1].lower()}{text[1:]} {help_hint}"


def _options_of(*commands: Any) -> list[str]:
    return [opt for cmd in commands for param in cmd.params for opt in param.opts if opt.startswith("--")]


def _commands(ctx: Context) -> list[Any]:
    group = ctx.parent.command if ctx.parent is not None else None
    return list(getattr(group, "commands", {}).values())


app = typer.Typer(
    cls=Commands,
    help=f"Land Brazil's PNCP procurement data as Hive-partitioned Parquet (local folder or S3).\n\n{EXIT_CODES}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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


# -- the options every command shares, declared once --------------------------------------------------


def _setting_help(text: str, name: str) -> str:
    """An option's help with its environment variable and its default, read from ``Settings`` (the
    one place defaults live)."""
    return f"{text} [env PNCP_{name.upper()}; default {Settings.model_fields[name].default}]"


# None means "not given": the environment, .env or default decides.
SETTING_OPTIONS: dict[str, Any] = {
    "dest": Annotated[
        str | None,
        typer.Option("--dest", help=_setting_help("Destination: a folder, or s3://bucket[/prefix].", "dest")),
    ],
    "base_url": Annotated[
        str | None,
        typer.Option("--base-url", help=_setting_help("PNCP API base.", "base_url")),
    ],
    "concurrency": Annotated[
        int | None,
        typer.Option("--concurrency", help=_setting_help("In-flight requests to the detail API.", "concurrency")),
    ],
    "rate": Annotated[
        float | None,
        typer.Option("--rate", help=_setting_help("Requests/s to the detail API, 0 = no limit.", "rate")),
    ],
    "timeout": Annotated[
        float | None, typer.Option("--timeout", help=_setting_help("Seconds per request.", "timeout"))
    ],
    "max_retries": Annotated[
        int | None,
        typer.Option("--max-retries", help=_setting_help("Retries per request on 429/5xx/timeouts.", "max_retries")),
    ],
    "checkpoint_every": Annotated[
        int | None,
        typer.Option("--checkpoint-every", help=_setting_help("Commit every N contratações.", "checkpoint_every")),
    ],
}
# What a command that only reads the state (status) takes of them.
READ_SETTINGS = ("dest",)
OUTPUT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "json": (
        Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout at the end, whatever happened.")],
        False,
    ),
    "quiet": (Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the summary.")], False),
    "verbose": (
        Annotated[
            bool, typer.Option("--verbose", "-v", help="Every event (per publication day too), tracebacks on errors.")
        ],
        False,
    ),
    "env_file": (
        Annotated[str, typer.Option("--env-file", help="Settings file read beneath the environment.")],
        ".env",
    ),
}


@dataclass(frozen=True)
class Common:
    """The shared options of one invocation: how to report, and the settings given as flags."""

    json: bool = False
    quiet: bool = False
    verbose: bool = False
    env_file: str = ".env"
    settings: dict[str, Any] = field(default_factory=dict)  # None values: not given


def command(
    *, settings: tuple[str, ...] = tuple(SETTING_OPTIONS)
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``f(common: Common, **own options)`` as a command that also takes the shared options:
    ``settings`` (the setting flags it accepts) and every output option, collected into ``common``."""

    def register(f: Callable[..., None]) -> Callable[..., None]:
        hints = typing.get_type_hints(f, include_extras=True)
        kw = inspect.Parameter.KEYWORD_ONLY
        own = [
            p.replace(kind=kw, annotation=hints[p.name])
            for p in inspect.signature(f).parameters.values()
            if p.name != "common"
        ]
        shared = [inspect.Parameter(n, kw, annotation=SETTING_OPTIONS[n], default=None) for n in settings] + [
            inspect.Parameter(n, kw, annotation=a, default=d) for n, (a, d) in OUTPUT_OPTIONS.items()
        ]

        def run(**given: Any) -> None:
            outputs = {n: given.pop(n) for n in OUTPUT_OPTIONS}
            common = Common(**outputs, settings={n: given.pop(n) for n in settings})
            f(common, **given)

        params = own + shared
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        run.__doc__, run.__name__ = f.__doc__, f.__name__
        app.command(name=f.__name__)(run)
        return f

    return register


def make_reporter(*, quiet: bool, verbose: bool) -> Reporter:
    """Rich panels when a person is watching (stderr is a terminal), plain lines otherwise."""
    if sys.stderr.isatty():
        from .live import RichReporter

        return RichReporter(quiet=quiet, verbose=verbose)
    from .report import PlainReporter

    return PlainReporter(quiet=quiet, verbose=verbose)


Work = Callable[[Settings, "Reporter", anyio.Event], Awaitable["RunSummary"]]
_exiting_process = False  # set by main(): this interpreter ends when the command does


def _first_signal_line(reporter: Reporter) -> Callable[[str], None]:
    def say(name: str) -> None:
        reporter.line(
            f"{name} received: committing what is complete, then stopping (send it again to stop at once)",
            always=True,
        )

    return say


def _execute(command: str, common: Common, work: Work) -> None:
    """Shared by every command that runs: settings, reporting, signals, JSON, and errors → exit codes."""
    from .report import print_json

    reporter = make_reporter(quiet=common.quiet, verbose=common.verbose)
    settings: Settings | None = None
    again = f"run the same {command} command again to continue"
    with stop_at_once_outside_the_loop(ignore_after=_exiting_process) as reinstall:
        try:
            settings = load_settings(common.env_file, **common.settings)
            for warning in unknown_settings(common.env_file):
                reporter.warning(warning)
            run = partial(work, settings, reporter)
            try:
                with aws_settings_from(common.env_file):
                    outcome = anyio.run(partial(run_until_signalled, run, on_first=_first_signal_line(reporter)))
            finally:
                reinstall()
            summary = outcome.value
            summary.interrupted = outcome.interrupted
            reporter.summary(summary)
            if summary.interrupted:
                reporter.line(
                    f"stopped by {summary.interrupted}: committed work is kept and the lease released; {again}",
                    always=True,
                )
            if common.json:
                print_json(summary)
        except StoppedAtOnce as exc:
            reporter.error(f"{exc}; {again}")
            _json_after_error(command, common, settings, exc, interrupted=exc.signal_name)
            raise typer.Exit(exc.exit_code) from None
        except PncpIngestError as exc:
            reporter.error(_phrase(exc))
            if common.verbose:
                traceback.print_exc()
            _json_after_error(command, common, settings, exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # Ctrl-C before the event loop's handler was in place
            reporter.error(f"stopped at once by SIGINT: committed work is kept; {again}")
            raise typer.Exit(130) from None
        except Exception as exc:  # a bug: say so in one line, keep the traceback for --verbose
            reporter.error(f"unexpected {type(exc).__name__}: {exc} (rerun with --verbose for the traceback)")
            if common.verbose:
                traceback.print_exc()
            _json_after_error(command, common, settings, exc)
            raise typer.Exit(1) from None
    raise typer.Exit(summary.exit_code)


def _phrase(exc: PncpIngestError) -> str:
    """The library's error as this command line's advice: which flag to change."""
    if isinstance(exc, UnknownModalidadeError):
        return f"--modalidade {', '.join(map(str, exc.unknown))} is not a modalidade PNCP serves: " + (
            f"use one of {', '.join(map(str, exc.served))}"
        )
    return str(exc)


def _json_after_error(
    command: str,
    common: Common,
    settings: Settings | None,
    exc: Exception,
    interrupted: str | None = None,
) -> None:
    """With --json, one object per run whatever happened: the partial summary if the run had
    started, else one that carries the error and the exit code (1 for a bug)."""
    if not common.json:
        return
    from .report import print_json

    if isinstance(exc, PncpIngestError):
        partial_summary, error, code = exc.summary, str(exc), exc.exit_code
    else:
        partial_summary, error, code = None, f"unexpected {type(exc).__name__}: {exc}", 1
    if partial_summary is None:
        _print_error_json(command, settings.dest if settings else "", error, code, interrupted)
        return
    partial_summary.error, partial_summary.error_exit_code = error, code
    partial_summary.interrupted = interrupted or partial_summary.interrupted
    print_json(partial_summary)


def _print_error_json(command: str, dest: str, error: str, code: int, interrupted: str | None = None) -> None:
    """The --json object of a command that failed before it began: the summary's keys, nothing done."""
    if command == "status":
        doc: dict[str, Any] = {"command": "status", "status": "failed", "dest": dest, "days": []}
        doc.update(error=error, exit_code=code)
        typer.echo(_json.dumps(doc, ensure_ascii=False))
        return
    from .pipeline import RunSummary
    from .report import print_json

    summary = RunSummary(command, "", [], dest)
    summary.error, summary.error_exit_code, summary.interrupted = error, code, interrupted
    print_json(summary)


# -- days and codes ------------------------------------------------------------------------------------

Date = Annotated[str, typer.Option("--date", help="Day to ingest: YYYY-MM-DD, today or yesterday (Brasília).")]
To = Annotated[str | None, typer.Option("--to", help="Last day of a range (inclusive). Default: --date.")]


def _days(date: str, to: str | None) -> list[Day]:
    return day_range(parse_day(date, "--date"), parse_day(to, "--to") if to else None)


def _ingest_days(date: str, to: str | None, reporter: Reporter) -> list[Day]:
    """The days to ingest: PNCP has nothing after today (Brasília), so a range entirely in the
    future is an error and one that ends in it a warning."""
    days = _days(date, to)
    today = brasilia_today()
    if days[0] > today:
        raise UsageError(
            f"--date {days[0]} is in the future (today is {today} in Brasília): PNCP has nothing for it yet"
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
WithDetails = Annotated[bool, typer.Option("--details/--no-details", help="Fetch itens and arquivos too (default).")]


# -- the commands --------------------------------------------------------------------------------------


@command()
def contratacoes(common: Common, date: Date, to: To = None, modalidade: Modalidade = None) -> None:
    """List the day's contratações (every modalidade, every page) and commit the new ones.

    Example: pncp-ingest contratacoes --date yesterday --dest s3://lake/bronze --json
    """

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_contratacoes

        days = _ingest_days(date, to, reporter)
        codes = _modalidades(modalidade)
        reporter.start("contratacoes", [d.isoformat() for d in days], settings.dest, settings)
        return await run_contratacoes(settings, days, codes, on_event=reporter.event, stop=stop)

    _execute("contratacoes", common, work)


@command()
def contratos(common: Common, date: Date, to: To = None) -> None:
    """List the contratos (and empenhos) PNCP published on the day(s), every page, and commit the new ones.

    Example: pncp-ingest contratos --date yesterday --dest s3://lake/bronze --json
    """

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_contratos

        days = _ingest_days(date, to, reporter)
        reporter.start("contratos", [d.isoformat() for d in days], settings.dest, settings)
        return await run_contratos(settings, days, on_event=reporter.event, stop=stop)

    _execute("contratos", common, work)


class Only(str, enum.Enum):
    itens = "itens"
    arquivos = "arquivos"
    resultados = "resultados"


class UpdatedDataset(str, enum.Enum):
    contratacoes = "contratacoes"
    contratos = "contratos"
    atas = "atas"


@command()
def details(
    common: Common,
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
    only: Annotated[
        Only | None,
        typer.Option("--only", help="Fetch one kind only: itens, arquivos or resultados (with their itens)."),
    ] = None,
) -> None:
    """Fetch itens (every page) and arquivos for the day's committed contratações.

    Example: pncp-ingest details --date yesterday --dest s3://lake/bronze --batch-size 2000
    """

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

    _execute("details", common, work)


@command()
def resultados(
    common: Common,
    date: Date,
    to: To = None,
    back: Annotated[
        int, typer.Option("--back", min=0, help="Also the N publication days before --date (e.g. 365 nightly).")
    ] = 0,
    force: Annotated[
        bool,
        typer.Option("--force", help="Poll every unsettled contratação now, due or not (settled ones cost nothing)."),
    ] = False,
) -> None:
    """Bring the resultados (who won each item, at what price) of the day(s)' contratações up to date:
    settled ones cost no request, unsettled ones are polled when due (1, 2, 4 … up to 7 days apart).

    Example: pncp-ingest resultados --date today --back 365 --dest s3://lake/bronze --json
    """

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_resultados

        days = _ingest_days(date, to, reporter)
        days = [days[0] - timedelta(days=n) for n in range(back, 0, -1)] + days
        reporter.start(
            "resultados", [d.isoformat() for d in days], settings.dest, settings, force="yes" if force else "no"
        )
        return await run_resultados(settings, days, force=force, on_event=reporter.event, stop=stop)

    _execute("resultados", common, work)


@command()
def backfill(
    common: Common,
    date: Annotated[
        str, typer.Option("--date", "--from", help="First day: YYYY-MM-DD, today or yesterday (Brasília).")
    ],
    to: To = None,
    with_details: WithDetails = True,
    with_atualizacoes: Annotated[
        bool, typer.Option("--atualizacoes", help="Then capture each day's updates too (as `atualizacoes`).")
    ] = False,
    modalidade: Modalidade = None,
) -> None:
    """Each day of a range in order: contratações, then details, then contratos. Complete days are
    skipped: a day is complete once it was listed after it ended in Brasília and every detail is in.

    Resumable: stop it (Ctrl-C, SIGTERM, a crash) and run the same command again.

    Example: pncp-ingest backfill --date 2025-01-01 --to 2025-01-31 --dest s3://lake/bronze
    """

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
        from .pipeline import run_backfill

        days = _ingest_days(date, to, reporter)
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

    _execute("backfill", common, work)


@command()
def atualizacoes(
    common: Common,
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
    dataset: Annotated[
        list[UpdatedDataset] | None,
        typer.Option(
            "--dataset", help="Capture only this dataset: contratacoes, contratos or atas (repeatable; default all)."
        ),
    ] = None,
    modalidade: Modalidade = None,
    with_details: Annotated[
        bool,
        typer.Option("--details/--no-details", help="Fetch again the itens and arquivos of what changed (default)."),
    ] = True,
) -> None:
    """List the records PNCP changed on the day(s) (/atualizacao) for contratações, contratos and
    atas; keep every version in the history datasets (pncp_atualizacoes, pncp_contratos_atualizacoes,
    pncp_atas_atualizacoes), and bring the current datasets (pncp, pncp_contratos, pncp_atas; and,
    by default, pncp_details) of their publication days up to the newest version.

    Example: pncp-ingest atualizacoes --date yesterday --back 3 --dest s3://lake/bronze --json
    """

    async def work(settings: Settings, reporter: Reporter, stop: anyio.Event) -> RunSummary:
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
            settings,
            days,
            datasets=[d.value for d in dataset] if dataset else None,
            modalidades=codes,
            details=with_details,
            on_event=reporter.event,
            stop=stop,
        )

    _execute("atualizacoes", common, work)


@command(settings=READ_SETTINGS)
def status(
    common: Common,
    date: Annotated[str, typer.Option("--date", help="First day to show: YYYY-MM-DD, today or yesterday (Brasília).")],
    to: To = None,
) -> None:
    """Per day: whether it is complete and, if not, why; contratações committed, details
    committed/failed/gone/pending, staged parts, the last run and its outcome, and whether a run
    holds the day. Reads only the state: no API request. A day no run ever touched says so
    ("never run"). A destination that does not exist is an error (exit 2).

    Example: pncp-ingest status --date 2025-10-01 --to 2025-10-31 --json
    """
    from .report import print_status_lines
    from .status import read_dest_status

    reporter = make_reporter(quiet=common.quiet, verbose=common.verbose)
    settings: Settings | None = None
    try:
        settings = load_settings(common.env_file, **common.settings)
        for warning in unknown_settings(common.env_file):
            reporter.warning(warning)
        days = _days(date, to)
        with aws_settings_from(common.env_file):
            statuses = anyio.run(read_dest_status, settings, days)
    except PncpIngestError as exc:
        reporter.error(str(exc))
        if common.json:
            _print_error_json("status", settings.dest if settings else "", str(exc), exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    if common.json:
        doc = {"command": "status", "status": "ok", "dest": settings.dest, "days": [s.to_json() for s in statuses]}
        typer.echo(_json.dumps({**doc, "error": None, "exit_code": 0}, ensure_ascii=False))
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
    # Arrow's default allocator (mimalloc) keeps freed pages, so peak RSS grows with the day (see
    # docs/benchmarks.md). It must be chosen before pyarrow is first imported, and only for this
    # process: a program importing the library keeps its own choice. An explicit value still wins.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
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
    included), a measurable part of a short command's wall time (docs/benchmarks.md). The
    command line only: called as a library, nothing here runs."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written anyway
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
