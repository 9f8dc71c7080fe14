"""PNCP simulator fixtures (imported by conftest.py): each runs the simulator in its own process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pncp_ingest.testing import SimulatorProcess

__all__ = ["sim", "sim_factory"]


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    """A fresh simulator: seed 7, 50 contratações a day, no big-item compras, no faults."""
    with SimulatorProcess(seed=7, per_day=50) as process:
        yield process


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimulatorProcess]]:
    """``sim_factory(**SimulatorProcess kwargs)`` -> a started simulator, stopped after the test."""
    started: list[SimulatorProcess] = []

    def make(**kwargs: Any) -> SimulatorProcess:
        process = SimulatorProcess(**kwargs)
        started.append(process)
        return process.start()

    yield make
    for process in reversed(started):
        process.stop()
