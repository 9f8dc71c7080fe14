"""Layering that start-up time and the package boundaries depend on, checked in a fresh interpreter:
``--help`` loads no engine (pyarrow, aioboto3), the client needs no Arrow, the writer no HTTP."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pyarrow", "aioboto3", "botocore", "boto3")


def loaded_after(code: str) -> dict[str, bool]:
    """Which of the heavy packages (and pncp_ingest.pncp) are imported after running ``code``."""
    probe = f"""
import json, sys
{code}
names = {list(HEAVY) + ["pncp_ingest.pncp", "httpx"]!r}
print(json.dumps({{n: n in sys.modules for n in names}}))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded: dict[str, bool] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_help_imports_neither_pyarrow_nor_the_s3_client():
    loaded = loaded_after(
        "from pncp_ingest.cli import app\n"
        "from typer.testing import CliRunner\n"
        "for args in (['--help'], ['contratacoes', '--help'], ['details', '--help'], ['status', '--help']):\n"
        "    result = CliRunner().invoke(app, args)\n"
        "    assert result.exit_code == 0 and 'Usage' in result.output, result.output\n"
    )
    assert not any(loaded[name] for name in HEAVY), loaded


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import pncp_ingest.pncp", ("pyarrow", "aioboto3")),  # the client decodes into models, not Arrow
        ("import pncp_ingest.writer", ("pncp_ingest.pncp", "httpx", "aioboto3")),  # the writer needs no HTTP
        ("from pncp_ingest.storage import open_store; open_store('./bronze')", ("aioboto3", "pyarrow")),
    ],
)
def test_modules_import_only_what_they_use(code: str, absent: tuple[str, ...]):
    loaded = loaded_after(code)
    assert not any(loaded[name] for name in absent), loaded


def test_an_s3_destination_loads_the_s3_client():
    assert loaded_after("from pncp_ingest.storage import open_store; open_store('s3://bucket/bronze')")["aioboto3"]
