"""Per-family request limits: in-flight ceiling, request rate, and a shared throttle pause.

PNCP's consulta API answers 429 to a burst from anyone and blocks for ~25 s; a worker that
gets one pauses the whole family, so the other workers don't keep hitting the wall.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import anyio
from aiolimiter import AsyncLimiter


class FamilyLimiter:
    """Gate for one API family (``consulta`` or ``detail``)."""

    def __init__(self, name: str, concurrency: int, rate: float) -> None:
        self.name = name
        self._slots = anyio.CapacityLimiter(concurrency)
        # rate 0 = unlimited; a burst of one keeps requests evenly spaced rather than clumped.
        self._rate = AsyncLimiter(1, 1.0 / rate) if rate > 0 else None
        self._paused_until = 0.0

    @property
    def in_flight(self) -> int:
        return int(self._slots.borrowed_tokens)

    def pause(self, seconds: float) -> None:
        """Hold every new request of this family for ``seconds`` from now (never shortens a pause)."""
        self._paused_until = max(self._paused_until, anyio.current_time() + seconds)

    async def _wait_pause(self) -> None:
        while (delay := self._paused_until - anyio.current_time()) > 0:
            await anyio.sleep(delay)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._wait_pause()
        async with self._slots:
            await self._wait_pause()
            if self._rate is not None:
                await self._rate.acquire()
            yield
