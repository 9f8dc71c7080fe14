"""Shared fixtures: the PNCP simulator (fixtures_sim.py) and the S3 server (fixtures_s3.py)."""

import inspect

import pytest
from fixtures_s3 import *  # noqa: F403
from fixtures_sim import *  # noqa: F403

# `make test-fast` runs what starts no other process: no simulator, S3 server, Airflow, or CLI run
# as a subprocess (the edit-test loop, under a minute). Marked `process` here: a test that uses one
# of these fixtures, or whose own body starts a process (it names one of PROCESS_NAMES), or whose
# module sets ``pytestmark = pytest.mark.process``; a module-scoped fixture that starts the
# simulator marks its tests too (it names SimulatorProcess).
PROCESS_FIXTURES = {"sim", "sim_factory", "s3_endpoint", "s3_client", "s3_bucket", "s3_dest", "dest"}
PROCESS_NAMES = {"subprocess", "run_cli", "cli_command", "in_terminal", "SimulatorProcess", "loaded_after"}


def _starts_a_process(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    if PROCESS_FIXTURES & names:
        return True
    # The test's own body, and the fixtures its module defines (unwrapped: their code, not pytest's).
    module = getattr(item, "module", None)
    functions = [getattr(item, "function", None)]
    functions += [inspect.unwrap(f) for f in (getattr(module, n, None) for n in names) if callable(f)]
    return any(PROCESS_NAMES & set(f.__code__.co_names) for f in functions if hasattr(f, "__code__"))


def pytest_collection_modifyitems(items):
    for item in items:
        if _starts_a_process(item):
            item.add_marker(pytest.mark.process)
