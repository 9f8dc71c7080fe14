"""Bad input gets one clear line, the documented exit code, no traceback, and nothing written."""

from __future__ import annotations

import socket

import pytest
from bronze import cli_env, run_cli


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
    result = run_cli("contratacoes", *args, "--dest", str(dest), "--base-url", sim.base_url)
    assert_clean_error(result, 2, needle)
    assert not dest.exists()


def test_a_modalidade_pncp_does_not_serve_exits_2(sim, tmp_path):
    dest = tmp_path / "bronze"
    result = run_cli(
        "contratacoes", "--date", "2025-10-22", "--modalidade", "99", "--dest", str(dest), "--base-url", sim.base_url
    )
    assert_clean_error(result, 2, "--modalidade 99")
    assert not (dest / "pncp").exists()


def test_a_bad_value_in_the_environment_names_the_variable(sim, tmp_path):
    result = run_cli(
        "contratacoes",
        "--date",
        "2025-10-22",
        "--dest",
        str(tmp_path / "b"),
        "--base-url",
        sim.base_url,
        env=cli_env(PNCP_TIMEOUT="soon"),
    )
    assert_clean_error(result, 2, "PNCP_TIMEOUT")


def test_an_unreachable_api_exits_4(tmp_path):
    dest = tmp_path / "bronze"
    result = run_cli(
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
    result = run_cli(
        "contratacoes", "--date", "2025-10-22", "--dest", str(blocker / "bronze"), "--base-url", sim.base_url
    )
    assert_clean_error(result, 2, "not writable")


@pytest.mark.s3
def test_wrong_s3_credentials_exit_2_without_leaking_the_secret(sim, s3_dest):
    secret = "s3cr3t-value-that-must-not-leak"
    env = cli_env(AWS_ACCESS_KEY_ID="wrong-key", AWS_SECRET_ACCESS_KEY=secret)
    result = run_cli(
        "contratacoes", "--date", "2025-10-22", "--dest", s3_dest, "--base-url", sim.base_url, "--json", env=env
    )
    assert_clean_error(result, 2, "credentials")
    assert secret not in result.stderr + result.stdout


@pytest.mark.s3
def test_a_missing_bucket_exits_2(sim, s3_endpoint):
    result = run_cli(
        "contratacoes", "--date", "2025-10-22", "--dest", "s3://no-such-bucket-pncp/x", "--base-url", sim.base_url
    )
    assert_clean_error(result, 2, "no-such-bucket-pncp")


def test_help_and_version():
    result = run_cli("--help")
    assert result.code == 0 and "Exit codes" in result.stdout
    version = run_cli("--version")
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
    result = run_cli("contratacoes", "--date", "2025-10-22", "--env-file", str(tmp_path / "nope.env"))
    assert_clean_error(result, 2, "nope.env")


def test_a_bad_value_in_the_env_file_names_the_setting(sim, tmp_path):
    env_file = tmp_path / "pncp.env"
    env_file.write_text("PNCP_LEASE_TTL=forever\n")
    dest = tmp_path / "bronze"
    result = run_cli(
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
    env = cli_env(
        PNCP_S3_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}", AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s"
    )
    result = run_cli(
        "contratacoes", "--date", "2025-10-22", "--dest", "s3://bucket/bronze", "--base-url", sim.base_url, env=env
    )
    assert_clean_error(result, 4, "unreachable")


def test_aws_credentials_in_the_env_file_reach_s3_but_the_environment_wins(tmp_path, monkeypatch):
    import os

    from pncp_ingest import load_settings

    env_file = tmp_path / "s3.env"
    env_file.write_text("AWS_ACCESS_KEY_ID=from-file\nAWS_REGION=sa-east-1\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    load_settings(env_file)
    assert os.environ["AWS_ACCESS_KEY_ID"] == "from-file"
    assert os.environ["AWS_REGION"] == "us-east-1"
