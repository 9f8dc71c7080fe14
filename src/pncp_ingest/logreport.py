"""A run's report as Python ``logging`` records, for hosts that sort a log by level (Airflow's task
log marks everything written to stderr as an error).

The lines are :class:`~pncp_ingest.report.PlainReporter`'s, without its timestamp (each record
has one): progress at INFO, retries and failed records at WARNING, errors at ERROR, and the
summary at INFO when the run is ok, WARNING otherwise. A checkpoint line says how far its day is,
``N of M``, so a log watched from afar shows the day moving.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING

from .report import PlainReporter

if TYPE_CHECKING:
    from .pipeline import Event, RunSummary


class LoggingReporter(PlainReporter):
    """:class:`PlainReporter`'s lines, each as a record of ``logger`` at the level it deserves."""

    def __init__(self, logger: logging.Logger, *, verbose: bool = False) -> None:
        super().__init__(verbose=verbose)
        self.logger = logger
        self._level = logging.INFO
        # Per (dataset, day): contratações planned for details, pages known and listed, rows committed.
        self._planned: dict[tuple[str, date], int] = {}
        self._pages: dict[tuple[str, date], list[int]] = {}
        self._committed: dict[tuple[str, date], int] = {}

    def line(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        self.logger.log(self._level, text)

    def warning(self, message: str) -> None:
        self.logger.warning(message)

    def error(self, message: str) -> None:
        self.logger.error(message)

    @contextmanager
    def _at(self, level: int) -> Iterator[None]:
        self._level, before = level, self._level
        try:
            yield
        finally:
            self._level = before

    def event(self, event: Event) -> None:
        key = (event.dataset, event.day)
        if event.kind == "progress":
            if "compras_planned" in event.data:
                self._planned[key] = self._planned.get(key, 0) + event.data["compras_planned"]
            pages = self._pages.setdefault(key, [0, 0])
            pages[0] += event.data.get("pages_done", 0)
            pages[1] += event.data.get("pages_planned", 0)
            return
        if event.kind == "checkpoint":
            self._committed[key] = self._committed.get(key, 0) + event.data.get("rows", 0)
            self.line(f"{event.dataset} {event.day}: {event.message}: {self._progress(key)}")
            return
        with self._at(logging.WARNING if event.kind in ("retry", "failure") else logging.INFO):
            super().event(event)

    def _progress(self, key: tuple[str, date]) -> str:
        """``N of M contratações committed`` for details; for a listing, whose size shows only as
        its pages come in, the contratações committed and ``N of M pages`` listed."""
        committed = self._committed[key]
        if key in self._planned:
            return f"{committed} of {self._planned[key]} contratações committed"
        done, known = self._pages.get(key, [0, 0])
        return f"{committed} contratações committed, {done} of {known} pages listed"

    def summary(self, summary: RunSummary) -> None:
        with self._at(logging.INFO if summary.status == "ok" else logging.WARNING):
            super().summary(summary)
