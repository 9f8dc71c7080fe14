"""examples/ keeps working: the reader snippets, the crontab, the systemd units and the env files.

* The DuckDB and Polars snippets run (as a user would, in their own process) on a bronze layer the
  real CLI landed from the simulator, and print exactly the numbers the simulator served.
* Every `pncp-ingest ...` command in the crontab and the systemd units (and the ones their
  comments tell the operator to type) is accepted by the CLI and exits 0 against the simulator,
  run with the same arguments plus `--dest <tmp> --base-url <simulator>` (a repeated option's last
  value wins, which test_a_repeated_option_takes_its_last_value checks).
* The crontab's schedule fields, the units' settings and timers' calendars are valid
  (`systemd-analyze`, when it is installed), and the env files hold only real settings, read the
  same way by pncp-ingest, systemd and sh.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from bronze import cli_env, read_bronze, run_cli
from dotenv import dotenv_values
from fixtures_s3 import S3_ACCESS_KEY, S3_SECRET_KEY

from pncp_ingest.config import Settings, load_settings
from pncp_ingest.dates import brasilia_today
from pncp_ingest.testing import SimulatedPncp

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CRONTAB = EXAMPLES / "crontab"
SYSTEMD = EXAMPLES / "systemd"
SERVICES = sorted(SYSTEMD.glob("*.service"))
TIMERS = sorted(SYSTEMD.glob("*.timer"))
ENV_FILES = sorted(EXAMPLES.rglob("*.env"))
READERS = ["read_duckdb.py", "read_polars.py"]

# The standard AWS variables an env file may set beside the PNCP_* settings (botocore reads them).
AWS_KEYS = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
}


# --------------------------------------------------------------------------- parsing the examples


def crontab(path: Path = CRONTAB) -> tuple[dict[str, str], list[tuple[list[str], str, int]]]:
    """(environment lines, jobs as (5 schedule fields, command, line number))."""
    env: dict[str, str] = {}
    jobs: list[tuple[list[str], str, int]] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)", line)
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"crontab line {number}: expected 5 schedule fields and a command: {raw!r}"
        jobs.append((fields[:5], fields[5], number))
    return env, jobs


# A number directly before < or > is a file descriptor (2>>log, 2>&1), not an argument.
_FD_BEFORE_REDIRECT = re.compile(r"(?<![^\s;&|(])\d+(?=[<>])")


def pncp_invocations(command: str) -> list[list[str]]:
    """The arguments of every `pncp-ingest ...` simple command in a shell command line, in order.

    Splits on control operators (; && || | &), drops redirections and their targets, and leading
    VAR=value assignments. Enough for the one-line commands of a crontab or a comment.
    """
    lexer = shlex.shlex(_FD_BEFORE_REDIRECT.sub("", command), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    segments: list[list[str]] = [[]]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if set(token) <= set("();<>|&"):
            if token[0] in "<>":
                i += 2  # the redirection and its target
                continue
            segments.append([])
        else:
            segments[-1].append(token)
        i += 1
    found = []
    for words in segments:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        if words and os.path.basename(words[0]) == "pncp-ingest":
            found.append(words[1:])
    return found


def unit(path: Path) -> list[tuple[str, str, str]]:
    """A systemd unit file as (section, key, value) in file order (repeated keys kept)."""
    entries = []
    section = ""
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not KEY=value: {raw!r}"
        assert not line.endswith("\\"), f"{path.name}:{number}: keep each setting on one line"
        entries.append((section, key.strip(), value.strip()))
    return entries


def values(entries: list[tuple[str, str, str]], section: str, key: str) -> list[str]:
    return [v for s, k, v in entries if s == section and k == key]


def exec_invocations(path: Path) -> list[list[str]]:
    """The pncp-ingest arguments of each ExecStart= of a service, in order.

    ExecStart= runs pncp-ingest itself, or `/bin/sh -c 'exec pncp-ingest ... >>"$$LOGS_DIRECTORY/..."'`
    when its stdout is appended to a log file (see test_no_unit_opens_a_log_file_before_its_directory)."""
    found = []
    for value in values(unit(path), "Service", "ExecStart"):
        command = value.lstrip("-@:+!")
        assert "%" not in command and "$" not in command.replace("$$LOGS_DIRECTORY", ""), (
            f"{path.name}: ExecStart= would expand specifiers/variables: {value}"
        )
        argv = shlex.split(command)
        assert argv[0].startswith("/"), f"{path.name}: give ExecStart= an absolute path: {value}"
        if argv[:2] == ["/bin/sh", "-c"]:
            inner = argv[2].replace("$$", "$")
            assert inner.startswith("exec "), f"{path.name}: `exec` pncp-ingest so it gets SIGTERM itself: {value}"
            [argv] = [["pncp-ingest", *args] for args in pncp_invocations(inner.removeprefix("exec "))]
            assert shlex.split(command)[2].split()[1].startswith("/"), f"{path.name}: absolute path: {value}"
        assert os.path.basename(argv[0]) == "pncp-ingest", f"{path.name}: ExecStart= is not pncp-ingest: {value}"
        found.append(argv[1:])
    return found


def documented_commands() -> list[tuple[str, list[str]]]:
    """`pncp-ingest <command> ...` lines that comments tell the operator to type.

    Indented command lines (`#   pncp-ingest status --date 2025-10-22`) and `backquoted` ones.
    """
    found: dict[tuple[str, ...], str] = {}
    for path in [CRONTAB, *SERVICES, *TIMERS, *ENV_FILES]:
        for line in path.read_text().splitlines():
            if not line.lstrip().startswith("#"):
                continue
            candidates = re.findall(r"^#\s{2,}(pncp-ingest\s+[a-z][^#`]*)$", line)
            candidates += re.findall(r"`(pncp-ingest\s+[a-z][^`]*)`", line)
            for text in candidates:
                for args in pncp_invocations(text):
                    found.setdefault(tuple(args), path.name)
    return [(source, list(args)) for args, source in found.items()]


# --------------------------------------------------------------------------- running them


@functools.cache
def command_help(command: str) -> str | None:
    """`pncp-ingest <command> --help`, or None if the CLI has no such command (yet)."""
    result = run_cli(command, "--help")
    return result.stdout if result.code == 0 else None


def run_example(args: list[str], sim, dest: str, source: str):
    """Run an example's pncp-ingest arguments with --dest/--base-url appended; assert exit 0."""
    help_text = command_help(args[0])
    assert help_text is not None, f"{source}: `pncp-ingest {args[0]}` is not a command of the CLI"
    extra = ["--dest", dest]
    if args[0] == "status":  # status on a destination that does not exist is an error (exit 2)
        Path(dest).mkdir(parents=True, exist_ok=True)
    if "--base-url" in help_text:
        extra += ["--base-url", sim.base_url]
    result = run_cli(*args, *extra, timeout=300)
    shown = "pncp-ingest " + shlex.join(args)
    assert result.code == 0, f"{source}: `{shown}` exited {result.code}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    if "--json" in args:
        assert result.json["status"] == "ok", result.stdout
    return result


def resolve_day(text: str) -> date:
    if text in ("today", "yesterday"):
        return brasilia_today() - timedelta(days=text == "yesterday")
    return date.fromisoformat(text)


def details_days(invocations: list[list[str]]) -> set[date]:
    """The days the `details` invocations complete (single --date ones)."""
    days = set()
    for args in invocations:
        if args[0] == "details" and "--to" not in args:
            days.add(resolve_day(args[args.index("--date") + 1]))
    return days


def assert_days_complete(sim, dest: str, days: set[date]) -> None:
    """pncp_details holds a row for exactly the contratações the simulator published on ``days``."""
    # atualizacoes may land details of other days (contratações changed yesterday): not checked here.
    rows = [r for r in read_bronze(dest, "pncp_details").to_pylist() if date(r["year"], r["month"], r["day"]) in days]
    landed = collections.Counter(r["numeroControlePNCP"] for r in rows)
    assert all(n == 1 for n in landed.values()), "a contratação has two details rows"
    expected = {}
    for day in days:
        truth = sim.truth(day)
        expected.update(
            {c["numeroControlePNCP"]: truth["itens"][c["numeroControlePNCP"]] for c in truth["contratacoes"]}
        )
    assert set(landed) == set(expected)
    assert {r["numeroControlePNCP"]: len(r["itens"]) for r in rows} == expected


def run_all(invocations: list[list[str]], sim, dest: str, source: str) -> None:
    """Run a file's commands in order into one dest, then check the days their details cover."""
    today = brasilia_today()
    for args in invocations:
        run_example(args, sim, dest, source)
    if brasilia_today() != today:
        pytest.skip("Brasília's midnight passed during the test: `today` changed between commands")
    days = details_days(invocations)
    assert_days_complete(sim, dest, days)
    # A day that has ended is complete after the file's jobs ran (today stays open until it ends).
    for day in sorted(d for d in days if d < today):
        status = run_cli("status", "--date", day.isoformat(), "--dest", dest, "--json")
        [doc] = status.json["days"]
        assert doc["complete"], (source, doc["open_because"])


# --------------------------------------------------------------------------- (a) the reader snippets

DAYS = ("2025-09-30", "2025-10-01")  # a month boundary: zero-padded month=09/day=01 partitions


def run_reader(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


MONEY = r"-?[\d,]+\.\d{2}"


def parse_summary(text: str) -> dict:
    """The snippets' output → {"totals": str, "per_day": [...], "top": [...], "tipos": [...]}."""
    out: dict = {"per_day": [], "top": [], "tipos": []}
    lines = text.splitlines()
    assert lines[0].startswith("bronze layer: "), text
    out["totals"] = lines[1]
    section = None
    for line in lines[2:]:
        if not line.strip():
            continue
        if line.startswith("contratações per day and modalidade"):
            section = "per_day"
        elif re.match(r"top \d+ itens by valorTotal", line):
            section = "top"
        elif line.startswith("arquivos per tipoDocumentoNome"):
            section = "tipos"
        elif line.startswith(("day ", "tipoDocumentoNome ")):
            continue  # column headers
        elif section == "per_day":
            m = re.fullmatch(rf"(\d{{4}}-\d{{2}}-\d{{2}})  +(\d+) (.+?) +(\d+) +({MONEY})", line)
            assert m, f"unexpected line: {line!r}"
            out["per_day"].append((m[1], int(m[2]), m[3], int(m[4]), m[5]))
        elif section == "top":
            m = re.fullmatch(rf"(\d{{4}}-\d{{2}}-\d{{2}})  (\S+) +(\d+) +({MONEY})  (.*)", line)
            assert m, f"unexpected line: {line!r}"
            out["top"].append((m[1], m[2], int(m[3]), m[4], m[5].rstrip()))
        elif section == "tipos":
            m = re.fullmatch(r"(.+?) +(\d+)", line)
            assert m, f"unexpected line: {line!r}"
            out["tipos"].append((m[1], int(m[2])))
        else:
            raise AssertionError(f"unexpected line: {line!r}")
    return out


def money(value) -> str:
    return f"{Decimal(str(value)):,.2f}"


def expected_summary(sim, days=DAYS, top: int = 10, with_details: bool = True) -> dict:
    """What the snippets must print, from the simulator's own data (not from the bronze layer)."""
    model = SimulatedPncp(seed=sim.seed, per_day=sim.per_day, big_items=sim.big_items)
    per_day: dict[tuple, list] = {}
    contratacoes = itens_total = arquivos_total = 0
    top_rows, tipos = [], collections.Counter()
    for day in days:
        truth = sim.truth(day)
        assert not truth["gone"]
        for c in truth["contratacoes"]:
            contratacoes += 1
            key = (day, c["modalidadeId"], c["modalidadeNome"][:36])
            group = per_day.setdefault(key, [0, Decimal(0)])
            group[0] += 1
            group[1] += Decimal(str(c["valorTotalEstimado"] or 0))
            cid = c["numeroControlePNCP"]
            itens, arquivos = model.itens(cid), model.arquivos(cid)
            # The in-process model is the served simulator: same seed, same data.
            assert (len(itens), len(arquivos)) == (truth["itens"][cid], truth["arquivos"][cid])
            itens_total += len(itens)
            arquivos_total += len(arquivos)
            top_rows += [
                (day, cid, i["numeroItem"], Decimal(str(i["valorTotal"])), (i["descricao"] or "")[:50].rstrip())
                for i in itens
                if i["valorTotal"] is not None
            ]
            tipos.update(a["tipoDocumentoNome"] or "(none)" for a in arquivos)
    top_rows.sort(key=lambda r: (-r[3], r[1], r[2]))
    n_days = len(days)
    if with_details:
        totals = f"{contratacoes} contratações on {n_days} day(s); details for {contratacoes}: {itens_total} itens, {arquivos_total} arquivos"
    else:
        totals = f"{contratacoes} contratações on {n_days} day(s); no details yet (run `pncp-ingest details`)"
    return {
        "totals": totals,
        "per_day": [(d, mid, nome, n, money(v)) for (d, mid, nome), (n, v) in sorted(per_day.items())],
        "top": [(d, cid, n, money(v), desc) for d, cid, n, v, desc in top_rows[:top]] if with_details else [],
        "tipos": sorted(((t[:50], n) for t, n in tipos.items()), key=lambda r: (-r[1], r[0])) if with_details else [],
    }


def test_the_readers_print_what_the_simulator_served(sim, tmp_path):
    pytest.importorskip("duckdb")
    pytest.importorskip("polars")
    dest = tmp_path / "data" / "bronze"
    base = ["--date", DAYS[0], "--to", DAYS[-1], "--dest", str(dest), "--base-url", sim.base_url]

    assert run_cli("contratacoes", *base).code == 0
    outputs = {script: run_reader(script, str(dest)) for script in READERS}
    for script, proc in outputs.items():
        assert proc.returncode == 0, f"{script}:\n{proc.stderr}"
        assert parse_summary(proc.stdout) == expected_summary(sim, with_details=False), f"{script}:\n{proc.stdout}"

    result = run_cli("details", *base)
    assert result.code == 0, result.stderr
    expected = expected_summary(sim)
    assert len(expected["top"]) == 10 and len(expected["tipos"]) > 1
    outputs = {script: run_reader(script, str(dest)) for script in READERS}
    for script, proc in outputs.items():
        assert proc.returncode == 0, f"{script}:\n{proc.stderr}"
        assert parse_summary(proc.stdout) == expected, f"{script}:\n{proc.stdout}"
    # The two snippets print the same summary, line for line.
    assert outputs["read_duckdb.py"].stdout == outputs["read_polars.py"].stdout

    # --top N, and DEST defaults to ./data/bronze.
    for script in READERS:
        proc = run_reader(script, "--top", "3", cwd=tmp_path)
        assert proc.returncode == 0, f"{script}:\n{proc.stderr}"
        assert proc.stdout.startswith("bronze layer: ./data/bronze\n")
        assert parse_summary(proc.stdout)["top"] == expected["top"][:3]


@pytest.mark.parametrize("script", READERS)
def test_a_reader_on_an_empty_folder_says_what_to_run(script, tmp_path):
    pytest.importorskip(script.removeprefix("read_").removesuffix(".py"))
    proc = run_reader(script, str(tmp_path / "nothing"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "pncp-ingest contratacoes" in proc.stderr


# --------------------------------------------------------------------------- (b) crontab and systemd

CRON_FIELDS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def valid_cron_field(field: str, low: int, high: int) -> bool:
    for item in field.split(","):
        m = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", item)
        if not m or (m[4] is not None and int(m[4]) < 1):
            return False
        if m[2] is not None:
            first, last = int(m[2]), int(m[3] or m[2])
            if not low <= first <= last <= high:
                return False
    return True


def test_the_crontab_is_valid_cron_and_shell():
    env, jobs = crontab()
    assert env.get("SHELL") == "/bin/sh"
    assert "PATH" in env, "cron's default PATH does not hold the venv: set PATH= or use absolute paths"
    assert jobs
    for fields, command, number in jobs:
        for field, (low, high) in zip(fields, CRON_FIELDS, strict=False):
            assert valid_cron_field(field, low, high), f"crontab line {number}: bad schedule field {field!r}"
        # cron turns an unescaped % into a newline: the commands need none (today/yesterday).
        assert "%" not in command, f"crontab line {number}: % in a command"
        check = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True)
        assert check.returncode == 0, f"crontab line {number}: {check.stderr}"


def test_the_crontab_runs_contratacoes_then_details_hourly_for_today_and_nightly_for_yesterday():
    _, jobs = crontab()
    schedules = {}
    for fields, command, number in jobs:
        invocations = pncp_invocations(command)
        assert invocations, f"crontab line {number} runs no pncp-ingest command"
        steps = [(args[0], args[args.index("--date") + 1]) for args in invocations]
        day = steps[0][1]
        # The nightly lines then capture yesterday's updates (atualizacoes).
        commands = [s for s, _ in steps]
        nightly = ["contratacoes", "details", "contratos", "atualizacoes"]  # contratos: a complete day needs them
        assert commands in (["contratacoes", "details"], nightly), (number, steps)
        assert {d for _, d in steps} == {day}, (number, steps)
        schedules.setdefault(day, []).append(fields)
    # today: at a fixed minute of every hour; yesterday: at a fixed time of every day.
    assert schedules["today"] and all(f[0].isdigit() and f[1:] == ["*"] * 4 for f in schedules["today"])
    assert schedules["yesterday"] and all(
        f[0].isdigit() and f[1].isdigit() and f[2:] == ["*"] * 3 for f in schedules["yesterday"]
    )
    # The nightly jobs append the --json summaries to a log.
    nightly = [command for fields, command, _ in jobs if "yesterday" in command]
    assert all(">>" in c and "--json" in c for c in nightly)


def test_every_crontab_command_exits_0_against_the_simulator(sim, tmp_path):
    _, jobs = crontab()
    invocations = [args for _, command, _ in jobs for args in pncp_invocations(command)]
    run_all(invocations, sim, str(tmp_path / "bronze"), "examples/crontab")


@pytest.mark.parametrize("service", SERVICES, ids=lambda p: p.name)
def test_every_systemd_execstart_exits_0_against_the_simulator(service, sim, tmp_path):
    invocations = exec_invocations(service)
    assert [args[0] for args in invocations][:2] == ["contratacoes", "details"]
    assert {args[0] for args in invocations[2:]} <= {"contratos", "atualizacoes"}
    run_all(invocations, sim, str(tmp_path / "bronze"), service.name)


@pytest.mark.parametrize("source, args", documented_commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v))
def test_commands_the_comments_suggest_exit_0(source, args, sim, tmp_path):
    if command_help(args[0]) is None:
        pytest.skip(f"`pncp-ingest {args[0]}` is not in the CLI yet")
    run_example(args, sim, str(tmp_path / "bronze"), source)


def test_a_repeated_option_takes_its_last_value(sim, tmp_path):
    """The command tests append --dest/--base-url; an example that sets them too is overridden."""
    first, last = tmp_path / "first", tmp_path / "last"
    result = run_cli(
        "contratacoes",
        "--date",
        DAYS[0],
        "--dest",
        str(first),
        "--base-url",
        "http://127.0.0.1:9/api",
        "--dest",
        str(last),
        "--base-url",
        sim.base_url,
    )
    assert result.code == 0, result.stderr
    assert not first.exists()
    assert len(read_bronze(str(last))) == len(sim.truth(DAYS[0])["contratacoes"])


def test_the_systemd_services_are_oneshot_with_sigterm_handling():
    assert {p.name for p in SERVICES} == {"pncp-ingest-hourly.service", "pncp-ingest-nightly.service"}
    for path in SERVICES:
        entries = unit(path)
        one = lambda key: values(entries, "Service", key)  # noqa: E731
        assert one("Type") == ["oneshot"], path.name
        env_files = one("EnvironmentFile")
        assert len(env_files) == 1, path.name
        # It names the env file shipped beside the units (installed under /etc).
        assert (SYSTEMD / Path(env_files[0].lstrip("-")).name).is_file(), env_files
        assert one("KillSignal") in ([], ["SIGTERM"]), path.name
        assert len(one("TimeoutStopSec")) == 1, path.name
        success = " ".join(one("SuccessExitStatus")).split()
        assert "143" in success, f"{path.name}: the exit after SIGTERM (143) is a clean stop"
        invocations = exec_invocations(path)
        assert len({args[args.index("--date") + 1] for args in invocations}) == 1, "both steps on the same day"
    hourly, nightly = (unit(SYSTEMD / f"pncp-ingest-{name}.service") for name in ("hourly", "nightly"))
    assert all(
        args[args.index("--date") + 1] == "today" for args in exec_invocations(SYSTEMD / "pncp-ingest-hourly.service")
    )
    assert all(
        args[args.index("--date") + 1] == "yesterday"
        for args in exec_invocations(SYSTEMD / "pncp-ingest-nightly.service")
    )
    # The decision the units' comments explain: hourly tolerates 1 (the next hour retries), nightly
    # does not (nothing later covers yesterday), and retries instead, except for usage errors.
    assert "1" in " ".join(values(hourly, "Service", "SuccessExitStatus")).split()
    assert "1" not in " ".join(values(nightly, "Service", "SuccessExitStatus")).split()
    assert values(nightly, "Service", "Restart") == ["on-failure"]
    assert values(nightly, "Service", "RestartPreventExitStatus") == ["2"]


def test_each_timer_starts_a_service_on_a_valid_calendar():
    assert TIMERS
    analyze = shutil.which("systemd-analyze")
    for path in TIMERS:
        entries = unit(path)
        target = (values(entries, "Timer", "Unit") or [path.stem + ".service"])[0]
        assert (SYSTEMD / target).is_file(), f"{path.name} starts {target}, which is not in examples/systemd"
        calendars = values(entries, "Timer", "OnCalendar")
        assert calendars, path.name
        assert values(entries, "Install", "WantedBy") == ["timers.target"]
        if analyze is None:
            continue
        for calendar in calendars:
            check = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True)
            assert check.returncode == 0, f"{path.name}: OnCalendar={calendar}: {check.stderr}"
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: OnCalendar= values not checked")


def test_systemd_analyze_verify_accepts_the_units(tmp_path):
    """Unknown keys, bad values, Restart= not allowed for oneshot...: what systemd itself would say."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    env_file = SYSTEMD / "pncp-ingest.env"
    for path in [*SERVICES, *TIMERS]:
        text = path.read_text()
        # verify checks that the binary and the env file exist: point them at ones that do.
        text = re.sub(r"^(ExecStart=[-@:+!]*)\S+", rf"\g<1>{shutil.which('true')}", text, flags=re.M)
        text = re.sub(r"^(EnvironmentFile=-?)\S+", rf"\g<1>{env_file}", text, flags=re.M)
        (tmp_path / path.name).write_text(text)
    check = subprocess.run(
        [analyze, "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    output = check.stdout + check.stderr
    assert check.returncode == 0, output
    assert not re.search(r"Unknown (key|section)|ignoring|Refusing", output), output


# --------------------------------------------------------------------------- (c) the env files


def env_lines(path: Path) -> dict[str, str]:
    out = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        # Plain KEY=value: read alike by pncp-ingest (dotenv), systemd (EnvironmentFile=) and sh (`.`):
        # no quotes, no spaces, no comment after the value.
        m = re.fullmatch(r"([A-Z][A-Z0-9_]*)=([^\s\"'#;$`\\]*)", raw)
        assert m, f"{path.name}:{number}: not a plain KEY=value line: {raw!r}"
        assert m[1] not in out, f"{path.name}:{number}: {m[1]} set twice"
        out[m[1]] = m[2]
    return out


@pytest.fixture
def no_pncp_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("PNCP_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_env_files_hold_only_real_settings(path, no_pncp_env):
    entries = env_lines(path)
    assert entries
    fields = Settings.model_fields
    for key in entries:
        if key.startswith("PNCP_"):
            assert key[5:].lower() in fields, f"{path.name}: {key} is not a setting (see .env.example)"
        else:
            assert key in AWS_KEYS, f"{path.name}: {key} is neither a PNCP_* setting nor a standard AWS variable"
    settings = load_settings(path)  # raises ConfigError on a bad value
    for key, raw in entries.items():
        if key.startswith("PNCP_"):
            value = getattr(settings, key[5:].lower())
            assert str(value) == raw or (not isinstance(value, str) and float(value) == float(raw)), (key, raw, value)
    # python-dotenv and sh read the same keys and values.
    assert dotenv_values(path) == entries
    sourced = subprocess.run(
        ["sh", "-c", 'set -a; . "$1"; set +a; env -0', "sh", str(path)],
        capture_output=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=True,
    ).stdout
    environment = dict(item.split("=", 1) for item in sourced.decode().split("\0") if "=" in item)
    assert {k: environment.get(k) for k in entries} == entries


def test_minio_env_configures_s3():
    entries = env_lines(EXAMPLES / "minio.env")
    assert entries["PNCP_DEST"].startswith("s3://")
    assert entries["PNCP_S3_ENDPOINT_URL"].startswith(("http://", "https://"))
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(entries)


@pytest.mark.s3
def test_minio_env_lands_a_day_on_an_s3_server(sim_factory, s3_endpoint, s3_dest):
    """minio.env's keys, loaded into the environment (as systemd/cron do), are all an S3 run needs.

    Only the placeholders change (bucket, endpoint, keys); everything else is the file as shipped.
    """
    sim = sim_factory(seed=7, per_day=10)
    entries = env_lines(EXAMPLES / "minio.env")
    entries.update(
        PNCP_DEST=s3_dest,
        PNCP_S3_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID=S3_ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=S3_SECRET_KEY,
    )
    env = {
        k: v for k, v in cli_env().items() if not k.startswith(("PNCP_S3", "AWS_")) or k == "AWS_EC2_METADATA_DISABLED"
    }
    env.update(entries)
    day = DAYS[0]
    for step in ("contratacoes", "details"):
        result = run_cli(step, "--date", day, "--base-url", sim.base_url, "--json", env=env)
        assert result.code == 0, result.stderr
    assert_days_complete(sim, s3_dest, {date.fromisoformat(day)})


def test_the_json_the_nightly_jobs_append_is_one_line_per_run(sim, tmp_path):
    """The nightly jobs append --json to a JSON-lines log: one object, on one line, per command."""
    result = run_cli(
        "contratacoes", "--date", DAYS[0], "--dest", str(tmp_path / "b"), "--base-url", sim.base_url, "--json"
    )
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["dates"] == [DAYS[0]]


# --------------------------------------------------------------------------- (d) logs and alerts


def test_no_unit_opens_a_log_file_before_its_directory():
    """StandardOutput=append:/var/log/x/... with LogsDirectory=x fails the first start with
    status=209/STDOUT: systemd opens the file before it creates the directory (systemd#27591)."""
    for path in SERVICES:
        entries = unit(path)
        for key in ("StandardOutput", "StandardError"):
            for value in values(entries, "Service", key):
                assert not value.startswith(("append:", "file:", "truncate:")), f"{path.name}: {key}={value}"
        if any("LOGS_DIRECTORY" in v for v in values(entries, "Service", "ExecStart")):
            assert values(entries, "Service", "LogsDirectory") == ["pncp-ingest"], path.name


def fake_pncp_ingest(tmp_path: Path, exit_code: int) -> dict[str, str]:
    """A `pncp-ingest` on PATH that exits with ``exit_code``: the crontab's shell logic under test."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "pncp-ingest"
    fake.write_text(f'#!/bin/sh\necho "progress line" >&2\nexit {exit_code}\n')
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}


@pytest.mark.parametrize("exit_code, mailed", [(0, False), (1, False), (3, False), (2, True), (4, True)])
def test_the_hourly_cron_job_prints_a_line_only_for_exit_2_and_4(tmp_path, exit_code, mailed):
    """Cron mails what a job prints: the hourly job speaks up when the setup is broken (2) or
    PNCP or the storage is unreachable (4), and stays silent for what the next hour retries."""
    _, jobs = crontab()
    [hourly] = [command for _, command, _ in jobs if "--date today" in command]
    env_file = tmp_path / "pncp-ingest.env"
    env_file.write_text("PNCP_DEST=/nowhere\n")
    command = hourly.replace("/etc/pncp-ingest/pncp-ingest.env", str(env_file)).replace(
        "/var/log/pncp-ingest", str(tmp_path)
    )
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, env=fake_pncp_ingest(tmp_path, exit_code)
    )
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    if mailed:
        assert len(lines) == 2 and all(f"exited {exit_code}" in line and "hourly.log" in line for line in lines)
    else:
        assert lines == []
    assert (tmp_path / "hourly.log").read_text().count("progress line") == 2  # the log keeps the rest


def log_files() -> set[str]:
    """Every /var/log/pncp-ingest/... file the crontab and the units write."""
    text = CRONTAB.read_text() + "".join(p.read_text() for p in SERVICES)
    found = set(re.findall(r"/var/log/pncp-ingest/([\w.-]+)", text))
    found |= set(re.findall(r"\$\$LOGS_DIRECTORY/([\w.-]+)", text))
    return {name for name in found if "*" not in name}


def test_logrotate_covers_every_log_the_examples_write(tmp_path):
    config = (EXAMPLES / "logrotate" / "pncp-ingest").read_text()
    rules = "\n".join(line for line in config.splitlines() if not line.lstrip().startswith("#"))
    patterns = re.findall(r"(/var/log/pncp-ingest/[^\s{]+)", rules)
    names = log_files()
    assert names >= {"hourly.log", "nightly.log", "nightly.jsonl"}, names
    for name in names:
        assert any(Path(f"/var/log/pncp-ingest/{name}").match(p) for p in patterns), name
    logrotate = shutil.which("logrotate")
    if logrotate is None:
        pytest.skip("logrotate is not installed: the configuration's syntax is not checked")
    local = (
        config.replace("/var/log/pncp-ingest", str(tmp_path))
        .replace("su pncp pncp", "")
        .replace("create 0640 pncp pncp", "create")
    )
    (tmp_path / "hourly.log").write_text("x\n")
    (tmp_path / "rotate.conf").write_text(local)
    check = subprocess.run(
        [logrotate, "--debug", "--state", str(tmp_path / "state"), str(tmp_path / "rotate.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and "error" not in check.stderr.lower(), check.stderr


def test_minio_env_says_what_env_file_does_with_aws_lines():
    text = (EXAMPLES / "minio.env").read_text()
    assert "reads only the PNCP_* settings" not in text
    assert "AWS_* lines" in text


# --------------------------------------------------------------------------- (e) scripts and make


ROOT = EXAMPLES.parent


def test_s3_local_script_cites_nothing_outside_the_repository_and_moves_every_port():
    script = (ROOT / "scripts" / "s3-local.sh").read_text()
    assert "/work/" not in script and ".md" not in script
    env = {k: v for k, v in os.environ.items() if k != "S3_LOCAL_PORT"}
    default = subprocess.run(
        ["bash", "scripts/s3-local.sh", "command"], capture_output=True, text=True, cwd=ROOT, env=env, check=True
    ).stdout
    moved = subprocess.run(
        ["bash", "scripts/s3-local.sh", "command"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "S3_LOCAL_PORT": "18333"},
        check=True,
    ).stdout
    assert "-s3.port=8333" in default and "-master.port" not in default  # weed's defaults, as before
    for flag in ("-s3.port=18333", "-master.port=18334", "-volume.port=18335", "-filer.port=18336"):
        assert flag in moved, moved
    assert "s3-local-18333" in moved  # its own data folder


def test_make_demo_ends_with_the_next_steps():
    """The hint `make demo` prints last names commands that exist: the DuckDB reader and the
    simulator's own command line."""
    dry = subprocess.run(["make", "-n", "demo"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    hint = dry[dry.index("examples/demo.py") :]
    assert "examples/read_duckdb.py" in hint and "python -m pncp_ingest.testing" in hint
    assert (ROOT / "examples" / "read_duckdb.py").is_file()
    help_text = subprocess.run(
        [sys.executable, "-m", "pncp_ingest.testing", "serve", "--help"], capture_output=True, text=True
    )
    assert help_text.returncode == 0 and "--port" in help_text.stdout


# -- the documents ----------------------------------------------------------------------------------

DOCUMENTS = sorted(
    p
    for p in ROOT.rglob("*.md")
    if not {".venv", ".venv-airflow", "bench", ".pytest_cache", "build", "dist"} & set(p.relative_to(ROOT).parts)
)


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_the_documents_cite_no_issue_numbers_or_machine_paths():
    assert ROOT / "README.md" in DOCUMENTS and ROOT / "docs" / "benchmarks.md" in DOCUMENTS
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)!r}"
        for path in DOCUMENTS
        for match in re.finditer(r"(?i)\bissue \d+|/work/|/root\b|\bwt-[a-z]+\b", path.read_text())
    ]
    assert found == []


def test_every_relative_link_in_the_documents_leads_somewhere():
    broken = []
    for path in DOCUMENTS:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
            elif anchor and linked.suffix == ".md":
                headings = {_anchor(h) for h in re.findall(r"^#+ (.+)$", linked.read_text(), re.M)}
                if anchor not in headings:
                    broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []


def test_the_readme_is_for_users_a_table_of_contents_and_a_few_hundred_lines():
    readme = (ROOT / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, re.M)
    for section in ("Contents", "Install", "First run", "Nightly operation", "Reading the data", "Troubleshooting"):
        assert section in headings, section
    assert "Configuration" in headings and "When PNCP misbehaves" in headings
    assert len(readme.splitlines()) < 650
    first_commands = readme[: readme.index("## Commands")]
    assert "make test" not in first_commands  # a user's first commands are not the developers'


def test_the_readme_creates_what_the_systemd_units_need():
    readme = (ROOT / "README.md").read_text()
    units = " ".join(p.read_text() for p in (ROOT / "examples" / "systemd").glob("*.service"))
    assert "User=pncp" in units and "/opt/pncp-ingest/.venv/bin/pncp-ingest" in units
    setup = readme[readme.index("## Nightly operation") : readme.index("### cron")]
    assert "useradd --system" in setup and " pncp\n" in setup
    assert "python3 -m venv /opt/pncp-ingest/.venv" in setup
    assert "/etc/pncp-ingest/pncp-ingest.env" in setup


def test_make_demo_installs_what_the_demo_needs_not_the_test_tools():
    dry = subprocess.run(["make", "-n", "-B", "demo"], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    installs = [line for line in dry.splitlines() if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [".venv/bin/python -m pip install --quiet -e '.[demo]'"], dry
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    demo = " ".join(extras["demo"])
    assert "duckdb" in demo and not {"mypy", "ruff", "seaweedfs", "hypothesis", "pytest"} & set(
        re.findall(r"[a-z-]+", demo)
    )
