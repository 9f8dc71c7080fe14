"""A deterministic PNCP API simulator for tests, the demo and benchmarks.

It serves both API families under ``/api`` (``/api/consulta/v1/contratacoes/...`` and
``/api/pncp/v1/...``) over real HTTP, with seeded fault injection (429 bursts, 5xx, hangs,
dropped connections, truncated bodies, spurious 422, a silent page cap, repeated pages, a day
that grows while listed), exact exotic numbers, records that change over time (``update``;
``/atualizacao`` by current ``dataAtualizacaoGlobal``), contratos and atas with their
``/atualizacao`` listings and amendments (``amend``), plus ``/_sim/*`` control routes (truth,
grow, update, amend, remove, faults, stats, health). Run it in its own process::

    with SimulatorProcess(seed=7, per_day=50) as sim:
        settings = load_settings(None, base_url=sim.base_url)   # http://127.0.0.1:PORT/api
        client = PncpClient(client_config(settings))            # inside a coroutine: async with client: ...
        truth = sim.truth("2025-10-22")

or from a shell: ``python -m pncp_ingest.testing serve --port 0 --seed 42``.
"""

from ._app import Faults, make_app, serve
from ._contratos import SimulatedOutcomes
from ._data import MODALIDADES, SimulatedPncp
from ._process import SimulatorProcess, SimulatorStartError

__all__ = [
    "MODALIDADES",
    "Faults",
    "SimulatedOutcomes",
    "SimulatedPncp",
    "SimulatorProcess",
    "SimulatorStartError",
    "make_app",
    "serve",
]
