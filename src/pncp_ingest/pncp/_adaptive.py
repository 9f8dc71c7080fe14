"""The adaptive in-flight limit of one API family, decided from windows of answers, not from each one.

A single 5xx or timeout says little: PNCP answers a steady few percent of them whatever the load.
What says "too much" is a *window* of recent answers sent at the current limit.

The limit starts low (``SLOW_START``, 4) and doubles every few answers while they look like the
first ones, as TCP's slow start does: the first answers, at low load, give the no-load latency
that the rest is judged against (a client that starts at its ceiling never sees it). Then:

- **errors**: 30 % or more of the window's answers are 5xx, timeouts or dropped connections
  (a steady 7 % of noise reaches that in a window of 30 about once in 6,700; a server falling
  over, or an outage, does at once): the limit becomes the share the server answered well
  (``limit × (1 − error share)``, at most halved);
- **latency** (the gradient idea of Vegas-style limiters such as Netflix's concurrency-limits):
  the window's median latency of good answers against the lowest median seen so far (the
  no-load latency). A server past its knee queues, so its latency grows with what is in flight;
  when it exceeds ``TOLERANCE`` times the no-load latency, plus ``SLACK_S``, plus ``NOISE_SE``
  standard errors of the window's median (from its spread: PNCP's calls vary around their median
  by a lognormal factor of sigma ~0.5, so a window of 30 has a median within ~12 % of the truth,
  and the lowest of many such medians sits well below it) in two windows in a row (one slow
  window is as likely a hiccup of our own CPU), the limit shrinks in proportion (``limit ×
  threshold / median``, at most halved), which holds it near the knee instead of far past it.
  Within the threshold, latency is noise (payload mix, our CPU, the server's own spread);
- otherwise the window was healthy, and if the limit was actually used (something waited for a
  place, or in-flight reached it), it grows by ``√limit`` per window.

A 429 block that is about load (see :mod:`._limits`) reveals a hard limit: the server counts
requests in flight and blocks past some number. :meth:`throttled` is told the count that caused
it and comes back to just below it (not to half: below the limit every request is answered at
full speed, so halving would give up half the pace for nothing). Our count of what is in flight
may be one above the server's (an answer on its way back), so a block one below the count the
last block revealed is met the same way; one two or more below says that count was not safe at
all (the server's limit moved down, or is not about what is in flight): then the limit halves,
and grows back up to just below the new count. Above that count the limit grows only when the caller says a probe pays (``may_probe``,
decided on the family's clock: a failed probe costs a whole block of every worker); a probe that
holds a healthy window forgets the count, and growth is free again.

The no-load latency only goes down, except at a limit of one: latency there cannot be our load,
so it becomes the new no-load latency (a server that got slower on its own is not chased to zero).
Pure state, no I/O and no clock: :class:`~pncp_ingest.pncp._limits.FamilyLimiter` feeds it.
"""

from __future__ import annotations

import math
import statistics
from typing import Literal

SLOW_START = 4  # the first limit: doubled every SLOW_START_WINDOW answers while they stay healthy
SLOW_START_WINDOW = 10
MIN_WINDOW = 30  # answers; a window is max(MIN_WINDOW, 2 × limit): about two rounds of the limit
ERROR_LOAD = 0.3  # a window with this share of errors is load (or an outage), not noise
TOLERANCE = 1.5  # median latency up to this × the no-load latency is noise
NOISE_SE = 3.0  # and up to this many standard errors of the window's median more
SLACK_S = 0.01  # and up to this much more: our own CPU and the loopback, not the server (PNCP: 1–60 s)
MIN_GRADIENT = 0.5  # a latency cut at most halves the limit
THROTTLE_FACTOR = 0.5  # a block well below the count the last one revealed: not an in-flight limit we know

Verdict = Literal["errors", "latency", "healthy", "idle"]


class AdaptiveLimit:
    """The limit (``value``, between 1 and ``ceiling``) and the window it is judged on.

    ``round`` changes with every change of the limit: answers to requests sent at another limit
    say nothing about this one and are not counted."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.value = float(min(ceiling, SLOW_START))
        self.slow_start = self.value < ceiling
        self.round = 0
        self.noload: float | None = None
        self.decreases = 0
        self.increases = 0
        self.last_verdict: Verdict | None = None
        self._answers = 0
        self._errors = 0
        self._latencies: list[float] = []
        self._used = False
        self.blocked_at: int | None = None  # the in-flight count the last load block revealed as too many
        self._slow_windows = 0
        self.cuts: dict[str, int] = {"errors": 0, "latency": 0, "429": 0}

    @property
    def limit(self) -> int:
        return int(self.value)

    def used(self) -> None:
        """The limit was the bottleneck at some point of this window (a request waited, or in-flight hit it)."""
        self._used = True

    def answer(self, round_: int, ok: bool, latency_s: float, *, may_probe: bool = True) -> bool:
        """One answer (``ok``: a good one, else a 5xx, timeout or dropped connection) of a request
        sent at round ``round_``. True when the limit changed. ``may_probe`` False holds a healthy
        window's limit below the count the last block revealed (the caller's clock says a probe
        up to it would cost more than it may gain)."""
        if round_ != self.round:
            return False
        self._answers += 1
        if ok:
            self._latencies.append(latency_s)
        else:
            self._errors += 1
        if self.slow_start:
            if self._answers < max(SLOW_START_WINDOW, self.limit):
                return False
            return self._judge_slow_start()
        if self._answers < max(MIN_WINDOW, 2 * self.limit):
            return False
        return self._judge(may_probe)

    def _judge_slow_start(self) -> bool:
        """Double while the answers look like the first ones; anything else ends the slow start
        (without a cut: the full windows that follow decide)."""
        median = statistics.median(self._latencies) if self._latencies else None
        threshold = self._threshold()
        slow = median is not None and threshold is not None and median > threshold
        if median is not None:
            self.noload = median if self.noload is None else min(self.noload, median)
        # Half the window failing, not ERROR_LOAD: three in ten is one noise draw in 30 at 7 %.
        if slow or self._errors / self._answers >= 0.5 or not self._used:
            self.slow_start = False
            self._set(self.value)
            return False
        self.increases += 1
        self._set(self.value * 2)
        self.slow_start = self.value < self.ceiling
        return True

    def throttled(self, at: int) -> None:
        """A 429 block about load, caused by ``at`` requests in flight: back to just below that
        count; two or more below the count an earlier block revealed, halve."""
        self.slow_start = False
        at = max(1, at)
        if self.blocked_at is not None and at < self.blocked_at - 1:
            new = self.value * THROTTLE_FACTOR
        else:
            new = min(self.value, at - 1)
        self.blocked_at = at
        self._set(new)
        self.decreases += 1
        self.cuts["429"] += 1

    def _judge(self, may_probe: bool = True) -> bool:
        errors = self._errors / self._answers
        median = statistics.median(self._latencies) if self._latencies else None
        verdict: Verdict
        new = self.value
        threshold = self._threshold()
        slow = median is not None and threshold is not None and median > threshold
        self._slow_windows = self._slow_windows + 1 if slow else 0
        if errors >= ERROR_LOAD:
            verdict, new = "errors", self.value * max(MIN_GRADIENT, 1 - errors)
        elif slow and self.limit <= 1:
            verdict, self.noload = "healthy", median  # slow on its own: not our load
        elif slow and self._slow_windows >= 2:
            assert median is not None and self.noload is not None
            verdict = "latency"
            assert threshold is not None
            new = self.value * max(MIN_GRADIENT, threshold / median)
        elif slow:
            verdict = "idle"  # once may be a hiccup: neither cut nor grow
        else:
            verdict = "healthy" if self._used else "idle"
        if median is not None:
            self.noload = median if self.noload is None else min(self.noload, median)
        self.last_verdict = verdict
        if verdict == "healthy":
            new = self._grown(may_probe)
        old = self.limit
        self._set(new)
        if self.limit < old:
            self.decreases += 1
            self.cuts[verdict] += 1
        elif self.limit > old:
            self.increases += 1
        return self.limit != old

    def _grown(self, may_probe: bool) -> float:
        """A healthy window's next limit: by √limit, but not past the count the last block
        revealed; to that count (one more) only when a probe pays."""
        if self.value >= self.ceiling:
            return self.value
        step = self.value + max(1, math.isqrt(self.limit))
        if self.blocked_at is None:
            return step
        if self.value >= self.blocked_at:
            self.blocked_at = None  # a healthy window at the count that was blocked: it is allowed now
            return step
        if self.value + 1 < self.blocked_at:
            return min(step, self.blocked_at - 1)
        return self.value + 1 if may_probe else self.value

    def _threshold(self) -> float | None:
        """The median latency above which this window is slow (None: no no-load latency yet)."""
        if self.noload is None:
            return None
        noise = 0.0
        if len(self._latencies) >= 4:
            q1, _, q3 = statistics.quantiles(self._latencies, n=4)
            noise = NOISE_SE * 0.93 * (q3 - q1) / math.sqrt(len(self._latencies))  # the median's standard error
        return TOLERANCE * self.noload + SLACK_S + noise

    def _set(self, value: float) -> None:
        """A new limit starts a new window (even when it is the same: a cut of 1 stays 1)."""
        self.value = min(float(self.ceiling), max(1.0, float(int(value))))
        self.round += 1
        self._answers = self._errors = 0
        self._latencies = []
        self._used = False
