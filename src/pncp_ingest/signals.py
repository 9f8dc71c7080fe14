"""SIGINT/SIGTERM during a run: the first asks the work to wind down, a second stops it at once.

Winding down means the work sees its stop event set, commits what is complete, releases its
leases and returns; the caller learns which signal asked (``Outcome.interrupted``). A second
signal cancels the work and raises :class:`StoppedAtOnce` (exit 130/143): committed work is kept,
what was in flight since the last checkpoint is redone by the next run.

The command line and the Airflow tasks both run their work through :func:`run_until_signalled`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Generic, TypeVar

import anyio
import anyio.abc

from .errors import StoppedAtOnce, collapse

__all__ = ["SIGNALS", "Outcome", "run_until_signalled", "stop_at_once_outside_the_loop"]

T = TypeVar("T")
SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Outcome(Generic[T]):
    """What the work returned, and the signal that asked it to wind down (None: it ran to its end)."""

    value: T
    interrupted: str | None = None


async def run_until_signalled(
    work: Callable[[anyio.Event], Awaitable[T]],
    *,
    on_first: Callable[[str], None],
    signals: Sequence[signal.Signals] = SIGNALS,
) -> Outcome[T]:
    """Run ``work(stop)``. The first of ``signals`` sets ``stop`` and calls ``on_first`` with its
    name (the caller phrases the line); a second cancels the work and raises :class:`StoppedAtOnce`.

    Signals reach only the main thread, so from an event loop in any other thread (a worker
    thread of a host such as Airflow) the work runs without a watcher and the host's own
    signal handling applies. Errors come out as the one error the work raised, not as the task
    group's exception group.
    """
    stop = anyio.Event()
    received: list[str] = []
    result: list[T] = []
    try:
        async with anyio.create_task_group() as tg:

            async def watch(*, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
                with anyio.open_signal_receiver(*signals) as arriving:
                    task_status.started()
                    async for signum in arriving:
                        received.append(signal.Signals(signum).name)
                        if stop.is_set():
                            tg.cancel_scope.cancel()
                            return
                        stop.set()
                        on_first(received[0])

            if threading.current_thread() is threading.main_thread():
                await tg.start(watch)  # handlers in place before the work begins
            result.append(await work(stop))
            tg.cancel_scope.cancel()
    except BaseException as raised:
        if len(received) > 1:  # whatever the cancelled work raised on its way out
            raise StoppedAtOnce(received[-1]) from None
        exc = collapse(raised)
        if exc is raised:
            raise
        raise exc from None
    if not result:  # the second signal cancelled the work before it returned
        raise StoppedAtOnce(received[-1])
    return Outcome(result[0], received[0] if received else None)


def _stop_now(signum: int, frame: FrameType | None) -> None:
    raise StoppedAtOnce(signal.Signals(signum).name, second=False)


@contextmanager
def stop_at_once_outside_the_loop(
    signals: Sequence[signal.Signals] = SIGNALS, *, ignore_after: bool = False
) -> Iterator[Callable[[], None]]:
    """Outside the event loop (start-up, printing the summary) a signal stops at once, raising
    :class:`StoppedAtOnce` with the same line and exit code as a second signal in the loop.

    An event loop's own handlers replace these while it runs and put the defaults back when it
    ends: call the yielded function after it to reinstall these. Leaving, the previous handlers
    come back, or with ``ignore_after`` the signals are ignored: a process whose work is done
    exits within moments, and a late Ctrl-C must not turn its exit code into a traceback."""
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def reinstall() -> None:
        for sig in signals:
            signal.signal(sig, _stop_now)

    reinstall()
    try:
        yield reinstall
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if ignore_after else handler)
