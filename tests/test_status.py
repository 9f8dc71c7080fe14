"""`pncp-ingest status`: honest about what is there, what is not, and what never ran; tables that
keep their key columns at any width. In-process (CliRunner): no signal or terminal is needed."""

from __future__ import annotations

import io
import json
import re

import pytest
from inprocess import invoke
from rich.console import Console

from pncp_ingest.status import DayStatus
from pncp_ingest.tables import status_table

DAY = "2025-10-22"


def test_a_destination_that_does_not_exist_is_an_error(tmp_path):
    result = invoke("status", "--date", DAY, "--dest", str(tmp_path / "does-not-exist"))
    assert result.code == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: destination ") and "does not exist" in line and "--dest" in line
    assert not (tmp_path / "does-not-exist").exists()


def test_a_day_never_run_is_not_an_empty_day(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    assert invoke("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    result = invoke("status", "--date", "2025-10-21", "--to", DAY, "--dest", dest, "--json")
    assert result.code == 0, result.stderr
    never, ran = json.loads(result.stdout)["days"]
    assert never["never_run"] is True and never["complete"] is False
    assert ran["never_run"] is False and ran["contratacoes"] == len(sim.truth(DAY)["contratacoes"])
    plain = invoke("status", "--date", "2025-10-21", "--to", DAY, "--dest", dest)
    header, never_line, ran_line = (line.split("\t") for line in plain.stdout.strip().splitlines())
    assert header[:4] == ["day", "complete", "why_not", "contratações"]
    assert never_line[1:4] == ["never run", "never run", "-"] and never_line[header.index("last_run")] == "never run"
    assert ran_line[1:4] == ["no", "details pending", str(ran["contratacoes"])]


def test_status_shows_complete_and_one_meaning_per_word(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    for command in ("contratacoes", "details", "contratos"):
        assert invoke(command, "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    doc = json.loads(invoke("status", "--date", DAY, "--dest", dest, "--json").stdout)["days"][0]
    total = len(sim.truth(DAY)["contratacoes"])
    # itens_done counts contratações whose itens are committed; a run summary's itens counts items.
    assert doc["complete"] is True and doc["itens_done"] == doc["arquivos_done"] == total
    assert "itens" not in doc and "arquivos" not in doc
    plain = invoke("status", "--date", DAY, "--dest", dest).stdout.splitlines()
    header, row = plain[0].split("\t"), plain[1].split("\t")
    assert "itens_done" in header and "itens" not in header
    assert row[header.index("complete")] == "yes"


@pytest.mark.parametrize("flag", [["--quiet"], ["--verbose"], ["--env-file", ".env"]])
def test_status_takes_the_output_options_every_command_takes(tmp_path, flag):
    (tmp_path / "bronze").mkdir()
    result = invoke("status", "--date", DAY, "--dest", str(tmp_path / "bronze"), *flag, "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["days"][0]["never_run"] is True


@pytest.mark.parametrize(
    "flag", [["--base-url", "http://127.0.0.1:9/api"], ["--concurrency", "4"], ["--rate", "2"], ["--timeout", "5"]]
)
def test_status_refuses_the_api_options_it_would_ignore(tmp_path, flag):
    (tmp_path / "bronze").mkdir()
    result = invoke("status", "--date", DAY, "--dest", str(tmp_path / "bronze"), *flag)
    assert result.code == 2
    assert result.stderr.splitlines() == [f"error: status does not take {flag[0]} (see `pncp-ingest status --help`)"]
    assert flag[0] not in invoke("status", "--help").stdout


def test_status_date_help_does_not_say_ingest():
    result = invoke("status", "--help")
    assert "Day to ingest" not in result.stdout and "First day to show" in result.stdout


def render(width: int, statuses: list[DayStatus]) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    with console.capture() as capture:
        console.print(status_table(console, statuses))
    return capture.get().splitlines()


def statuses() -> list[DayStatus]:
    run = {"outcome": "interrupted", "finished_at": "2025-10-23T14:03:11.123+00:00"}
    held = {"pncp_details": "run 20251023T140000Z-abcdef (pid 4242 on host-with-a-long-name, lease expires ...)"}
    return [
        DayStatus("2025-10-21", never_run=True),
        DayStatus(
            DAY,
            contratacoes=3120,
            details=1500,
            itens_done=1500,
            arquivos_done=1498,
            pending=1620,
            parts=3,
            last_run={"pncp": {**run, "outcome": "ok"}, "pncp_details": run},
            held_by=held,
        ),
    ]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_status_table_keeps_the_day_whole_and_each_row_on_one_line(width):
    lines = render(width, statuses())
    assert all(len(line) <= width for line in lines)
    body = [line for line in lines if line.lstrip().startswith("2025-")]
    assert len(body) == 2, "\n".join(lines)  # one line per day: nothing wraps
    assert [[cell.strip() for cell in row.split("│")[:2]] for row in body] == [
        ["2025-10-21", "never run"],
        [DAY, "no: held by a run"],
    ]
    assert "…" not in "\n".join(lines)


def test_at_80_columns_the_table_says_why_a_day_is_open_and_when_it_last_ran_with_a_zone():
    lines = render(80, statuses())
    header = next(line for line in lines if "day" in line and "complete" in line)
    assert [cell.strip() for cell in header.split("┃")] == ["day", "complete", "contratações", "pending", "last run"]
    row = next(line for line in lines if line.lstrip().startswith(DAY))
    assert [cell.strip() for cell in row.split("│")] == [
        DAY,
        "no: held by a run",
        "3,120",
        "1,620",
        "2025-10-23T14:03Z",
    ]


def test_plain_status_lines_carry_the_reason_and_iso_times(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    assert invoke("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    header, line = (row.split("\t") for row in invoke("status", "--date", DAY, "--dest", dest).stdout.splitlines())
    row = dict(zip(header, line, strict=True))
    assert row["complete"] == "no" and row["why_not"] == "details pending"
    assert re.fullmatch(r"listing ok \d{4}-\d\d-\d\dT\d\d:\d\dZ", row["last_run"]), row["last_run"]


def test_at_100_columns_the_status_table_leaves_out_whole_columns_and_says_which():
    lines = "\n".join(render(100, statuses()))
    assert "complete" in lines and "pending" in lines
    caption = lines[lines.index("not shown at this width") :]
    assert "parts" in caption and "held by" in caption and "(see --json)" in caption


def test_status_counts_the_contratacoes_whose_resultados_are_still_to_come(sim, tmp_path):
    dest = str(tmp_path / "bronze")
    for command in ("contratacoes", "details"):
        assert invoke(command, "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    doc = json.loads(invoke("status", "--date", DAY, "--dest", dest, "--json").stdout)["days"][0]
    details = sim.truth(DAY, details=True)["details"]
    in_progress = sum(1 for d in details.values() if any(i.get("situacaoCompraItem") == 1 for i in d["itens"]))
    assert doc["resultados_pending"] == in_progress > 0
