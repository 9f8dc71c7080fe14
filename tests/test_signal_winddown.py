"""The shared wind-down (pncp_ingest.signals) with real signals sent to this process: the first
sets the stop event and is reported once, a second stops at once, and from a worker thread the
work runs without touching signal handlers (the host's own handling applies)."""

from __future__ import annotations

import os
import signal
import threading

import anyio
import pytest

from pncp_ingest.errors import StoppedAtOnce
from pncp_ingest.signals import Outcome, run_until_signalled, stop_at_once_outside_the_loop


def _run(work, signals=(signal.SIGINT, signal.SIGTERM)):
    seen: list[str] = []

    async def main():
        return await run_until_signalled(work, on_first=seen.append, signals=signals)

    return anyio.run(main), seen


def test_the_first_signal_sets_stop_and_the_work_winds_down():
    async def work(stop: anyio.Event) -> str:
        os.kill(os.getpid(), signal.SIGTERM)
        with anyio.fail_after(10):
            await stop.wait()
        return "wound down"

    outcome, seen = _run(work)
    assert outcome == Outcome("wound down", "SIGTERM")
    assert seen == ["SIGTERM"]


def test_work_that_ends_on_its_own_is_not_interrupted():
    async def work(stop: anyio.Event) -> int:
        return 7

    outcome, seen = _run(work)
    assert outcome == Outcome(7, None) and seen == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_stops_at_once(sig):
    async def work(stop: anyio.Event) -> str:
        os.kill(os.getpid(), sig)
        with anyio.fail_after(10):
            await stop.wait()
        os.kill(os.getpid(), sig)
        await anyio.sleep(30)  # never winds down: only the second signal can end this
        return "not reached"

    with pytest.raises(StoppedAtOnce) as raised:
        _run(work)
    assert raised.value.signal_name == sig.name
    assert raised.value.exit_code == (143 if sig == signal.SIGTERM else 130)


def test_errors_come_out_as_the_error_the_work_raised():
    async def work(stop: anyio.Event) -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        _run(work)


def test_from_a_worker_thread_no_handler_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    results: list[object] = []

    async def work(stop: anyio.Event) -> str:
        results.append(signal.getsignal(signal.SIGTERM))
        return "done"

    thread = threading.Thread(target=lambda: results.append(_run(work, signals=(signal.SIGTERM,))[0]))
    thread.start()
    thread.join(30)
    assert results == [before, Outcome("done", None)]


def test_outside_the_loop_a_signal_stops_at_once_and_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StoppedAtOnce) as raised:
        with stop_at_once_outside_the_loop():
            os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler before the next line
    assert "stopped at once by SIGTERM" in str(raised.value)
    assert signal.getsignal(signal.SIGTERM) is before
