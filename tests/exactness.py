"""The exactness oracle: every value a raw record carries is found, exactly, in its column or in ``_extra``.

Written against the published Arrow schema (the contract readers see), not against the record
code: a column type says what a value may become there, and anything else must be in ``_extra``
under its dotted path, with the same JSON type and the same digits.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

LINEAGE = ("_extra", "_ingested_at", "_run_id")
BRASILIA = ZoneInfo("America/Sao_Paulo")


class Number(str):
    """A JSON number with a fraction or exponent, as its text: decode with ``parse_float=Number`` to
    compare number texts verbatim (with ``Decimal``, by value and digits)."""


def read_extra(text: str | None, number: type = Decimal) -> dict[str, Any]:
    """``_extra`` as written: JSON with exact numbers (decoded here with the standard library alone)."""
    if text is None:
        return {}
    value = json.loads(text, parse_float=number)
    assert isinstance(value, dict), text
    return value


def assert_recoverable(
    fields: pa.Schema | pa.StructType, raw: Any, row: dict[str, Any], number: type = Decimal
) -> None:
    """``raw`` (decoded with ``parse_float=number``) is all in ``row`` (as read back from Parquet): its columns or its ``_extra``."""
    expected: dict[str, Any] = {}
    if isinstance(raw, dict):
        _walk(fields, raw, row, "", expected)
    else:  # a list element that is not an object: a row of nulls, the element kept whole
        assert all(row[f.name] is None for f in fields if f.name not in LINEAGE), row
        expected[""] = raw
    extra = read_extra(row["_extra"], number)
    assert set(extra) == set(expected), f"_extra has {sorted(extra)}, expected {sorted(expected)}"
    for path, value in expected.items():
        assert same(extra[path], value), f"{path}: _extra has {extra[path]!r}, the API sent {value!r}"


def _walk(fields: pa.Schema | pa.StructType, raw: dict[str, Any], node: Any, prefix: str, expected: dict) -> None:
    types = {f.name: f.type for f in fields if f.name not in LINEAGE}
    for key, value in raw.items():
        path = prefix + key
        column = node.get(key) if node is not None else None
        if key not in types:
            expected[path] = value
            continue
        kind = types[key]
        if value is None:
            assert column is None, path
        elif pa.types.is_struct(kind) and isinstance(value, dict):
            assert column is not None, path
            _walk(kind, value, column, path + ".", expected)
        elif pa.types.is_list(kind) and isinstance(value, list):
            assert column is not None and len(column) == len(value), path
            for i, element in enumerate(value):
                if element is None:
                    assert column[i] is None, f"{path}.{i}"
                elif isinstance(element, dict):
                    _walk(kind.value_type, element, column[i], f"{path}.{i}.", expected)
                else:
                    assert column[i] is None, f"{path}.{i}"
                    expected[f"{path}.{i}"] = element
        elif column is None:
            expected[path] = value
        else:
            assert fits(kind, value, column), f"{path}: the API sent {value!r}, the column holds {column!r}"


def is_number(value: Any) -> bool:
    return isinstance(value, int | Decimal | Number) and not isinstance(value, bool)


def fits(kind: pa.DataType, value: Any, column: Any) -> bool:
    """``column`` is what the README says ``value`` becomes in a column of type ``kind``."""
    if isinstance(value, Number):  # a JSON number with a fraction: only a decimal or a text column takes it
        if pa.types.is_string(kind):
            return column == str(Decimal(value))
        return pa.types.is_decimal(kind) and Decimal(value) == column
    if pa.types.is_string(kind):
        return column == value if isinstance(value, str) else is_number(value) and column == str(value)
    if pa.types.is_int64(kind):
        if isinstance(value, str):
            return re.fullmatch(r"-?[0-9]{1,18}", value) is not None and int(value) == column
        return type(value) is int and value == column
    if pa.types.is_boolean(kind):
        return isinstance(value, bool) and value is column
    if pa.types.is_decimal(kind):
        if isinstance(value, str):
            try:
                return Decimal(value) == column
            except ArithmeticError:
                return False
        return is_number(value) and Decimal(value) == column
    if pa.types.is_timestamp(kind):
        # a timestamp holds microseconds: a text with finer digits would lose them, so it must not land
        return isinstance(value, str) and not re.search(r"[.,][0-9]{7}", value) and brasilia(value) == column
    if pa.types.is_date32(kind):
        return (
            isinstance(value, str)
            and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value) is not None
            and (date.fromisoformat(value) == column)
        )
    raise AssertionError(f"no rule for a {kind} column")


def brasilia(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.strip())
    return parsed if parsed.tzinfo is None else parsed.astimezone(BRASILIA).replace(tzinfo=None)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values: same types (a bool is not a number, 1 is not 1.0) and the same digits."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_number(a) or is_number(b):
        return type(a) is type(b) and str(a) == str(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b
