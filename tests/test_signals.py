"""Ctrl-C and SIGTERM in a real process: the first winds down, a second stops at once, always
with 130/143 and one line, never a traceback; the next run completes the day exactly."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest
from bronze import cli_command, cli_env, list_keys, read_bronze, wait_for
from inprocess import invoke

DAY = "2025-10-22"


class Lines:
    """A process's stderr, read line by line as it comes, so a test can wait on a line."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def text(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


@pytest.mark.parametrize("gap", [0.01, 0.3])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_stops_at_once_with_one_line(sim_factory, tmp_path, sig, gap):
    sim = sim_factory(seed=21, per_day=120, latency_ms=20)
    dest = str(tmp_path / "bronze")
    assert invoke("contratacoes", "--date", DAY, "--dest", dest, "--base-url", sim.base_url).code == 0
    args = ("details", "--date", DAY, "--dest", dest, "--base-url", sim.base_url, "--checkpoint-every", "5")
    proc = subprocess.Popen(
        cli_command(*args, "--json"), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    err = Lines(proc.stderr)
    wait_for(
        lambda: any("/commits/" in k for k in list_keys(dest, "_state/pncp_details")) or proc.poll() is not None,
        60,
        "a first checkpoint",
    )
    assert proc.poll() is None, "the run ended before the signal: make the day slower"
    first = time.monotonic()
    proc.send_signal(sig)
    if gap > 0.1:  # the first signal was seen (its line printed) before the second is sent
        wait_for(lambda: err.has(f"{sig.name} received") or proc.poll() is not None, 30, "the first signal's line")
    time.sleep(max(0.0, first + gap - time.monotonic()))  # the gap under test, not a wait for a result
    proc.send_signal(sig)
    out = proc.stdout.read()
    code = proc.wait(60)
    stderr = err.text()
    expected = 143 if sig == signal.SIGTERM else 130
    assert code == expected, stderr
    assert "Traceback" not in stderr and "Error" not in stderr.replace("error:", ""), stderr
    assert "run the same details command again to continue" in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if gap < 0.1:  # the run cannot have wound down in 10 ms: the second signal stopped it
        assert errors == [
            f"error: stopped at once by a second {sig.name}: committed work is kept; "
            "run the same details command again to continue"
        ]
    else:
        assert len(errors) <= 1, stderr
    doc = json.loads(out)  # --json: one object, whatever happened, with the real exit code
    assert doc["exit_code"] == expected and doc["status"] == "interrupted" and doc["interrupted"] == sig.name
    # The next run completes the day: every contratação's details exactly once.
    again = invoke(*args, "--json")
    assert again.code == 0, again.stderr
    rows = read_bronze(dest, "pncp_details").column("numeroControlePNCP").to_pylist()
    assert sorted(rows) == sorted(c["numeroControlePNCP"] for c in sim.truth(DAY)["contratacoes"])
