"""Dates as the operator writes them: ``YYYY-MM-DD``, ``today`` or ``yesterday`` in Brasília time.

PNCP's day is Brasília's day, so ``today`` in a crontab means the day PNCP is publishing now,
whatever the host's timezone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .errors import UsageError

BRASILIA = ZoneInfo("America/Sao_Paulo")


def brasilia_today() -> date:
    return datetime.now(BRASILIA).date()


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_day(text: str, option: str = "--date") -> date:
    """``YYYY-MM-DD`` | ``today`` | ``yesterday`` → date, or a UsageError naming the fix."""
    word = text.strip().lower()
    if word == "today":
        return brasilia_today()
    if word == "yesterday":
        return brasilia_today() - timedelta(days=1)
    try:
        return date.fromisoformat(word) if len(word) == 10 else _bad(text, option)
    except ValueError:
        return _bad(text, option)


def _bad(text: str, option: str) -> date:
    raise UsageError(f"{option} {text!r} is not a date: use YYYY-MM-DD (e.g. 2025-10-22), 'today' or 'yesterday'")


def day_range(first: date, last: date | None, first_option: str = "--date", last_option: str = "--to") -> list[date]:
    """Every day from ``first`` to ``last`` inclusive (just ``first`` when ``last`` is None)."""
    last = last or first
    if last < first:
        raise UsageError(
            f"{last_option} {last} is before {first_option} {first}: give an end date on or after the start"
        )
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
