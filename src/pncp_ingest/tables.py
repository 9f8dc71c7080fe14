"""Tables that fit the terminal: key columns are never cut, the others are left out in a set order.

rich shrinks every column of a table wider than the console, which cut the day to ``2025…``;
here the table is measured first and whole columns are left out until it fits, so each cell
that is shown is shown in full, and a caption says which columns are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

if TYPE_CHECKING:
    from .pipeline import RunSummary
    from .status import DayStatus


@dataclass(frozen=True)
class Column:
    name: str
    key: bool = False  # never left out
    left: bool = False  # justified left (text), else right (numbers)


def fit_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    drop_order: Sequence[str],
    row_styles: Sequence[str | None] | None = None,
) -> Table:
    """A table of ``rows`` no wider than the console.

    Columns are left out while the table is too wide: first those with nothing to say (every
    cell ``0`` or ``-``), then the others, each group in ``drop_order``."""
    index = {c.name: i for i, c in enumerate(columns)}
    empty = {c.name for c in columns if not c.key and all(row[index[c.name]] in ("0", "-", "") for row in rows)}
    order = [n for n in drop_order if n in empty] + [n for n in drop_order if n not in empty]
    shown = list(columns)
    dropped: list[str] = []
    while True:
        table = _table(title, shown, columns, rows, row_styles, dropped)
        # Measured without the console's width as a cap: the width the table would like.
        natural = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
        if natural <= console.width or not order:
            return table
        name = order.pop(0)
        shown = [c for c in shown if c.name != name]
        dropped.append(name)


def _table(
    title: str,
    shown: Sequence[Column],
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    row_styles: Sequence[str | None] | None,
    dropped: Sequence[str],
) -> Table:
    caption = f"not shown at this width: {', '.join(dropped)} (see --json)" if dropped else None
    # No outer edges: two more characters for the cells at 80 columns.
    table = Table(title=title, title_style="bold", caption=caption, caption_style="dim", show_edge=False)
    for column in shown:
        width = max([len(column.name)] + [len(row[list(columns).index(column)]) for row in rows])
        table.add_column(
            column.name,
            justify="left" if column.left else "right",
            no_wrap=True,
            min_width=width if column.key else None,
        )
    indexes = [list(columns).index(c) for c in shown]
    for n, row in enumerate(rows):
        table.add_row(*(row[i] for i in indexes), style=row_styles[n] if row_styles else None)
    return table


# -- the run summary ------------------------------------------------------------------------------

SUMMARY_COLUMNS = (
    Column("day", key=True, left=True),
    Column("dataset", key=True, left=True),
    Column("contratações"),
    Column("itens"),
    Column("arquivos"),
    Column("failed"),
    Column("gone"),
    Column("requests"),
    Column("retries"),
    Column("duration"),
)
SUMMARY_DROP_ORDER = ("gone", "retries", "requests", "arquivos", "itens", "duration", "failed", "contratações")


def summary_table(console: Console, summary: RunSummary) -> Table:
    """The closing table of a run: one row per (day, dataset); ``itens`` counts items."""
    rows = [
        [
            day.day,
            day.dataset,
            f"{day.contratacoes:,}",
            f"{day.itens:,}",
            f"{day.arquivos:,}",
            str(day.failed),
            str(day.gone),
            f"{day.requests:,}",
            str(day.retries),
            f"{day.duration_s:.1f}s" if day.status != "skipped" else "skipped",
        ]
        for day in summary.days
    ]
    styles = ["red" if day.failed else None for day in summary.days]
    title = f"pncp-ingest {summary.command}: {summary.status}"
    return fit_table(console, title, SUMMARY_COLUMNS, rows, SUMMARY_DROP_ORDER, styles)


# -- status ---------------------------------------------------------------------------------------

STATUS_COLUMNS = (
    Column("day", key=True, left=True),
    Column("complete", key=True, left=True),
    Column("contratações"),
    Column("details"),
    Column("pending"),
    Column("listing failed"),
    Column("details failed"),
    Column("gone"),
    Column("details stale"),
    Column("resultados pending"),
    Column("contratos"),
    Column("parts"),
    Column("itens done"),
    Column("arquivos done"),
    Column("last run", left=True),
    Column("held by", left=True),
)
# At 80 columns what is left is the day, whether it is complete and why not, the contratações,
# what is pending, and when a run last touched it.
STATUS_DROP_ORDER = (
    "resultados pending",
    "contratos",
    "itens done",
    "arquivos done",
    "parts",
    "details stale",
    "held by",
    "gone",
    "details",
    "listing failed",
    "details failed",
    "pending",
    "last run",
    "contratações",
)
DATASET_NAMES = {
    "pncp": "listing",
    "pncp_details": "details",
    "pncp_atualizacoes": "updates",
    "pncp_contratos": "contratos",
}


def iso_minute(stamp: object) -> str:
    """A recorded time as ISO 8601 in UTC to the minute, zone included (``2025-10-23T14:03Z``)."""
    try:
        moment = datetime.fromisoformat(str(stamp)).astimezone(UTC)
    except ValueError:
        return "-"
    return f"{moment:%Y-%m-%dT%H:%MZ}"


def last_run(st: DayStatus) -> str:
    """Each dataset's last outcome and when it finished, on one line (for the plain lines)."""
    if st.never_run:
        return "never run"
    return (
        ", ".join(
            f"{DATASET_NAMES.get(name, name)} {run.get('outcome')} {iso_minute(run.get('finished_at'))}"
            for name, run in st.last_run.items()
        )
        or "-"
    )


def latest_run(st: DayStatus) -> str:
    """When a run last finished on the day (for the table, where the reason says how it went)."""
    times = sorted(iso_minute(run.get("finished_at")) for run in st.last_run.values())
    return times[-1] if times else "-"


def _counts(st: DayStatus, grouped: bool = True) -> list[str]:
    counts = [
        st.contratacoes,
        st.details,
        st.pending,
        st.contratacoes_failed,
        st.details_failed,
        st.gone,
        st.details_stale,
        st.resultados_pending,
        st.contratos,
        st.parts,
        st.itens_done,
        st.arquivos_done,
    ]
    return ["-" if st.never_run else f"{n:,}" if grouped else str(n) for n in counts]


def complete_word(st: DayStatus) -> str:
    return "yes" if st.complete else "never run" if st.never_run else "no"


# The plain lines: the table's columns with the reason a day is not complete in a column of its own.
STATUS_LINE_HEADER = [c.name.replace(" ", "_") for c in (*STATUS_COLUMNS[:2], Column("why not"), *STATUS_COLUMNS[2:])]


def status_row(st: DayStatus) -> list[str]:
    """One day as the plain lines show it; a day that never ran shows ``-`` rather than counts of zero."""
    held = "; ".join(st.held_by.values()) or "-"
    return [st.day, complete_word(st), st.open_because or "-", *_counts(st, grouped=False), last_run(st), held]


def status_table(console: Console, statuses: list[DayStatus]) -> Table:
    """The day, and in the same cell why it is not complete; whole columns left out to fit."""
    rows = [
        [
            st.day,
            complete_word(st) if st.complete or st.never_run else f"no: {st.open_because}",
            *_counts(st),
            latest_run(st),
            "; ".join(st.held_by.values()) or "-",
        ]
        for st in statuses
    ]
    styles = [None if st.complete else "dim" if st.never_run else "yellow" for st in statuses]
    return fit_table(console, "pncp-ingest status", STATUS_COLUMNS, rows, STATUS_DROP_ORDER, styles)
