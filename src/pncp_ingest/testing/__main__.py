"""``python -m pncp_ingest.testing serve|bench``.

serve: run the simulator; the first stdout line is ``listening http://HOST:PORT/api``.
bench: a hand-run throughput self-check (starts a simulator process unless --url is given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from ._app import Faults, serve
from ._contratos import ATAS_PER_DAY, CONTRATOS_PER_DAY, MAX_ATAS_PER_DAY, MAX_CONTRATOS_PER_DAY
from ._data import MAX_PER_DAY

# What the reference reports of the real PNCP's pace: ~1 s a call, more than ~6 in flight blocked for ~25 s.
PNCP_PACE = {"latency_ms": 1000.0, "latency_sigma": 0.5, "block_over": 6, "block_s": 25.0}


def _serve(args: argparse.Namespace) -> int:
    try:
        faults = Faults.model_validate_json(args.faults) if args.faults else Faults.model_validate({})
        if args.pace is not None:
            faults = faults.model_copy(update={**PNCP_PACE, "block_scope": args.pace})
        if args.latency_ms is not None:
            faults = faults.model_copy(update={"latency_ms": args.latency_ms})
    except ValueError as exc:
        print(f"invalid --faults: {exc}", file=sys.stderr)
        return 2
    asyncio.run(
        serve(
            args.host,
            args.port,
            seed=args.seed,
            per_day=args.per_day,
            big_items=args.big_items,
            exotic=args.exotic,
            page_cap=args.page_cap,
            faults=faults,
            contratos_per_day=args.contratos_per_day,
            atas_per_day=args.atas_per_day,
            exit_on_stdin_eof=args.exit_on_stdin_eof,
        )
    )
    return 0


async def _bench_run(
    base_url: str, paths: list[str], n: int, concurrency: int, client_kind: str
) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    counter = iter(range(n))

    if client_kind == "aiohttp":
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async with session.get(base_url + paths[0]) as r:
                await r.read()

            async def worker() -> None:
                for i in counter:
                    async with session.get(base_url + paths[i % len(paths)]) as r:
                        await r.read()
                        statuses[r.status] = statuses.get(r.status, 0) + 1

            t0 = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return time.perf_counter() - t0, statuses

    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, trust_env=False, timeout=30) as client:
        await client.get(paths[0])

        async def hworker() -> None:
            for i in counter:
                r = await client.get(paths[i % len(paths)])
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(hworker() for _ in range(concurrency)))
        return time.perf_counter() - t0, statuses


def _cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU time of a process (Linux /proc), to show the server's own cost."""
    if pid is None:
        return None
    try:
        import os

        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _bench(args: argparse.Namespace) -> int:
    from ._process import SimulatorProcess

    sim: Any = None
    if args.url:
        base_url = args.url.rstrip("/")
        import httpx

        truth = httpx.get(
            base_url[: -len("/api")] + "/_sim/truth", params={"date": args.date}, trust_env=False, timeout=60
        ).json()
    else:
        sim = SimulatorProcess(seed=42, per_day=args.per_day, big_items=False).start()
        base_url = sim.base_url
        truth = sim.truth(args.date)
    pid = sim.pid if sim is not None else None
    try:
        paths = []
        for rec in truth["contratacoes"][: args.compras]:
            cnpj, ano, seq = rec["orgaoEntidade"]["cnpj"], rec["anoCompra"], rec["sequencialCompra"]
            paths.append(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/itens?pagina=1&tamanhoPagina=500")
        cpu0 = _cpu_seconds(pid)
        elapsed, statuses = asyncio.run(_bench_run(base_url, paths, args.requests, args.concurrency, args.client))
        cpu1 = _cpu_seconds(pid)
    finally:
        if sim is not None:
            sim.stop()
    out: dict[str, Any] = {
        "client": args.client,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "distinct_paths": len(paths),
        "seconds": round(elapsed, 3),
        "req_per_s": round(args.requests / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }
    if cpu0 is not None and cpu1 is not None and cpu1 > cpu0:
        out["server_cpu_s"] = round(cpu1 - cpu0, 3)
        out["server_capacity_req_per_cpu_s"] = round(args.requests / (cpu1 - cpu0), 1)
    print(json.dumps(out))
    return 0


def _fault_keys() -> str:
    """The ``--faults`` keys with their defaults and meaning, for ``serve --help``."""
    lines = ["fault keys (--faults JSON; also SimulatorProcess(faults=...) and PUT /_sim/faults):"]
    for name, info in Faults.model_fields.items():
        default = info.get_default(call_default_factory=True)
        lines.append(f"  {name} (default {json.dumps(default)}): {info.description}")
    return "\n".join(lines)


def _share(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _count(most: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not 0 <= value <= most:
            raise argparse.ArgumentTypeError(f"must be between 0 and {most}")
        return value

    return parse


_per_day = _count(MAX_PER_DAY)


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pncp_ingest.testing", description="PNCP API simulator")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "serve",
        help="run the simulator until SIGTERM/SIGINT",
        epilog=_fault_keys(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=0, help="0 = any free port")
    s.add_argument(
        "--seed",
        type=int,
        default=42,
        help="seed of the generated data: the same seed serves the same records, byte for byte (default: %(default)s)",
    )
    s.add_argument(
        "--per-day",
        type=_per_day,
        default=200,
        help="contratações published per day before any growth, 0..30000 (default: %(default)s)",
    )
    s.add_argument(
        "--contratos-per-day",
        type=_count(MAX_CONTRATOS_PER_DAY),
        default=CONTRATOS_PER_DAY,
        help=f"contratos (about 40 %% of them empenhos) published per day, 0..{MAX_CONTRATOS_PER_DAY} "
        "(default: %(default)s)",
    )
    s.add_argument(
        "--atas-per-day",
        type=_count(MAX_ATAS_PER_DAY),
        default=ATAS_PER_DAY,
        help=f"atas de registro de preço published per day, 0..{MAX_ATAS_PER_DAY} (default: %(default)s)",
    )
    s.add_argument(
        "--page-cap",
        type=_positive,
        default=None,
        help="/itens and /arquivos silently serve at most this many records per page, whatever tamanhoPagina asks "
        "(pagina counts at the capped size); default: no cap",
    )
    s.add_argument(
        "--exotic",
        type=_share,
        default=0.0,
        help="share (0..1) of contratações and of itens carrying exotic numbers: many decimals, >= 1e32, integers "
        "beyond int64, numbers sent as strings; each day's first contratação then has valorTotalEstimado "
        "1234567890123.4567 (default: 0, off)",
    )
    s.add_argument(
        "--no-big-items",
        dest="big_items",
        action="store_false",
        help="do not give each day's first six contratações 0/10/11/500/501/1203 itens",
    )
    s.add_argument("--faults", default=None, help="JSON fault config, e.g. '{\"rate_5xx\":0.1}'")
    s.add_argument("--latency-ms", type=float, default=None, help="fixed added latency (overrides faults.latency_ms)")
    s.add_argument(
        "--pace",
        choices=("client", "family"),
        default=None,
        help="PNCP's pace: calls of ~1 s (lognormal, sigma 0.5), more than 6 in flight blocked for 25 s "
        "(HTML 429s), counted per client or per API family (sets those --faults keys)",
    )
    s.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (used by SimulatorProcess)")
    s.set_defaults(func=_serve)

    b = sub.add_parser("bench", help="throughput self-check: N itens requests with httpx")
    b.add_argument("--url", default=None, help="bench a running simulator (its .../api base URL)")
    b.add_argument("--requests", type=int, default=5000)
    b.add_argument("--concurrency", type=int, default=32)
    b.add_argument("--per-day", type=int, default=200)
    b.add_argument("--compras", type=int, default=200, help="distinct compras to cycle through")
    b.add_argument("--date", default="2025-10-22")
    b.add_argument("--client", choices=("httpx", "aiohttp"), default="httpx")
    b.set_defaults(func=_bench)

    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
