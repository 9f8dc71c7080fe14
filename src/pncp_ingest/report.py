"""How a run looks to the operator: plain timestamped lines on stderr, and the ``--json`` summary.

(The rich terminal panels are a later step; these lines are what cron and systemd see.)
"""

from __future__ import annotations

import json
import sys
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

from .config import Settings
from .dates import utcnow
from .pipeline import Event, RunSummary


def redact_url(url: str) -> str:
    """Drop any user:password@ from a URL before it is shown."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


class PlainReporter:
    """Timestamped lines on stderr: start, checkpoints, each day's end, the summary."""

    def __init__(self, *, quiet: bool = False, verbose: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.verbose = verbose
        self.stream = stream or sys.stderr

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        print(f"{utcnow():%Y-%m-%dT%H:%M:%SZ} {text}", file=self.stream, flush=True)

    def start(self, command: str, dates: list[str], dest: str, settings: Settings) -> None:
        span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]} ({len(dates)} days)"
        self.line(
            f"start {command} {span} -> {dest} (api {redact_url(settings.base_url)}, "
            f"consulta {settings.consulta_concurrency} in flight @ {settings.consulta_rate or 'unlimited'}/s, "
            f"detail {settings.concurrency} in flight @ {settings.rate or 'unlimited'}/s)"
        )

    def event(self, event: Event) -> None:
        if event.kind == "failure":
            self.line(f"{event.dataset} {event.day}: {event.message}", always=True)
        elif event.kind in ("checkpoint", "publish") and not self.verbose:
            if event.kind == "checkpoint":
                self.line(f"{event.dataset} {event.day}: {event.message}")
        else:
            self.line(f"{event.dataset} {event.day}: {event.message}")

    def summary(self, summary: RunSummary) -> None:
        doc = summary.to_json()
        self.line(
            f"end {summary.command} status={doc['status']} contratacoes={doc['contratacoes']} itens={doc['itens']} "
            f"arquivos={doc['arquivos']} requests={doc['requests']} retries={doc['retries']} failed={doc['failed']} "
            f"checkpoints={doc['checkpoints']} duration={doc['duration_s']:.1f}s",
            always=True,
        )
        for failure in summary.failures[:20]:
            self.line(f"failed {failure.day} {failure.what}: {failure.reason}", always=True)
        if len(summary.failures) > 20:
            self.line(f"... and {len(summary.failures) - 20} more failures (see --json)", always=True)
        if summary.failures:
            self.line("failed work is not marked done: run the same command again to retry it", always=True)

    def error(self, message: str) -> None:
        print(f"error: {message}", file=self.stream, flush=True)


def print_json(summary: RunSummary, stream: TextIO | None = None) -> None:
    print(json.dumps(summary.to_json(), ensure_ascii=False), file=stream or sys.stdout, flush=True)
