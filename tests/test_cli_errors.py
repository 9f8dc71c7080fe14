"""Bad input gets one clear line, the documented exit code, no traceback, and nothing written.

In-process (typer's CliRunner): none of these needs a real process."""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bronze import run_cli
from inprocess import invoke

from pncp_ingest.dates import brasilia_today


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_clean_error(result, code: int, *needles: str) -> None:
    assert result.code == code, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--date", "2025-13-01"], "is not a date"),
        (["--date", "22/10/2025"], "YYYY-MM-DD"),
        (["--date", "2025-10-22", "--to", "2025-10-21"], "is before --date"),
        (["--date", "2025-10-22", "--modalidade", "0"], "--modalidade"),
        (["--date", "2025-10-22", "--concurrency", "0"], "--concurrency"),
    ],
)
def test_bad_flags_exit_2_and_write_nothing(sim, tmp_path, args, needle):
    dest = tmp_path / "bronze"
    result = invoke("contratacoes", *args, "--dest", str(dest), "--base-url", sim.base_url)
    assert_clean_error(result, 2, needle)
    assert not dest.exists()


def test_a_modalidade_pncp_does_not_serve_exits_2(sim, tmp_path):
    dest = tmp_path / "bronze"
    result = invoke(
        "contratacoes", "--date", "2025-10-22", "--modalidade", "99", "--dest", str(dest), "--base-url", sim.base_url
    )
    assert_clean_error(result, 2, "--modalidade 99")
    assert not (dest / "pncp").exists()


def test_a_bad_value_in_the_environment_names_the_variable(sim, tmp_path):
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        str(tmp_path / "b"),
        "--base-url",
        sim.base_url,
        PNCP_TIMEOUT="soon",
    )
    assert_clean_error(result, 2, "PNCP_TIMEOUT")


def test_an_unreachable_api_exits_4(tmp_path):
    dest = tmp_path / "bronze"
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        str(dest),
        "--base-url",
        f"http://127.0.0.1:{closed_port()}/api",
        "--max-retries",
        "2",
    )
    assert_clean_error(result, 4, "unreachable", "--base-url")
    assert not (dest / "pncp").exists()


def test_an_unwritable_local_dest_exits_2(sim, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke(
        "contratacoes", "--date", "2025-10-22", "--dest", str(blocker / "bronze"), "--base-url", sim.base_url
    )
    assert_clean_error(result, 2, "not writable")


@pytest.mark.s3
def test_wrong_s3_credentials_exit_2_without_leaking_the_secret(sim, s3_dest):
    secret = "s3cr3t-value-that-must-not-leak"
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        s3_dest,
        "--base-url",
        sim.base_url,
        "--json",
        AWS_ACCESS_KEY_ID="wrong-key",
        AWS_SECRET_ACCESS_KEY=secret,
    )
    assert_clean_error(result, 2, "credentials")
    assert secret not in result.stderr + result.stdout


@pytest.mark.s3
def test_a_missing_bucket_exits_2(sim, s3_endpoint):
    result = invoke(
        "contratacoes", "--date", "2025-10-22", "--dest", "s3://no-such-bucket-pncp/x", "--base-url", sim.base_url
    )
    assert_clean_error(result, 2, "no-such-bucket-pncp")


def test_help_and_version():
    result = invoke("--help")
    assert result.code == 0 and "Exit codes" in result.stdout
    version = invoke("--version")
    assert version.code == 0 and version.stdout.startswith("pncp-ingest ")


def test_settings_precedence_flag_over_env_over_env_file(tmp_path, monkeypatch):
    from pncp_ingest import load_settings

    env_file = tmp_path / "settings.env"
    env_file.write_text("PNCP_CONCURRENCY=3\nPNCP_RATE=7\nPNCP_TIMEOUT=11\n")
    monkeypatch.setenv("PNCP_RATE", "5")
    monkeypatch.setenv("PNCP_TIMEOUT", "13")
    settings = load_settings(env_file, timeout=17)
    assert (settings.concurrency, settings.rate, settings.timeout, settings.max_retries) == (3, 5, 17, 6)


def test_a_missing_env_file_is_a_usage_error(tmp_path):
    result = invoke("contratacoes", "--date", "2025-10-22", "--env-file", str(tmp_path / "nope.env"))
    assert_clean_error(result, 2, "nope.env")


def test_a_bad_value_in_the_env_file_names_the_setting(sim, tmp_path):
    env_file = tmp_path / "pncp.env"
    env_file.write_text("PNCP_LEASE_TTL=forever\n")
    dest = tmp_path / "bronze"
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        str(dest),
        "--base-url",
        sim.base_url,
        "--env-file",
        str(env_file),
    )
    assert_clean_error(result, 2, "PNCP_LEASE_TTL", "'forever'")
    assert not dest.exists()


def test_an_unreachable_s3_endpoint_exits_4(sim, tmp_path):
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        "s3://bucket/bronze",
        "--base-url",
        sim.base_url,
        PNCP_S3_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
        AWS_ACCESS_KEY_ID="k",
        AWS_SECRET_ACCESS_KEY="s",
    )
    assert_clean_error(result, 4, "unreachable", "PNCP_S3_ENDPOINT_URL")
    assert "--s3-endpoint" not in result.stderr


def test_aws_credentials_in_the_env_file_reach_s3_for_one_run_and_the_environment_wins(tmp_path, monkeypatch):
    import os

    from pncp_ingest import load_settings
    from pncp_ingest.config import aws_settings_from

    env_file = tmp_path / "s3.env"
    env_file.write_text("AWS_ACCESS_KEY_ID=from-file\nAWS_REGION=sa-east-1\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    before = dict(os.environ)
    load_settings(env_file)
    assert dict(os.environ) == before  # reading the settings writes nothing
    with aws_settings_from(env_file):
        assert os.environ["AWS_ACCESS_KEY_ID"] == "from-file"
        assert os.environ["AWS_REGION"] == "us-east-1"
    assert dict(os.environ) == before


def test_importing_the_package_leaves_the_environment_alone():
    import subprocess
    import sys

    code = "import os; e = dict(os.environ); import pncp_ingest, pncp_ingest.pipeline; print(dict(os.environ) == e)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", out.stderr


def test_an_unreachable_api_says_what_it_retries_and_ends_in_one_sentence(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/api"
    result = invoke(
        "contratacoes", "--date", "2025-10-22", "--dest", str(tmp_path / "b"), "--base-url", url, "--max-retries", "2"
    )
    assert_clean_error(result, 4, "unreachable after 3 attempts", "connection failed")
    retries = [line for line in result.stderr.splitlines() if " retrying " in line]
    assert retries, result.stderr  # not silence: what is retried, and when
    assert "/pncp/v1/modalidades" in retries[0] and "retry 1 of 2 in " in retries[0]
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Cannot connect to host" not in error and error.count(": ") <= 2, error


def test_json_after_a_fatal_error_carries_the_exit_code(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/api"
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        str(tmp_path / "b"),
        "--base-url",
        url,
        "--max-retries",
        "0",
        "--json",
    )
    assert result.code == 4
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 4 and doc["status"] == "failed" and "unreachable" in doc["error"]


def test_json_after_a_usage_error_is_still_one_object(tmp_path):
    result = invoke("contratacoes", "--date", "2025-13-01", "--dest", str(tmp_path / "b"), "--json")
    assert result.code == 2
    assert json.loads(result.stdout)["exit_code"] == 2


@pytest.mark.parametrize("where", ["environment", "env file"])
def test_a_misspelled_setting_is_named_with_the_closest_one(sim, tmp_path, where):
    env_file = tmp_path / "pncp.env"
    env_file.write_text("PNCP_CONCURENCY=4\n" if where == "env file" else "")
    env = {"PNCP_CONCURENCY": "4"} if where == "environment" else {}
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        str(tmp_path / "b"),
        "--base-url",
        sim.base_url,
        "--env-file",
        str(env_file),
        **env,
    )
    assert result.code == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert "PNCP_CONCURENCY" in warning and "did you mean PNCP_CONCURRENCY?" in warning


def test_a_range_entirely_in_the_future_is_an_error_and_one_ending_there_a_warning(sim, tmp_path):
    dest = str(tmp_path / "b")
    result = invoke("contratacoes", "--date", "2030-01-01", "--dest", dest, "--base-url", sim.base_url)
    assert_clean_error(result, 2, "2030-01-01 is in the future")
    tomorrow = (brasilia_today() + timedelta(days=1)).isoformat()
    result = invoke("contratacoes", "--date", "today", "--to", tomorrow, "--dest", dest, "--base-url", sim.base_url)
    assert result.code == 0, result.stderr
    [warning] = [line for line in result.stderr.splitlines() if "warning:" in line]
    assert f"--to {tomorrow} is in the future" in warning


@pytest.mark.parametrize("given", [["--modalidade", "6,8"], ["--modalidade", "6", "--modalidade", "8"]])
def test_modalidades_repeat_or_comma_separated(sim, tmp_path, given):
    result = invoke(
        "contratacoes",
        "--date",
        "2025-10-22",
        *given,
        "--dest",
        str(tmp_path / "b"),
        "--base-url",
        sim.base_url,
        "--json",
    )
    assert result.code == 0, result.stderr
    assert "listing 2 modalidades" in result.stderr
    help_text = invoke("contratacoes", "--help").stdout
    assert "list[int]" not in help_text and "CODE" in help_text and "6,8" in help_text


def test_a_bad_modalidade_list_says_how_to_give_several(tmp_path):
    result = invoke("contratacoes", "--date", "2025-10-22", "--modalidade", "6;8", "--dest", str(tmp_path / "b"))
    assert_clean_error(result, 2, "--modalidade 6 --modalidade 8", "6,8")


class _OddApi(BaseHTTPRequestHandler):
    """An API that answers 200 with JSON our code does not expect (a modalidade id that is no number)."""

    def do_GET(self) -> None:
        body = json.dumps([{"id": "seis", "nome": "?", "statusAtivo": True}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def odd_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OddApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("verbose", [False, True])
def test_an_unexpected_exception_is_one_line_and_a_traceback_only_with_verbose(odd_api, tmp_path, verbose):
    args = ["contratacoes", "--date", "2025-10-22", "--dest", str(tmp_path / "b"), "--base-url", odd_api]
    result = invoke(*args, "--json", *(["--verbose"] if verbose else []))
    assert result.code == 1
    assert json.loads(result.stdout)["exit_code"] == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: unexpected ValueError: ") and "rerun with --verbose" in error
    assert ("Traceback" in result.stderr) is verbose


# -- usage errors from the parser: the real CLI, as a user's shell or a scheduler runs it --------------

COMMANDS = ("contratacoes", "details", "backfill", "atualizacoes", "status")


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_with_json_prints_one_object_and_no_misleading_hint(command):
    result = run_cli(command, "--date", "2025-10-22", "--foo", "--json")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"error: no such option --foo for {command} (see `pncp-ingest {command} --help`)"
    ]
    [line] = result.stdout.splitlines()  # exactly one JSON object
    doc = json.loads(line)
    assert doc["command"] == command and doc["status"] == "failed" and doc["exit_code"] == 2
    assert "--foo" in doc["error"] and "--to" not in doc["error"]


def test_a_close_misspelling_is_suggested():
    result = run_cli("contratacoes", "--dat", "2025-10-22")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "error: no such option --dat for contratacoes: did you mean --date? (see `pncp-ingest contratacoes --help`)"
    ]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["details"], "missing option '--date'"),
        (["details", "--date", "2025-10-22", "--concurrency", "many"], "'--concurrency'"),
        (["contratacao", "--date", "2025-10-22"], "no such command 'contratacao'"),
        (["--foo"], "no such option --foo (see `pncp-ingest --help`)"),
    ],
)
def test_other_parser_errors_are_one_line_and_one_json_object(args, needle):
    result = run_cli(*args, "--json")
    assert result.code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and needle in line and "--help`)" in line, line
    assert json.loads(result.stdout)["exit_code"] == 2


def test_status_on_a_missing_dest_with_json_prints_one_object(tmp_path):
    result = run_cli("status", "--date", "2025-10-22", "--dest", str(tmp_path / "nowhere"), "--json")
    assert result.code == 2
    [line] = result.stdout.splitlines()
    doc = json.loads(line)
    assert doc["status"] == "failed" and doc["exit_code"] == 2 and "does not exist" in doc["error"]


def test_status_with_json_says_ok_and_exit_code_0(tmp_path):
    (tmp_path / "b").mkdir()
    doc = invoke("status", "--date", "2025-10-22", "--dest", str(tmp_path / "b"), "--json").json
    assert doc["status"] == "ok" and doc["exit_code"] == 0


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_date_to_and_the_shared_options(command):
    text = invoke(command, "--help").stdout
    for option in ("--date", "--to", "--dest", "--json", "--quiet", "--verbose", "--env-file"):
        assert option in text, (command, option)
    api = ("--base-url", "--concurrency", "--rate", "--timeout", "--max-retries", "--checkpoint-every")
    assert all((option in text) == (command != "status") for option in api), command


@pytest.mark.parametrize("first", ["--date", "--from"])
def test_backfill_takes_date_with_from_as_an_alias(sim, tmp_path, first):
    dest = str(tmp_path / "b")
    result = invoke(
        "backfill", first, "2025-10-22", "--dest", dest, "--base-url", sim.base_url, "--no-details", "--json"
    )
    assert result.code == 0, result.stderr
    assert result.json["dates"] == ["2025-10-22"]
