"""The package as a user installs it: a wheel built from this tree, installed into a fresh venv,
then the CLI, the simulator and a tiny day run from the installed copy (never from src/), which
catches a module or data file the wheel leaves out and a dependency it forgets to declare.

Installing Airflow's ~150 packages per test run would take minutes, so the fresh venv sees the
dependencies of an existing venv (``.venv``, or ``.venv-airflow`` for the ``[airflow]`` extra)
through a ``.pth`` line and gets the wheel itself installed without dependencies; the test then
checks that every requirement the wheel declares is met by what it runs with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_VENV = Path(os.environ.get("PNCP_AIRFLOW_VENV", ROOT / ".venv-airflow"))
DAY = "2025-10-22"
pytestmark = pytest.mark.process


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PNCP_")}
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    log = run(sys.executable, "-m", "pip", "wheel", "--verbose", "--no-deps", "--wheel-dir", out, ROOT, cwd=out)
    # setuptools' warnings (e.g. a deprecated form of project.license) come through pip's verbose output
    assert "deprecated" not in (log.stdout + log.stderr).lower(), log.stdout + log.stderr
    [built] = out.glob("pncp_ingest-*-py3-none-any.whl")
    return built


def deps_python(extra: str) -> Path:
    if extra == "airflow":
        python = AIRFLOW_VENV / "bin" / "python"
        if not python.exists():
            msg = f"no Airflow venv at {AIRFLOW_VENV}: run `make airflow-venv`"
            if os.environ.get("PNCP_TEST_REQUIRE_AIRFLOW") == "1":
                pytest.fail(msg)
            pytest.skip(msg)
        return python
    return Path(sys.executable)


def fresh_venv(tmp_path: Path, wheel: Path, extra: str) -> Path:
    """A new venv with the wheel installed, seeing the dependencies of an existing one."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    deps = run(deps_python(extra), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    Path(purelib.stdout.strip(), "_dependencies.pth").write_text(deps.stdout.strip() + "\n")
    requirement = f"pncp-ingest[{extra}] @ {wheel.as_uri()}" if extra else str(wheel)
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--ignore-installed",
        "--no-index", requirement, cwd=tmp_path,
    )  # fmt: skip
    return venv


REQUIREMENTS_MET = """
import importlib.metadata as md, json, sys
from packaging.requirements import Requirement
dist = md.distribution("pncp-ingest")
unmet = []
for text in dist.requires or []:
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": sys.argv[1]}):
        continue
    try:
        found = md.version(req.name)
    except md.PackageNotFoundError:
        found = None
    if found is None or not req.specifier.contains(found, prereleases=True):
        unmet.append(f"{text} (found {found})")
import pncp_ingest
print(json.dumps({"file": pncp_ingest.__file__, "dist": str(dist.locate_file("")), "unmet": unmet}))
"""


@pytest.mark.parametrize("extra", ["", "airflow"])
def test_the_wheel_installs_and_runs_a_day_outside_the_checkout(wheel, tmp_path, extra):
    venv = fresh_venv(tmp_path, wheel, extra)
    python, cli = venv / "bin" / "python", venv / "bin" / "pncp-ingest"
    found = json.loads(run(python, "-c", REQUIREMENTS_MET, extra, cwd=tmp_path).stdout)
    assert found["unmet"] == []
    assert Path(found["file"]).is_relative_to(venv), found  # the installed copy, not src/
    assert run(cli, "--version", cwd=tmp_path).stdout.startswith("pncp-ingest ")
    if extra == "airflow":
        run(python, "-c", "import pncp_ingest.airflow", cwd=tmp_path)

    sim = subprocess.Popen(
        [python, "-m", "pncp_ingest.testing", "serve", "--port", "0", "--per-day", "3", "--exit-on-stdin-eof"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.stdout is not None
        base_url = sim.stdout.readline().split()[-1]  # "listening http://HOST:PORT/api"
        dest = tmp_path / "bronze"
        for command in ("contratacoes", "details", "contratos"):
            out = run(cli, command, "--date", DAY, "--dest", dest, "--base-url", base_url, "--json", cwd=tmp_path)
            doc = json.loads(out.stdout)
            assert doc["status"] == "ok" and doc["contratacoes"] == (0 if command == "contratos" else 3), doc
        status = json.loads(run(cli, "status", "--date", DAY, "--dest", dest, "--json", cwd=tmp_path).stdout)
        assert status["days"][0]["complete"] is True
    finally:
        assert sim.stdin is not None
        sim.stdin.close()  # the simulator exits when its stdin closes
        sim.wait(30)
