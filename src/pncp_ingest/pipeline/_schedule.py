"""When a contratação's resultados are looked for again: the polling schedule, as pure functions.

Results appear when PNCP homologates items, weeks or months after publication, and PNCP does not
promise to list that at ``/atualizacao``; so a contratação with an item still in progress
(``situacaoCompraItem`` 1) is *unsettled* and polled again, after 1, 2, 4 … days (at most
``resultados_poll_max_days`` apart), until ``resultados_max_age_days`` after publication. A *settled* one (no item in
progress) is never polled again: its results cannot change without a new version, which
``atualizacoes`` sees.

The schedule lives in ``pncp_details``' commit meta, ``polls``: contratação → ``{"at",
"version"}`` (when its itens were last fetched, and its version then), plus ``"due"`` and
``"every"`` (next poll, interval in days) while it is unsettled, and ``"resultados"``: whether
the resultados were fetched with those itens (then a poll may reuse those of unchanged items). It is written with the details
row it was computed from, so a crash never leaves one without the other.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ..config import Settings
from ..dates import utcnow

Poll = dict[str, Any]
IN_PROGRESS = 1  # situacaoCompraItem "Em Andamento"


def now(settings: Settings) -> datetime:
    """The schedule's clock: ``settings.now`` when set (``PNCP_NOW``: tests and benchmarks), else the real one."""
    if settings.now is None:
        return utcnow()
    return settings.now if settings.now.tzinfo is not None else settings.now.replace(tzinfo=UTC)


def settled(itens: list[dict[str, Any]]) -> bool:
    """No item still in progress: nothing left for PNCP to homologate."""
    return not any(item.get("situacaoCompraItem") == IN_PROGRESS for item in itens)


def next_poll(
    itens: list[dict[str, Any]], at: datetime, version: str, settings: Settings, previous: Poll | None
) -> Poll:
    """The schedule after a poll (or a details fetch) at ``at`` that found ``itens``: nothing due
    when settled; else due after 1 day the first time, then after twice the previous interval, at
    most ``resultados_poll_max_days``. What a poll finds does not shorten the next interval: the
    items still in progress get their own homologation, which the cap finds within a week, and a
    schedule that only grows bounds the polls per contratação (6 in its first 30 days)."""
    poll: Poll = {"at": at.isoformat(), "version": version}
    if settled(itens):
        return poll
    if previous is None or "every" not in previous:
        every = 1.0
    else:
        every = min(2 * float(previous["every"]), settings.resultados_poll_max_days)
    poll.update(due=(at + timedelta(days=every)).isoformat(), every=every)
    return poll


def with_resultados(poll: Poll, fetched: bool) -> Poll:
    """Mark whether the row's resultados were fetched with its itens (so they agree item by item)."""
    poll["resultados"] = fetched
    return poll


def is_settled(poll: Poll) -> bool:
    return "due" not in poll


def expired(published: date, at: datetime, settings: Settings) -> bool:
    """Past the maximum age: no longer polled (PNCP's later changes still come through ``atualizacoes``)."""
    return at.date() > published + timedelta(days=settings.resultados_max_age_days)


def due(poll: Poll, at: datetime) -> bool:
    return datetime.fromisoformat(poll["due"]) <= at
