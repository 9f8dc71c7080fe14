"""The column types of the bronze records: what each accepts, so a value either fits its column exactly or fails.

A value that fails is not coerced or rounded: the record path (``records.rows``) moves it, as
the API sent it, into ``_extra``. The rules are pydantic constraints checked in pydantic-core,
so the common case costs no Python call per value (dates and decimals excepted, see below).

- :data:`Money` (any decimal: money, quantities, percentages): ``decimal(38, 6)``. PNCP sends
  money and quantities with at most 4 decimal places (reference §2.5, §4.3); 6 keep a margin, and
  32 integer digits hold any amount. A JSON number, an integer, or a text holding a number
  (``"1234.56"``) fits when it has at most 6 decimal places and 32 integer digits.
- :data:`Int64`: a JSON integer within int64, or a text of decimal digits (``"1"``, as PNCP
  sends some enums). Not a bool, not a number with a fraction (``3.0`` included).
- :data:`Flag`: JSON ``true`` / ``false`` only.
- ``str``: text, or a number (``codigoIbge`` comes as either), kept as its digits.
- :data:`LocalDateTime`: ISO 8601 text; Brasília wall time without an offset, as PNCP sends it,
  or with an offset, converted to Brasília time.
- :data:`LocalDate`: a calendar date, ``YYYY-MM-DD`` (a resultado's ``dataResultado``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Context, Decimal
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, Field, Strict

from ..dates import BRASILIA

PRECISION: Final = 38
SCALE: Final = 6
"""``decimal(PRECISION, SCALE)``, the Arrow type of every decimal column (``records.schema.MONEY``)."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# Markers in ``Annotated`` metadata naming a column's Arrow type where the Python type alone
# does not (``records.schema`` reads them; pydantic ignores them).
DECIMAL_COLUMN: Final = "decimal"
INT64_COLUMN: Final = "int64"

_QUANTUM: Final = Decimal(1).scaleb(-SCALE)
_CONTEXT: Final = Context(prec=PRECISION)


def _as_column_decimal(value: Decimal) -> Decimal:
    """The same value, written so Arrow can read it into decimal(38, 6).

    pydantic's digit limits look at the normalised value, while Arrow reads the digits as
    written: ``1.000…0`` with 40 zeros, ``0E+40`` or ``1E+31`` fit the column but Arrow rejects
    them (and ``0E-1000000000`` crashes it). Rewriting at scale 6 is exact once the limits passed.
    """
    # Plain notation of at most 38 characters has at most 38 digits and no positive exponent, which
    # Arrow rescales without loss (str() is the cheap test: as_tuple() costs five times as much).
    text = str(value)
    if "E" not in text and len(text) <= PRECISION:
        return value
    return value.quantize(_QUANTUM, context=_CONTEXT)


Money = Annotated[
    Decimal,
    Field(max_digits=PRECISION, decimal_places=SCALE, allow_inf_nan=False),
    AfterValidator(_as_column_decimal),
    DECIMAL_COLUMN,
]
"""An exact decimal that fits decimal(38, 6): at most 6 decimal places and 32 integer digits."""

Int64 = Annotated[
    # Tried in order: the JSON integer is checked in pydantic-core; the conversion runs only for
    # the rare integer sent as text, and 18 digits always fit int64.
    Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]
    | Annotated[str, Strict(), Field(pattern=r"^-?[0-9]{1,18}$"), AfterValidator(int)],
    Field(union_mode="left_to_right"),
    INT64_COLUMN,
]
"""An integer that fits int64, sent as a JSON integer or as a text of digits."""

Flag = Annotated[bool, Strict()]
"""A JSON boolean: ``"true"``, ``1`` or ``"S"`` are not taken for one."""

# More than 6 fraction digits: ``datetime.fromisoformat`` would drop the rest without a word.
_SUB_MICROSECOND = re.compile(r"[.,][0-9]{7}")


def _local_datetime(value: Any) -> Any:
    """PNCP sends Brasília wall time without offset; if an offset ever appears, convert to it."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("a date-time is ISO 8601 text")
    text = value.strip()
    if ("." in text or "," in text) and _SUB_MICROSECOND.search(text):
        raise ValueError("a date-time with more than 6 fraction digits does not fit a microsecond timestamp")
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(BRASILIA).replace(tzinfo=None)
    except OverflowError:  # an offset that moves the date out of years 1..9999
        raise ValueError("the date-time is out of range in Brasília time") from None
    return parsed


LocalDateTime = Annotated[datetime, BeforeValidator(_local_datetime)]
"""A timestamp in Brasília local time (America/Sao_Paulo), stored without a zone as the API sends it."""


def _local_date(value: Any) -> Any:
    """A calendar date as PNCP sends it (``2026-04-24``); any other text does not fit (kept in ``_extra``)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value.strip()) != 10:
        raise ValueError("a date is YYYY-MM-DD text")
    return date.fromisoformat(value.strip())


LocalDate = Annotated[date, BeforeValidator(_local_date)]
"""A calendar date (Brasília), stored as a date."""
