"""CPU the client adds per request on top of HTTP: the family limiter, the retry wrapper, the status
handling and the decode into bronze rows (``PncpClient.detail``), measured in-process against an HTTP getter that answers at once
with a prebuilt response (so no socket, parser or event-loop I/O is counted).

    python bench/client_overhead.py                 # 20000 calls, 32 concurrent
    python bench/client_overhead.py --calls 50000 --concurrency 1

Compare two commits by running it on each; ``bench/transport.py`` (variant ``pncp-client``) gives
the same comparison with real HTTP to the simulator.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx

from pncp_ingest.config import load_settings
from pncp_ingest.pncp import PncpClient

BODY = json.dumps([{"sequencialDocumento": 1, "titulo": "Edital"}]).encode()


class InstantGetter:
    """Answers every GET with the same 200 JSON body, without I/O."""

    def __init__(self) -> None:
        self.calls = 0

    @asynccontextmanager
    async def stream(self, method: str, url: str) -> AsyncIterator[httpx.Response]:
        self.calls += 1
        yield httpx.Response(200, content=BODY, request=httpx.Request(method, url))

    async def get(self, url: str) -> httpx.Response:  # what a client before streamed GETs called
        self.calls += 1
        return httpx.Response(200, content=BODY, request=httpx.Request("GET", url))

    async def aclose(self) -> None:
        pass


def make_client(getter: InstantGetter, concurrency: int) -> PncpClient:
    settings = load_settings(None, base_url="http://bench.invalid/api", concurrency=concurrency, rate=0)
    from pncp_ingest import pncp

    if not hasattr(pncp, "client_config"):  # the client before it took a ClientConfig (to compare commits)
        return pncp.PncpClient(settings, http=getter)  # type: ignore[arg-type,unused-ignore]
    return pncp.PncpClient(pncp.client_config(settings), http=getter)


async def run(calls: int, concurrency: int) -> float:
    """CPU seconds per call, after a warm-up."""
    getter = InstantGetter()
    client = make_client(getter, concurrency)
    path = "/pncp/v1/orgaos/00000000000191/compras/2025/1/arquivos"

    async def batch(n: int) -> None:
        async def worker(k: int) -> None:
            for _ in range(k):
                await client.detail("arquivos", "00000000000191", 2025, 1)

        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker, n // concurrency)

    await batch(min(calls, 2000))
    cpu0 = time.process_time()
    await batch(calls)
    cpu = time.process_time() - cpu0
    assert path and getter.calls > 0
    return cpu / (calls // concurrency * concurrency)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    samples = [anyio.run(run, args.calls, args.concurrency) for _ in range(args.repeat)]
    median = statistics.median(samples)
    print(
        f"client overhead: {1e6 * median:.1f} µs CPU per call (median of {args.repeat}; "
        f"min {1e6 * min(samples):.1f}, max {1e6 * max(samples):.1f}), {args.calls} calls, {args.concurrency} concurrent"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
