"""Run the CLI in this process with typer's CliRunner: for what needs no real process (no
signals, no kill -9, no terminal), it is the same code path without an interpreter start-up."""

from __future__ import annotations

import os

from bronze import FAST_RETRIES, Result
from typer.testing import CliRunner

from pncp_ingest.cli import app


def invoke(*args: str, **env: str) -> Result:
    """``pncp-ingest *args`` with the test environment of ``bronze.cli_env`` plus ``env``."""
    overrides: dict[str, str | None] = {
        k: None for k in os.environ if k.upper().startswith("PNCP_") and k != "PNCP_S3_ENDPOINT_URL"
    }
    overrides.update(FAST_RETRIES)
    overrides["PNCP_S3_ENDPOINT_URL"] = os.environ.get("PNCP_TEST_S3_ENDPOINT", "http://127.0.0.1:8333")
    overrides.update(env)
    result = CliRunner().invoke(app, list(args), env=overrides, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)
