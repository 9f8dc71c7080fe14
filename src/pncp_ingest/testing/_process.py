"""Run the simulator in its own process and drive its ``/_sim`` control routes."""

from __future__ import annotations

import datetime as dt
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import weakref
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from ._app import Faults
from ._contratos import ATAS_PER_DAY, CONTRATOS_PER_DAY, Dataset
from ._data import as_date

__all__ = ["SimulatorProcess", "SimulatorStartError"]

_PKG_PARENT = str(Path(__file__).resolve().parents[2])  # the directory holding pncp_ingest/


class SimulatorStartError(RuntimeError):
    """The simulator process died or did not print its ``listening`` line in time."""


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Finalizer: never leave a simulator behind when its owner is garbage-collected."""
    if proc.poll() is None:
        proc.kill()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


class SimulatorProcess:
    """``python -m pncp_ingest.testing serve ...`` as a context manager.

    >>> with SimulatorProcess(seed=7, per_day=50) as sim:
    ...     httpx.get(sim.base_url + "/pncp/v1/modalidades")

    ``base_url`` ends in ``/api`` (what the client is configured with). The child exits when
    this process closes its stdin (i.e. also if the parent dies), on SIGTERM, or on ``stop()``.
    """

    def __init__(
        self,
        seed: int = 7,
        per_day: int = 50,
        big_items: bool = False,
        faults: Faults | dict[str, Any] | None = None,
        latency_ms: float = 0,
        *,
        page_cap: int | None = None,
        exotic: float = 0.0,
        contratos_per_day: int = CONTRATOS_PER_DAY,
        atas_per_day: int = ATAS_PER_DAY,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.seed, self.per_day, self.big_items = seed, per_day, big_items
        self.initial_faults = Faults.model_validate(faults) if isinstance(faults, dict) else faults
        self.latency_ms = latency_ms
        self.page_cap, self.exotic = page_cap, exotic
        self.contratos_per_day, self.atas_per_day = contratos_per_day, atas_per_day
        self.host, self.port = host, port
        self.startup_timeout = startup_timeout
        self.base_url = ""
        self.root_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._client: httpx.Client | None = None
        self._finalizer: weakref.finalize[..., Any] | None = None

    # ------------------------------------------------------------------ lifecycle

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "pncp_ingest.testing",
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--seed",
            str(self.seed),
            "--per-day",
            str(self.per_day),
            "--contratos-per-day",
            str(self.contratos_per_day),
            "--atas-per-day",
            str(self.atas_per_day),
            "--exit-on-stdin-eof",
        ]
        if not self.big_items:
            cmd.append("--no-big-items")
        if self.initial_faults is not None:
            cmd += ["--faults", self.initial_faults.model_dump_json()]
        if self.latency_ms:
            cmd += ["--latency-ms", str(self.latency_ms)]
        if self.page_cap is not None:
            cmd += ["--page-cap", str(self.page_cap)]
        if self.exotic:
            cmd += ["--exotic", repr(self.exotic)]
        return cmd

    def start(self) -> SimulatorProcess:
        if self._proc is not None:
            raise RuntimeError("simulator already started")
        env = dict(os.environ)
        env["PYTHONPATH"] = _PKG_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the process lifetime)
        proc = subprocess.Popen(
            self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env
        )
        self._proc = proc
        self._finalizer = weakref.finalize(self, _reap, proc)
        try:
            line = self._read_first_line(proc, time.monotonic() + self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        prefix = "listening "
        if not line.startswith(prefix):
            err = self._stderr_text()
            self.stop()
            raise SimulatorStartError(f"unexpected first line from simulator: {line!r}\n{err}")
        self.base_url = line[len(prefix) :].strip()
        self.root_url = self.base_url[: -len("/api")]
        self.port = int(self.root_url.rsplit(":", 1)[1])
        self._client = httpx.Client(base_url=self.root_url, trust_env=False, timeout=120.0)
        return self

    def _read_first_line(self, proc: subprocess.Popen[bytes], deadline: float) -> str:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SimulatorStartError(
                    f"simulator did not report 'listening' within {self.startup_timeout:g}s\n{self._stderr_text()}"
                )
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                proc.wait(5)
                raise SimulatorStartError(
                    f"simulator exited with code {proc.returncode} before listening\n{self._stderr_text()}"
                )
            buf += chunk
        return buf.split(b"\n", 1)[0].decode(errors="replace")

    def _stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return str(self._stderr.read().decode(errors="replace")[-8000:])
        except (OSError, ValueError):
            return ""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self._client is not None:
            self._client.close()
            self._client = None
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._finalizer is not None:
            self._finalizer.detach()
        return proc.returncode

    def __enter__(self) -> SimulatorProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ control routes

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        if self._client is None:
            raise RuntimeError("simulator is not running")
        r = self._client.request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text}")
        return r.json()

    def truth(
        self, date: dt.date | str, *, details: bool = False, versions: bool = False, exact: bool = False
    ) -> dict[str, Any]:
        """The current state of the contratações published on ``date``.

        ``{"contratacoes": [...], "itens": {id: n}, "arquivos": {id: n}, "gone": [ids],
        "added": {id: UTC time it was published}}`` (``added`` only lists contratações grown
        after the day was generated), plus ``"details": {id: {"itens": [...],
        "arquivos": [...], "resultados": [...]}}`` with ``details`` (resultados: every result of
        the items with ``temResultado``, in item order: what a correct client lands), ``"versions":
        {id: [every version, oldest first]}`` with ``versions``, and ``"exotic"`` when the
        simulator serves exotic values.
        ``exact`` decodes non-integer numbers as ``Decimal`` (exactly the text served).
        """
        return self._truth("/_sim/truth", date, details, versions, exact)

    def truth_atualizacao(
        self, date: dt.date | str, *, details: bool = False, versions: bool = False, exact: bool = False
    ) -> dict[str, Any]:
        """Like ``truth``, for the contratações ``/atualizacao`` lists on ``date`` (current dataAtualizacaoGlobal)."""
        return self._truth("/_sim/truth/atualizacao", date, details, versions, exact)

    def truth_contratos(self, day: dt.date | str, versions: bool = False, *, exact: bool = False) -> dict[str, Any]:
        """The current contratos published on ``day``, in listing order.

        ``{"contratos": [...]}``, plus ``"versions": {id: [every version, oldest first]}`` with
        ``versions`` and ``"exotic": {"contratos": {id: {field: exact JSON text}}}`` when the simulator
        serves exotic values. ``exact`` decodes non-integer numbers as ``Decimal``.
        """
        return self._truth("/_sim/truth/contratos", day, False, versions, exact)

    def truth_atas(self, day: dt.date | str, versions: bool = False, *, exact: bool = False) -> dict[str, Any]:
        """The current atas published on ``day``: ``{"atas": [...]}`` (+ ``"versions"`` as for contratos)."""
        return self._truth("/_sim/truth/atas", day, False, versions, exact)

    def truth_contratos_atualizacao(
        self, day: dt.date | str, versions: bool = False, *, exact: bool = False
    ) -> dict[str, Any]:
        """What ``/v1/contratos/atualizacao`` lists for ``day`` (current dataAtualizacaoGlobal on it),
        in its order: ``{"contratos": [...]}``."""
        return self._truth("/_sim/truth/contratos/atualizacao", day, False, versions, exact)

    def truth_atas_atualizacao(
        self, day: dt.date | str, versions: bool = False, *, exact: bool = False
    ) -> dict[str, Any]:
        """What ``/v1/atas/atualizacao`` lists for ``day``, in its order: ``{"atas": [...]}``."""
        return self._truth("/_sim/truth/atas/atualizacao", day, False, versions, exact)

    def _truth(self, path: str, date: dt.date | str, details: bool, versions: bool, exact: bool) -> dict[str, Any]:
        params: dict[str, str | int] = {
            "date": as_date(date).isoformat(),
            "details": int(details),
            "versions": int(versions),
        }
        if self._client is None:
            raise RuntimeError("simulator is not running")
        r = self._client.get(path, params=params)
        if r.status_code >= 400:
            raise RuntimeError(f"GET {path} -> {r.status_code}: {r.text}")
        truth: dict[str, Any] = json.loads(r.content, parse_float=Decimal) if exact else r.json()
        return truth

    def update(
        self, date: dt.date | str, first: dt.date | str, last: dt.date | str | None = None, share: float = 0.3
    ) -> list[dict[str, Any]]:
        """One round of updates on update day ``date`` to ``share`` of the contratações published in
        [first, last]; returns ``[{"id", "changes", "dataAtualizacaoGlobal"}]`` (see ``SimulatedPncp.update``)."""
        params: dict[str, Any] = {"date": as_date(date).isoformat(), "first": as_date(first).isoformat()}
        if last is not None:
            params["last"] = as_date(last).isoformat()
        params["share"] = share
        updated: list[dict[str, Any]] = self._call("POST", "/_sim/update", params=params)["updated"]
        return updated

    def homologate(
        self,
        date: dt.date | str,
        first: dt.date | str,
        last: dt.date | str | None = None,
        share: float = 0.5,
        listed: float = 0.5,
    ) -> list[dict[str, Any]]:
        """On day ``date``, a homologation act for ``share`` of the contratações published in [first,
        last] with items in progress: it decides most of them (most are homologated and get
        resultados); each changed contratação is listed at ``/atualizacao`` with chance ``listed``,
        else changes silently. Returns ``[{"id", "itens", "listed", "at"}]``."""
        params: dict[str, Any] = {"date": as_date(date).isoformat(), "first": as_date(first).isoformat()}
        if last is not None:
            params["last"] = as_date(last).isoformat()
        params.update(share=share, listed=listed)
        changed: list[dict[str, Any]] = self._call("POST", "/_sim/homologate", params=params)["homologated"]
        return changed

    def homologations(self) -> dict[str, str]:
        """``"id|numeroItem"`` → the ISO day :meth:`homologate` homologated that item."""
        found: dict[str, str] = self._call("GET", "/_sim/homologations")
        return found

    def amend(
        self,
        dataset: Dataset,
        date: dt.date | str,
        first: dt.date | str,
        last: dt.date | str | None = None,
        share: float = 0.3,
    ) -> list[dict[str, Any]]:
        """Amend ``share`` of the ``dataset`` ("contratos" or "atas") records published in [first, last]
        on update day ``date``; returns ``[{"id", "changes", "dataAtualizacaoGlobal"}]``.

        Contratos get ``numeroRetificacao`` + 1, new ``valorGlobal``/``valorAcumulado`` and sometimes a
        later ``dataVigenciaFim``; atas are sometimes cancelled, else their objeto is rectified. Their
        ``dataAtualizacao`` and ``dataAtualizacaoGlobal`` move to ``date``; every version stays in the truth.
        """
        params: dict[str, Any] = {
            "dataset": dataset,
            "date": as_date(date).isoformat(),
            "first": as_date(first).isoformat(),
            "share": share,
        }
        if last is not None:
            params["last"] = as_date(last).isoformat()
        updated: list[dict[str, Any]] = self._call("POST", "/_sim/amend", params=params)["updated"]
        return updated

    def grow(self, date: dt.date | str, n: int) -> list[str]:
        """Publish ``n`` more contratações on ``date`` (listed last); returns the new ids."""
        added: list[str] = self._call("POST", "/_sim/grow", params={"date": as_date(date).isoformat(), "n": n})["added"]
        return added

    def health(self) -> dict[str, Any]:
        """The options the simulator runs with: seed, per_day, big_items, exotic, page_cap,
        contratos_per_day, atas_per_day."""
        health: dict[str, Any] = self._call("GET", "/_sim/health")
        return health

    def remove(self, id: str) -> None:
        """Make that compra's itens/arquivos answer 404 (it stays listed)."""
        self._call("POST", "/_sim/remove", params={"id": id})

    def set_faults(self, faults: Faults | dict[str, Any] | None = None, **kw: Any) -> Faults:
        """Replace the whole fault config (unspecified kinds go back to off)."""
        if faults is None:
            faults = Faults(**kw)
        elif isinstance(faults, dict):
            faults = Faults.model_validate({**faults, **kw})
        elif kw:
            faults = faults.model_copy(update=kw)
        body = faults.model_dump_json()
        return Faults.model_validate(
            self._call("PUT", "/_sim/faults", content=body, headers={"content-type": "application/json"})
        )

    def faults(self) -> Faults:
        return Faults.model_validate(self._call("GET", "/_sim/faults"))

    def stats(self) -> dict[str, Any]:
        """``{"requests": {kind: n}, "statuses": {"200": n, ...}, "faults": {kind: n}}``."""
        stats: dict[str, Any] = self._call("GET", "/_sim/stats")
        return stats

    def reset_stats(self) -> None:
        self._call("POST", "/_sim/stats/reset")

    def __repr__(self) -> str:
        return f"SimulatorProcess(seed={self.seed}, per_day={self.per_day}, base_url={self.base_url!r})"
