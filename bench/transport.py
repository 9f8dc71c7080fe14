"""Client CPU per request of the HTTP path, against the simulator (its own process).

Each variant runs in a fresh child process that issues the same detail requests (``/itens``
and ``/arquivos`` of a day's contratações, ``tamanhoPagina=500``) with a fixed number in
flight, reads every body, and reports its own CPU time (``time.process_time``) and wall time
for the request loop only (imports and the first connections excluded by a warm-up). The
simulator builds every response once beforehand, so its first-time generation is not latency.

Variants:
- ``ours``: the run's HTTP client, ``create_http_client(config)`` (``httpx.AsyncClient``);
- ``pncp-client``: ``PncpClient.detail`` over it (limiter, retries, decode into bronze rows),
  CPU per request it sent (``stats.requests``);
- ``bare-httpx``: ``httpx.AsyncClient`` with its defaults; ``bare-aiohttp``: an
  ``aiohttp.ClientSession`` alone (the floor).

``--baseline-python`` also runs ``ours``, ``pncp-client`` and ``bare-httpx`` under another
interpreter, one whose ``pncp_ingest`` is another commit (e.g. a checkout of main with its own
venv): they use only what every commit has, so the two rows of each compare the commits (and,
for ``bare-httpx``, the two environments: with and without ``sniffio``, say).

    python bench/transport.py                      # 4000 requests, 32 in flight, 0 ms latency
    python bench/transport.py --requests 8000 --latency-ms 50
    python bench/transport.py --variants ours,pncp-client --baseline-python ../main/.venv/bin/python
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pncp_ingest.testing import SimulatorProcess

DAY = "2025-10-22"
_ID = re.compile(r"^([0-9A-Z]{14})-1-(\d{1,6})/(\d{4})$")
_PATH = re.compile(r"/pncp/v1/orgaos/(\d{14})/compras/(\d{4})/(\d+)/(itens|arquivos)\?")


def _paths(truth: dict, n: int) -> list[str]:
    paths: list[str] = []
    for c in truth["contratacoes"]:
        m = _ID.match(c["numeroControlePNCP"])
        assert m
        cnpj, seq, ano = m.group(1), int(m.group(2)), int(m.group(3))
        for kind in ("itens", "arquivos"):
            paths.append(f"/pncp/v1/orgaos/{cnpj}/compras/{ano}/{seq}/{kind}?pagina=1&tamanhoPagina=500")
    return (paths * (n // max(len(paths), 1) + 1))[:n]


VARIANTS = ("ours", "pncp-client", "bare-httpx", "bare-aiohttp")
BASELINE_VARIANTS = ("ours", "pncp-client", "bare-httpx")
DESCRIPTIONS = {
    "ours": "create_http_client(config): the run's HTTP client",
    "pncp-client": "PncpClient.detail (limiter, retries, decode) over it",
    "bare-httpx": "httpx.AsyncClient with its defaults",
    "bare-aiohttp": "aiohttp.ClientSession alone (the floor)",
}


async def _child(variant: str, base: str, paths: list[str], inflight: int) -> dict:
    sem = asyncio.Semaphore(inflight)
    sent = None  # how many requests the variant sent, when it may send more than one per path
    if variant == "bare-aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=inflight))

        async def get(url: str) -> int:
            async with session.get(url) as r:
                await r.read()
                return r.status

        close = session.close
    elif variant == "bare-httpx":
        import httpx

        limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
        client = httpx.AsyncClient(limits=limits, timeout=60)

        async def get(url: str) -> int:
            r = await client.get(url)
            return r.status_code

        close = client.aclose
    elif variant == "pncp-client":
        from pncp_ingest.config import load_settings
        from pncp_ingest.pncp import PncpClient, client_config

        pncp = PncpClient(client_config(load_settings(None, base_url=base, concurrency=inflight, rate=0)))

        async def get(url: str) -> int:
            m = _PATH.search(url)
            assert m
            await pncp.detail(m.group(4), m.group(1), int(m.group(2)), int(m.group(3)))  # type: ignore[arg-type]
            return 200

        def sent() -> int:
            return pncp.stats.requests

        close = pncp.__aexit__
    else:
        from pncp_ingest.config import load_settings
        from pncp_ingest.pncp import client_config

        try:
            from pncp_ingest.pncp import create_http_client
        except ImportError:  # a commit from before it was public (for --baseline-python)
            from pncp_ingest.pncp._transport import create_http_client  # type: ignore[attr-defined,no-redef]

        getter = create_http_client(client_config(load_settings(None, base_url=base, concurrency=inflight)))

        async def get(url: str) -> int:
            r = await getter.get(url)
            return r.status_code

        close = getter.aclose

    async def one(url: str) -> int:
        async with sem:
            return await get(url)

    await asyncio.gather(*(one(base + p) for p in paths[: inflight * 4]))  # warm-up: connections, imports
    sent0 = sent() if sent else 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    statuses = await asyncio.gather(*(one(base + p) for p in paths))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    requests = sent() - sent0 if sent else len(paths)
    await close()
    bad = sum(1 for s in statuses if s not in (200, 204))
    return {
        "variant": variant,
        "python": sys.executable,
        "requests": requests,
        "errors": bad,
        "wall_s": round(wall, 3),
        "requests_per_s": round(requests / wall, 1),
        "cpu_ms_per_request": round(1000 * cpu / requests, 3),
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


def _run_child(python: str, spec: dict) -> dict:
    spec_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"pncp-transport-{os.getpid()}.json"
    spec_file.write_text(json.dumps(spec))
    try:
        out = subprocess.run([python, __file__, "--child", str(spec_file)], capture_output=True, text=True)
    finally:
        spec_file.unlink()
    if out.returncode != 0:
        raise SystemExit(f"{spec['variant']} under {python} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--inflight", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, interleaved; medians shown")
    parser.add_argument("--baseline-python", default=None, help="also run ours and pncp-client under this interpreter")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        spec = json.loads(Path(args.child).read_text())
        print(json.dumps(asyncio.run(_child(spec["variant"], spec["base"], spec["paths"], spec["inflight"]))))
        return 0
    plan = [("", sys.executable, v) for v in args.variants.split(",")]
    if args.baseline_python:
        plan += [("baseline ", args.baseline_python, v) for v in args.variants.split(",") if v in BASELINE_VARIANTS]
    runs: dict[tuple[str, str], list[dict]] = {(label, v): [] for label, _, v in plan}
    with SimulatorProcess(seed=1, per_day=2000, big_items=False) as sim:
        paths = _paths(sim.truth(DAY), args.requests)
        warm(sim.base_url, paths)
        sim.set_faults(latency_ms=args.latency_ms)
        for _ in range(args.repeat):
            for label, python, variant in plan:
                spec = {"variant": variant, "base": sim.base_url, "paths": paths, "inflight": args.inflight}
                runs[(label, variant)].append(_run_child(python, spec))
    results = []
    for (label, variant), rs in runs.items():
        cpu = statistics.median(r["cpu_ms_per_request"] for r in rs)
        rate = statistics.median(r["requests_per_s"] for r in rs)
        results.append(
            {
                "variant": label + variant,
                "requests": rs[0]["requests"],
                "cpu_ms_per_request": cpu,
                "requests_per_s": rate,
                "runs": rs,
            }
        )
        print(
            f"{label + variant:24} {DESCRIPTIONS[variant]:52} {rs[0]['requests']:>6} req  {rate:>7.0f} req/s  "
            f"{cpu:>6.3f} ms CPU/req (median of {len(rs)}: {', '.join(str(r['cpu_ms_per_request']) for r in rs)})  "
            f"errors {sum(r['errors'] for r in rs)}",
            flush=True,
        )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
