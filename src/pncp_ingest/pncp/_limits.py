"""Per-family request limits: an adaptive in-flight limit, a request rate, a shared throttle pause.

Each API family (``consulta``, ``detail``) has one :class:`FamilyLimiter`:

- **In-flight limit, adaptive (AIMD).** It starts at the configured ceiling
  (``--concurrency`` / ``PNCP_CONSULTA_CONCURRENCY``) and is never above it. An overload signal
  cuts it multiplicatively: a 429 halves it, a 5xx, a timeout or a dropped connection takes a
  quarter off. One cut per round of requests: the requests already in flight when the limit was
  cut were sent at the old limit, so their failures do not cut it again. Healthy answers bring
  it back additively: +1 per ``limit`` successes (about one round trip of the whole window).
- **Probing gently where it was throttled.** Below the level at which the family last got a
  429, recovery is the plain +1 per round. At or above that level each +1 takes
  ``probe_rounds`` rounds, and ``probe_rounds`` doubles with every 429 (up to 64) and halves with
  every step that passes it: a server that blocks above some load (PNCP's consulta API blocks
  ~25 s) is probed ever more rarely instead of every few seconds, and a server that allows more
  again is found again.
- **A 429 pauses the family.** Every worker of the family waits out the server's Retry-After,
  or ``PNCP_THROTTLE_PAUSE`` without one, not just the one that got it.
- **A request rate** (``--rate``), a fixed cap independent of the above (0 = none).

With ``PNCP_ADAPTIVE=false`` the limit stays at the ceiling (the pause and the rate still apply).
What happened is in :class:`FamilyStats` (``ClientStats.families[name]``).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Literal

import anyio
from aiolimiter import AsyncLimiter

Signal = Literal["ok", "throttled", "overloaded"]

THROTTLE_FACTOR = 0.5  # a 429: the server says it is over its limit
OVERLOAD_FACTOR = 0.75  # a 5xx, timeout or dropped connection: maybe load, maybe noise
MAX_PROBE_ROUNDS = 64

_now = time.monotonic  # what anyio.current_time() is on asyncio, without its per-call backend lookup


@dataclass
class FamilyStats:
    """One API family's limits as the run goes; every field is current at any moment.

    ``limit`` is the in-flight limit now (at the end of a run: its final value), ``min_limit`` the
    lowest it went, ``ceiling`` the configured maximum, ``paused_s`` the seconds the family spent
    paused by 429s (a pause in progress counts in full), ``max_in_flight`` the most requests that
    were ever in flight at once (never above ``ceiling``).
    """

    ceiling: int
    limit: int
    min_limit: int
    in_flight: int = 0
    max_in_flight: int = 0
    paused_s: float = 0.0
    pauses: int = 0
    decreases: int = 0
    increases: int = 0

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["paused_s"] = round(self.paused_s, 3)
        return doc


@dataclass
class Ticket:
    """One admitted request: the limiter round it was sent in."""

    round: int


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class FamilyLimiter:
    """Gate for one API family (``consulta`` or ``detail``)."""

    def __init__(self, name: str, concurrency: int, rate: float, *, adaptive: bool = True) -> None:
        self.name = name
        self.ceiling = int(concurrency)
        self.adaptive = adaptive
        self.stats = FamilyStats(ceiling=self.ceiling, limit=self.ceiling, min_limit=self.ceiling)
        self._limit = float(self.ceiling)
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        # rate 0 = unlimited; a burst of one keeps requests evenly spaced rather than clumped.
        self._rate = AsyncLimiter(1, 1.0 / rate) if rate > 0 else None
        self._paused_until = 0.0
        self._round = 0  # bumped at every cut: a failure of an older round does not cut again
        self._successes = 0
        self._throttled_at: float | None = None  # the limit at the last 429
        self._probe_rounds = 1

    # -- what the client and the display read ---------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def paused(self) -> bool:
        return self._paused_until > _now()

    @property
    def pause_remaining(self) -> float:
        """Seconds until the family's pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - _now())

    # -- feedback ---------------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Hold every new request of this family for ``seconds`` from now (never shortens a pause)."""
        now = _now()
        until = now + seconds
        if until <= self._paused_until:
            return
        self.stats.paused_s += until - max(now, self._paused_until)
        if self._paused_until <= now:
            self.stats.pauses += 1
        self._paused_until = until

    def feedback(self, ticket: Ticket, signal: Signal) -> None:
        """What one admitted request's answer says about the server's load."""
        if signal == "ok":
            self._success()
        elif signal == "throttled":
            self._cut(ticket, THROTTLE_FACTOR, throttled=True)
        elif signal == "overloaded":
            self._cut(ticket, OVERLOAD_FACTOR, throttled=False)

    def _success(self) -> None:
        if not self.adaptive or self._limit >= self.ceiling:
            return
        self._successes += 1
        near_wall = self._throttled_at is not None and self._limit + 1 >= self._throttled_at
        rounds = self._probe_rounds if near_wall else 1
        if self._successes < rounds * self._limit:
            return
        self._successes = 0
        if self._throttled_at is not None and self._limit >= self._throttled_at:
            # Held the level that was throttled for its rounds: the server allows more now; probe faster.
            self._throttled_at = self._limit + 1
            self._probe_rounds = max(1, self._probe_rounds // 2)
        self._limit = min(float(self.ceiling), self._limit + 1)
        self.stats.limit = int(self._limit)
        self.stats.increases += 1
        self._wake()

    def _cut(self, ticket: Ticket, factor: float, *, throttled: bool) -> None:
        if not self.adaptive or ticket.round != self._round:
            return  # sent before the last cut: that cut already answered this overload
        if throttled:
            if self._throttled_at is not None:  # throttled again before passing the last level
                self._probe_rounds = min(MAX_PROBE_ROUNDS, self._probe_rounds * 2)
            self._throttled_at = self._limit
        self._round += 1
        self._successes = 0
        self._limit = max(1.0, float(int(self._limit * factor)))
        self.stats.limit = int(self._limit)
        self.stats.min_limit = min(self.stats.min_limit, self.stats.limit)
        self.stats.decreases += 1

    # -- admission --------------------------------------------------------------------------------

    def _can_enter(self) -> bool:
        return self._in_flight < int(self._limit)

    def _enter(self) -> None:
        self._in_flight += 1
        self.stats.in_flight = self._in_flight
        if self._in_flight > self.stats.max_in_flight:
            self.stats.max_in_flight = self._in_flight

    def _release(self) -> None:
        self._in_flight -= 1
        self.stats.in_flight = self._in_flight
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._can_enter():
            waiter = self._waiters.popleft()
            waiter.granted = True
            self._enter()
            waiter.event.set()

    async def _acquire(self) -> None:
        if not self._waiters and self._can_enter():
            self._enter()
            return
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self._release()
            else:
                self._waiters.remove(waiter)
            raise

    async def _wait_pause(self) -> None:
        while (delay := self._paused_until - _now()) > 0:
            await anyio.sleep(delay)

    def slot(self) -> _Slot:
        """``async with limiter.slot() as ticket``: hold one in-flight place of this family while a
        request is sent and answered.

        Waits out a pause, a free place under the limit and the rate; a pause that begins while
        waiting for the rate sends the request back to wait (it never holds a place paused)."""
        return _Slot(self)


class _Slot:
    __slots__ = ("limiter",)

    def __init__(self, limiter: FamilyLimiter) -> None:
        self.limiter = limiter

    async def __aenter__(self) -> Ticket:
        limiter = self.limiter
        while True:
            if limiter._paused_until > _now():
                await limiter._wait_pause()
            await limiter._acquire()
            try:
                if limiter._rate is not None:
                    await limiter._rate.acquire()
            except BaseException:
                limiter._release()
                raise
            if limiter._paused_until <= _now():
                return Ticket(limiter._round)
            limiter._release()

    async def __aexit__(self, *exc: object) -> None:
        self.limiter._release()
