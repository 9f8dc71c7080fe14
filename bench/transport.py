"""Client CPU per request of each HTTP transport, against the simulator (its own process).

Each transport runs in a fresh child process that issues the same detail requests (``/itens``
and ``/arquivos`` of a day's contratações, ``tamanhoPagina=500``) with a fixed number in
flight, reads every body, and reports its own CPU time (``time.process_time``) and wall time
for the request loop only (imports and the first connections excluded by a warm-up). The
simulator builds every response once beforehand, so its first-time generation is not latency.

    python bench/transport.py                      # 4000 requests, 32 in flight, 0 ms latency
    python bench/transport.py --requests 8000 --latency-ms 50
    python bench/transport.py --variants ours-aiohttp,bare-aiohttp --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from pncp_ingest.testing import SimulatorProcess

DAY = "2025-10-22"
_ID = re.compile(r"^([0-9A-Z]{14})-1-(\d{1,6})/(\d{4})$")


def _paths(truth: dict, n: int) -> list[str]:
    paths: list[str] = []
    for c in truth["contratacoes"]:
        m = _ID.match(c["numeroControlePNCP"])
        assert m
        cnpj, seq, ano = m.group(1), int(m.group(2)), int(m.group(3))
        for kind in ("itens", "arquivos"):
            paths.append(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/{kind}?pagina=1&tamanhoPagina=500")
    return (paths * (n // max(len(paths), 1) + 1))[:n]


VARIANTS = ("client-httpx", "client-httpx-aiohttp", "ours-httpx", "ours-aiohttp", "bare-aiohttp", "pncp-client")
DESCRIPTIONS = {
    "client-httpx": "httpx.AsyncClient, httpx's own transport (before)",
    "client-httpx-aiohttp": "httpx.AsyncClient over httpx_aiohttp.AiohttpTransport, as packaged",
    "ours-httpx": "HttpGetter, httpx's own transport (PNCP_HTTP_TRANSPORT=httpx)",
    "ours-aiohttp": "HttpGetter, aiohttp transport (PNCP_HTTP_TRANSPORT=aiohttp, default)",
    "bare-aiohttp": "aiohttp.ClientSession alone (the floor)",
    "pncp-client": "PncpClient (limiter, retries, JSON decode) over the aiohttp transport",
}


async def _child(variant: str, base: str, paths: list[str], inflight: int) -> dict:
    import httpx

    sem = asyncio.Semaphore(inflight)
    limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
    if variant == "bare-aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight))

        async def get(url: str) -> int:
            async with session.get(url) as r:
                await r.read()
                return r.status

        close = session.close
    elif variant.startswith("client-"):
        transport: httpx.AsyncBaseTransport
        if variant == "client-httpx-aiohttp":
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
        else:
            transport = httpx.AsyncHTTPTransport(limits=limits)
        client = httpx.AsyncClient(transport=transport, timeout=60)

        async def get(url: str) -> int:
            r = await client.get(url)
            return r.status_code

        close = client.aclose
    elif variant == "pncp-client":
        from pncp_ingest.config import load_settings
        from pncp_ingest.pncp import PncpClient, client_config

        pncp = PncpClient(client_config(load_settings(None, base_url=base, concurrency=inflight, rate=0)))

        async def get(url: str) -> int:
            path, _, query = url.removeprefix(base).partition("?")
            params = dict(p.split("=") for p in query.split("&"))
            await pncp._get_json("detail", path, params)
            return 200

        close = pncp.__aexit__
    else:
        from pncp_ingest.config import load_settings
        from pncp_ingest.pncp import client_config
        from pncp_ingest.pncp._transport import create_http_client

        settings = load_settings(None, concurrency=inflight, http_transport=variant.removeprefix("ours-"))
        getter = create_http_client(client_config(settings))

        async def get(url: str) -> int:
            r = await getter.get(url)
            return r.status_code

        close = getter.aclose

    async def one(url: str) -> int:
        async with sem:
            return await get(url)

    await asyncio.gather(*(one(base + p) for p in paths[: inflight * 4]))  # warm-up: connections, imports
    cpu0, wall0 = time.process_time(), time.perf_counter()
    statuses = await asyncio.gather(*(one(base + p) for p in paths))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close()
    bad = sum(1 for s in statuses if s not in (200, 204))
    return {
        "variant": variant,
        "requests": len(paths),
        "errors": bad,
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(paths) / wall, 1),
        "cpu_ms_per_request": round(1000 * cpu / len(paths), 3),
    }


def warm(base: str, paths: list[str], inflight: int = 32) -> None:
    """Have the simulator build (and cache) every response once, so its first-time generation
    does not add to the latency being measured."""

    async def run() -> None:
        import aiohttp

        sem = asyncio.Semaphore(inflight)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight)) as session:

            async def one(path: str) -> None:
                async with sem, session.get(base + path) as r:
                    await r.read()

            await asyncio.gather(*(one(p) for p in dict.fromkeys(paths)))

    asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(Path(args.child).read_text())
        print(json.dumps(asyncio.run(_child(spec["variant"], spec["base"], spec["paths"], spec["inflight"]))))
        return 0
    results = []
    with SimulatorProcess(seed=1, per_day=2000, big_items=False) as sim:
        paths = _paths(sim.truth(DAY), args.requests)
        warm(sim.base_url, paths)
        sim.set_faults(latency_ms=args.latency_ms)
        for variant in args.variants.split(","):
            spec = json.dumps({"variant": variant, "base": sim.base_url, "paths": paths, "inflight": args.inflight})
            spec_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"pncp-transport-{os.getpid()}.json"
            spec_file.write_text(spec)
            out = subprocess.run([sys.executable, __file__, "--child", str(spec_file)], capture_output=True, text=True)
            spec_file.unlink()
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            r = json.loads(out.stdout)
            results.append(r)
            print(
                f"{DESCRIPTIONS[variant]:70} {r['requests']:>6} req  {r['wall_s']:>7.2f} s  {r['requests_per_s']:>7.0f} req/s  "
                f"{r['cpu_ms_per_request']:>6.3f} ms CPU/req  errors {r['errors']}",
                flush=True,
            )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
