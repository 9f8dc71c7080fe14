"""Per-family request limits: an adaptive in-flight limit, a learned 429 pause, a retry budget, a rate.

Each API family (``consulta``, ``detail``) has one :class:`FamilyLimiter`; both share one
:class:`SharedBudget`, the client's.

- **In-flight limit, adaptive.** It starts low (:mod:`._adaptive`'s slow start) and is never above
  the configured ceiling (``--concurrency`` / ``PNCP_CONSULTA_CONCURRENCY``). It moves on evidence
  of load judged over windows of answers (error share, latency against the no-load latency), not
  on each error. The rules are in :mod:`._adaptive`.
- **A 429 block about load reveals a hard limit.** A block is about load when it outlasts three
  pauses (the third probe gets a 429 too: the server keeps it up over time; a block that starts
  with a learned long pause: when a probe gets a 429 as late as that), or when blocks come
  back within a round of the last one's end twice in a row (they recur as soon as the load does).
  A burst of a few 429s at a random moment (the simulator's, PNCP's detail API's) is used up by
  the requests in flight and the first probes, and comes back within a round only by chance: it
  pauses the family but leaves the limit alone. A block about load was caused by the requests in
  flight when its first 429 was sent: the limit comes back to just below that count.
- **A probe above that count only when it pays.** Going from ``n`` to ``n + 1`` in flight saves
  ``1/(n + 1)`` of the time to come if the server allows it; if not, it costs a whole block of
  every worker (the block's length, as measured). The time to come is estimated by the time since
  the block (a run that has gone that long likely goes that much longer), and the chance that the
  server allows more now by that time over ``LIMIT_LIFETIME_S`` (PNCP's limit is configuration,
  changed rarely), doubled with each block at the same count. The probe pays when
  ``since² ≥ lifetime × (n + 1) × block``: against PNCP (7 in flight, 31 s to learn a 25 s block)
  that is after about 70 minutes, so a learned limit costs at most one block an hour, then fewer.
- **Families share the budget when PNCP counts them together.** A block that begins in one family
  while the other is in one says the server counts the client's requests, not each family's: from
  then on both families together keep below the total in flight that caused the first of them.
- **A 429 pauses the family, for a learned time.** Every worker of the family waits, not just
  the one that got it. With a Retry-After the pause is what the server says. Without one (the
  consulta API's HTML 429), the block's length is learned: the first pause is short
  (``PNCP_THROTTLE_PAUSE_INITIAL``), and while the block lasts it doubles, up to
  ``PNCP_THROTTLE_PAUSE`` (the cap). After a pause a single request probes whether the block is
  over; the others wait for its answer, so a block that lasts costs one request per pause, not
  one per worker. A block that outlasted its first pause teaches its length: the next block
  starts with one pause that long; one over at its first probe halves it, and so does every
  stretch without a 429 four times as long as it, so a block that comes back soon is waited out
  in one pause and a rare one starts short. 429s of requests already in flight when a pause
  began belong to that block: they neither lengthen the pause nor cut the limit again.
- **A retry budget** (the AWS SDKs' retry quota): each family starts with ``PNCP_RETRY_BUDGET``
  tokens; a retry after a 5xx or a bad body costs 5, after a timeout or a dropped connection 10,
  and every good answer gives one back (up to the start). With the budget spent, a failing request
  is not retried: when PNCP is down, the workers stop multiplying the load with their retries and
  the run ends, resumable, instead of hammering. 429s cost nothing (the pause governs them).
- **A request rate** (``--rate``), a fixed cap independent of the above (0 = none).

With ``PNCP_ADAPTIVE=false`` the limit stays at the ceiling (the pause, the budget and the rate
still apply). What happened is in :class:`FamilyStats` (``ClientStats.families[name]``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import anyio
from aiolimiter import AsyncLimiter

from ._adaptive import AdaptiveLimit
from ._config import FamilyLimits, RetryPolicy

Signal = Literal["ok", "throttled", "overloaded"]

SHRINK_AFTER = 4.0  # a stretch without a 429 this many times the learned pause halves it
LASTING_PAUSES = 3  # a block that still answers the probe after this many pauses is kept up by the server
LEARN_FACTOR = 1.5  # the next block's first pause: this × the longest the last one was seen to last
LIMIT_LIFETIME_S = 86400.0  # how long a limit PNCP revealed is expected to stay where it is: a day
RETRY_COST = 5  # tokens a retry after a 5xx / bad body costs (AWS: 5)
TIMEOUT_RETRY_COST = 10  # after a timeout or a dropped connection (AWS: 10)

Clock = Callable[[], float]


@dataclass
class FamilyStats:
    """One API family's limits as the run goes; every field is current at any moment.

    ``limit`` is the in-flight limit now (at the end of a run: its final value), ``min_limit``
    the lowest a cut took it, ``ceiling`` the configured maximum, ``paused_s`` the seconds the family spent
    paused by 429s (a pause in progress counts in full), ``blocks`` how many 429 blocks began (a
    pause after a good answer), ``pauses`` every pause (a block that lasts takes several),
    ``next_pause_s`` the pause the next 429 without Retry-After gets (in a block: its next pause), ``max_in_flight``
    the most requests that were ever in flight at once (never above ``ceiling``),
    ``retry_budget`` the tokens left and ``retries_refused`` the retries it refused.
    """

    ceiling: int
    limit: int
    min_limit: int
    in_flight: int = 0
    max_in_flight: int = 0
    paused_s: float = 0.0
    pauses: int = 0
    blocks: int = 0
    next_pause_s: float = 0.0
    decreases: int = 0
    increases: int = 0
    retry_budget: int = 0
    retries_refused: int = 0
    cuts: dict[str, int] = field(default_factory=dict)
    """The decreases by cause: ``errors`` (a window of them), ``latency`` (past the knee), ``429``."""
    client_limit: int | None = None
    """The limit on both families together, once a block struck both at once (None: each its own)."""

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["paused_s"] = round(self.paused_s, 3)
        doc["next_pause_s"] = round(self.next_pause_s, 3)
        return doc


@dataclass(frozen=True)
class Ticket:
    """One admitted request: the limit's round and the pause epoch it was sent in, when, and how
    many requests were in flight with it (itself included): its family's and the client's."""

    round: int
    epoch: int = 0
    sent_at: float = 0.0
    in_flight: int = 0
    total: int = 0


class RetryBudget:
    """Tokens that retries spend and good answers earn back (0 tokens at the start = no budget)."""

    def __init__(self, tokens: int) -> None:
        self.capacity = tokens
        self.tokens = tokens
        self.refused = 0

    def spend(self, cost: int) -> bool:
        if self.capacity <= 0:
            return True
        if self.tokens < cost:
            self.refused += 1
            return False
        self.tokens -= cost
        return True

    def earn(self) -> None:
        if self.tokens < self.capacity:
            self.tokens += 1


def probe_pays(since: float, count: int, block_s: float, blocks: int) -> bool:
    """Whether going back up to ``count`` in flight, ``since`` seconds after ``blocks`` blocks in a
    row at that count (each costing ``block_s``), is worth its risk.

    If the server allows it now, the probe saves ``1/count`` of the time to come (estimated by
    ``since``); the chance that it does is ``since`` over the limit's expected lifetime, doubled
    with each block at the count. If not, it costs a block. Gain ≥ cost: ``since² ≥ lifetime ×
    count × block_s`` (the odds against are taken as one)."""
    lifetime = math.ldexp(LIMIT_LIFETIME_S, max(0, blocks - 1))
    return since * since >= lifetime * count * block_s


class SharedBudget:
    """The client's requests in flight over every family, and the limit on them once PNCP is
    seen to count the families together (None until then)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.limit: int | None = None
        self.families: list[FamilyLimiter] = []

    def room(self) -> bool:
        return self.limit is None or self.in_flight < self.limit

    def wake(self) -> None:
        for family in self.families:
            family._wake()


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class FamilyLimiter:
    """Gate for one API family (``consulta`` or ``detail``)."""

    def __init__(
        self,
        name: str,
        limits: FamilyLimits,
        policy: RetryPolicy,
        *,
        adaptive: bool,
        shared: SharedBudget,
        clock: Clock = time.monotonic,
    ) -> None:
        # time.monotonic is what anyio.current_time() is on asyncio, without its per-call backend lookup.
        self._now = clock
        self.name = name
        self.ceiling = int(limits.concurrency)
        self.adaptive = adaptive
        self.shared = shared
        shared.families.append(self)
        rate, retry_budget = limits.rate, policy.retry_budget
        self.budget = RetryBudget(retry_budget)
        self.pause_cap = policy.throttle_pause
        self.pause_initial = min(policy.throttle_pause_initial, self.pause_cap)
        self._adaptive = AdaptiveLimit(self.ceiling)
        start = self._adaptive.limit if adaptive else self.ceiling
        self.stats = FamilyStats(
            ceiling=self.ceiling,
            limit=start,
            min_limit=start,
            next_pause_s=self.pause_initial,
            retry_budget=retry_budget,
        )
        self.stats.cuts = self._adaptive.cuts
        self._in_flight = 0
        self._waiters: deque[_Waiter] = deque()
        # rate 0 = unlimited; a burst of one keeps requests evenly spaced rather than clumped.
        self._rate = AsyncLimiter(1, 1.0 / rate) if rate > 0 else None
        self._paused_until = 0.0
        self._epoch = 0  # bumped at every pause: a 429 of an older epoch belongs to a block already paused
        self._probing = False  # after a pause: one probe at a time until an answer is not a 429
        self._epoch_in_flight = 0  # requests in flight that were sent since the last pause began
        self._start_pause = self.pause_initial  # the learned first pause of a block
        self._next_pause = self.pause_initial  # the next pause of the block in progress
        self._block_began = 0.0
        self._block_seen_until = 0.0
        self._block_pauses = 0
        self._last_429 = 0.0
        self._good_since_probe = 0
        self._quick_blocks = 0  # blocks in a row that came back within a round
        self._blocks_seen = False
        self._block_cut = False  # this block already cut the limit (or was the client's, found by another family)
        self._block_ticket = Ticket(0)  # the first 429 of the block in progress: what was in flight
        self._hard_since: float | None = None  # when the last block about load was over
        self._hard_cost = 0.0  # and how long it lasted: what a failed probe costs
        self._hard_repeats = 0  # blocks about load in a row at the same count

    # -- what the client and the display read ---------------------------------------------------

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def limit(self) -> int:
        return self._adaptive.limit if self.adaptive else self.ceiling

    @property
    def paused(self) -> bool:
        return self._paused_until > self._now()

    @property
    def pause_remaining(self) -> float:
        """Seconds until the family's pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._now())

    @property
    def probing(self) -> bool:
        """After a 429 pause, until an answer that is not a 429: one request in flight at a time."""
        return self._probing

    # -- feedback ---------------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        """Hold every new request of this family for ``seconds`` from now (never shortens a pause)."""
        now = self._now()
        until = now + seconds
        if until <= self._paused_until:
            return
        self.stats.paused_s += until - max(now, self._paused_until)
        if self._paused_until <= now:
            self.stats.pauses += 1
        self._paused_until = until
        self._epoch += 1
        self._epoch_in_flight = 0

    def throttled(self, ticket: Ticket, retry_after: float | None = None) -> float:
        """A 429: pause the family (Retry-After, else the learned pause) and, if the block is about
        load, cut the limit. Returns the seconds the family is paused from now."""
        if ticket.epoch != self._epoch:
            return self.pause_remaining  # in flight when the block's pause began: already answered
        now = self._now()
        self._last_429 = now
        if not self._probing:
            self.stats.blocks += 1
            self._block_ticket = ticket
            joint = self._joint_block(now)
            # A block that came back within a round of the last one's end is likely this load's;
            # twice in a row it is (a random burst does that once in ~(limit × burst rate)², a
            # block over the server's limit every time).
            quick = self._blocks_seen and self._good_since_probe < max(self.limit, 2)
            self._quick_blocks = self._quick_blocks + 1 if quick else 0
            load = self._quick_blocks >= 2 and not joint
            self._blocks_seen = True
            self._block_cut = joint
            self._block_began = now
            self._block_pauses = 0
            self._next_pause = self._start_pause
        else:
            # The block outlasted its pauses (or, started with a learned long pause, the time they
            # take): a block the server keeps up over time, not a burst of a few 429s that the
            # requests in flight (or the first probes) use up.
            lasting = ticket.sent_at - self._block_began >= (2**LASTING_PAUSES - 1) * self.pause_initial
            load = not self._block_cut and (self._block_pauses >= LASTING_PAUSES or lasting)
        self._block_seen_until = ticket.sent_at  # the block was still on when this was sent
        if load and self.adaptive:
            self._block_cut = True
            self._quick_blocks = 0
            at = self._block_ticket.in_flight
            self._hard_repeats = self._hard_repeats + 1 if at == self._adaptive.blocked_at else 1
            self._adaptive.throttled(at)
            self._limit_changed()
        if retry_after is not None:
            seconds = retry_after
        else:
            seconds = self._next_pause
            self._next_pause = min(self.pause_cap, seconds * 2)
            self._block_pauses += 1
        self.stats.next_pause_s = self._next_pause
        self._good_since_probe = 0
        self._probing = True
        self.pause(seconds)
        return self.pause_remaining

    def _joint_block(self, now: float) -> bool:
        """A block beginning here while another family is in one: PNCP counts the client's requests
        together. From now on the families share a limit, just below the total in flight that
        caused the other's block."""
        for other in self.shared.families:
            if other is not self and other._probing and now - other._block_began <= self.pause_cap:
                caused = max(1, other._block_ticket.total - 1)
                self.shared.limit = caused if self.shared.limit is None else min(self.shared.limit, caused)
                for family in self.shared.families:
                    family.stats.client_limit = self.shared.limit
                return True
        return False

    def _block_over(self, now: float) -> None:
        """The probe was answered: the block is over. Learn its length, and after a cut what a
        failed probe would cost."""
        self._probing = False
        lasted = now - self._block_began
        if self._block_pauses > 1:
            # It outlasted its first pause: the next block starts with one pause of 1.5 × the
            # longest it was seen to last (a burst used up by the probes teaches little).
            seen = self._block_seen_until - self._block_began
            self._start_pause = min(self.pause_cap, max(self.pause_initial, LEARN_FACTOR * seen))
        elif self._block_pauses == 1:
            self._start_pause = max(self.pause_initial, self._start_pause / 2)  # shorter than thought
        self.stats.next_pause_s = self._start_pause
        if self._block_cut and self._adaptive.blocked_at is not None:
            self._hard_since = now
            self._hard_cost = max(lasted, self.pause_initial)
        self._wake()

    def _may_probe(self, now: float) -> bool:
        blocked_at = self._adaptive.blocked_at
        if blocked_at is None or self._hard_since is None:
            return True
        return probe_pays(now - self._hard_since, blocked_at, self._hard_cost, self._hard_repeats)

    def feedback(self, ticket: Ticket, signal: Signal, *, latency: float | None = None) -> None:
        """What one admitted request's answer says: ``ok``, or ``overloaded`` (5xx, timeout, dropped
        connection). A 429 goes to :meth:`throttled`. ``latency`` defaults to the time since it was sent."""
        if signal == "throttled":
            self.throttled(ticket)
            return
        now = self._now()
        if self._probing and ticket.epoch == self._epoch:
            self._block_over(ticket.sent_at)  # everyone may go
        ok = signal == "ok"
        if ok:
            self.budget.earn()
            self.stats.retry_budget = self.budget.tokens
            self._good_since_probe += 1
            if self._start_pause > self.pause_initial and now - self._last_429 >= SHRINK_AFTER * self._start_pause:
                # A long stretch without a 429: the next block may be a short one.
                self._start_pause = max(self.pause_initial, self._start_pause / 2)
                self.stats.next_pause_s = self._start_pause
                self._last_429 = now
        if not self.adaptive:
            return
        if latency is None:
            latency = now - ticket.sent_at
        if self._adaptive.answer(ticket.round, ok, latency, may_probe=self._may_probe(now)):
            self._limit_changed()

    def allow_retry(self, cost: int) -> bool:
        """Spend ``cost`` tokens of the retry budget on one retry; False when the budget is spent."""
        allowed = self.budget.spend(cost)
        self.stats.retry_budget = self.budget.tokens
        self.stats.retries_refused = self.budget.refused
        return allowed

    def _limit_changed(self) -> None:
        limit = self._adaptive.limit
        self.stats.limit = limit
        # The lowest it was cut to: the slow start's low beginning is not a cut.
        self.stats.min_limit = limit if self._adaptive.decreases == 0 else min(self.stats.min_limit, limit)
        self.stats.decreases = self._adaptive.decreases
        self.stats.increases = self._adaptive.increases
        self._wake()

    # -- admission --------------------------------------------------------------------------------

    def _can_enter(self) -> bool:
        if not self.shared.room():
            return False
        if self._probing:
            # One probe at a time, whatever is still in flight from before the pause: a request
            # hanging until its timeout must not hold the probe (and so the family) back.
            return self._epoch_in_flight < 1 and self._in_flight < self.limit
        return self._in_flight < self.limit

    def _enter(self) -> None:
        self._epoch_in_flight += 1
        self._in_flight += 1
        self.shared.in_flight += 1
        self.stats.in_flight = self._in_flight
        if self._in_flight > self.stats.max_in_flight:
            self.stats.max_in_flight = self._in_flight
        if self._in_flight >= self.limit:
            self._adaptive.used()

    def _release(self, epoch: int) -> None:
        if epoch == self._epoch and self._epoch_in_flight > 0:
            self._epoch_in_flight -= 1
        self._in_flight -= 1
        self.shared.in_flight -= 1
        self.stats.in_flight = self._in_flight
        self.shared.wake()

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
        self._adaptive.used()
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self._release(self._epoch)
            else:
                self._waiters.remove(waiter)
            raise

    async def _wait_pause(self) -> None:
        while (delay := self._paused_until - self._now()) > 0:
            await anyio.sleep(delay)

    def ticket(self) -> Ticket:
        return Ticket(self._adaptive.round, self._epoch, self._now(), self._in_flight, self.shared.in_flight)

    def slot(self) -> _Slot:
        """``async with limiter.slot() as ticket``: hold one in-flight place of this family while a
        request is sent and answered.

        Waits out a pause, a free place under the limit and the rate; a pause that begins while
        waiting for the rate sends the request back to wait (it never holds a place paused)."""
        return _Slot(self)


class _Slot:
    __slots__ = ("epoch", "limiter")

    def __init__(self, limiter: FamilyLimiter) -> None:
        self.limiter = limiter
        self.epoch = 0

    async def __aenter__(self) -> Ticket:
        limiter = self.limiter
        while True:
            if limiter._paused_until > limiter._now():
                await limiter._wait_pause()
            await limiter._acquire()
            entered = limiter._epoch
            try:
                if limiter._rate is not None:
                    await limiter._rate.acquire()
            except BaseException:
                limiter._release(entered)
                raise
            if limiter._paused_until <= limiter._now():
                ticket = limiter.ticket()
                self.epoch = entered
                return ticket
            limiter._release(entered)

    async def __aexit__(self, *exc: object) -> None:
        self.limiter._release(self.epoch)
