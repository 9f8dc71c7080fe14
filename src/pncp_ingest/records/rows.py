"""A raw PNCP record → a bronze row: typed columns, and everything else in ``_extra``, exactly.

- Numbers are decoded from the JSON text to ``Decimal``, never through a float (:func:`loads`).
- Every value either fits its column (the rules are in ``records.values``) or is moved, as the
  API sent it, into ``_extra`` with its column left null: JSON text keyed by dotted path
  (``valorTotal``, ``orgaoEntidade.cnpj``, ``fontesOrcamentarias.0.codigo``), numbers written
  with their exact digits. Fields the models do not know are kept there too.
- So a row always lands and the writer never meets a value it cannot encode. Only a record
  without its identity (a contratação without ``numeroControlePNCP``) raises ValueError.
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Required, TypeVar, Union

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads TypedDicts from typing_extensions before 3.12

from .models import Record

R = TypeVar("R", bound=Record)
Row = dict[str, Any]

_MAX_REPAIRS: Final = 50

# A lone surrogate in a text (an escape like \ud800, or its bytes) decodes to a Python str that
# UTF-8, so Arrow, cannot encode; only a body holding one needs its texts checked.
_SURROGATE_IN_BODY: Final = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}|\xed[\xa0-\xbf]")


class JsonNumber(Decimal):
    """A JSON number with a fraction or an exponent: its exact value, and ``text``, the JSON it was sent as.

    The text is what ``_extra`` keeps when the number does not fit its column (a ``Decimal``
    alone would write ``1e5`` as ``1E+5`` and ``0.0000001`` as ``1E-7``)."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonNumber:
        number = super().__new__(cls, text)
        number.text = text
        return number


def loads(body: bytes | str) -> Any:
    """Decode a JSON body with every non-integer number as an exact :class:`JsonNumber` (a ``Decimal``
    that keeps its JSON text); integers are ints. Never a float.

    Raises ValueError for a body that is not JSON (or nests too deeply to decode)."""
    return _decode(body, JsonNumber)


def _decode(body: bytes | str, number: type[Decimal]) -> Any:
    try:
        return json.loads(body, parse_float=number)
    except RecursionError:
        raise ValueError("the JSON nests too deeply to decode") from None


def bronze_row(model: type[R], raw: Any) -> Row:
    """One raw API record (as decoded by :func:`loads`) → a bronze row: columns plus ``_extra`` (JSON text or null)."""
    return _row(model, raw, check_text=True)


def bronze_rows_json(model: type[R], body: bytes) -> list[Row]:
    """A response body holding a JSON array of records → their bronze rows, as :func:`bronze_row`.

    The common case (every record's fields known and fitting) is validated and turned into rows
    in one pass in pydantic-core; anything unusual sends each record the tolerant way. An
    element that is not an object still lands, as a row whose ``_extra`` holds it under ``""``.
    Raises ValueError if the body is not a JSON array (e.g. truncated).
    """
    # A plain Decimal costs a third of a JsonNumber, and the common case keeps no number text.
    raws = _decode(body, Decimal)
    if not isinstance(raws, list):
        raise ValueError(f"expected a JSON array of {model.__name__} records, got {type(raws).__name__}")
    check_text = _may_hold_a_surrogate(body)
    try:
        rows: list[Row] = _exact_list(model).validate_python(raws)
    except ValidationError:
        return [_row(model, raw, check_text) for raw in loads(body)]  # again, keeping the texts for _extra
    if check_text:
        return [_finish(row, {}, check_text) for row in rows]
    for row in rows:
        row["_extra"] = None
    return rows


def _may_hold_a_surrogate(body: bytes) -> bool:
    # Two byte searches first: a regex over every body costs as much as decoding it.
    return (b"\\u" in body or b"\xed" in body) and _SURROGATE_IN_BODY.search(body) is not None


def _row(model: type[R], raw: Any, check_text: bool) -> Row:
    try:  # the common case, all in pydantic-core: every field known and fitting
        row: Row = _exact(model).validate_python(raw)
    except ValidationError:
        record, misfits = validate(model, raw)
        return _finish(to_row(record), {**extras(record), **misfits}, check_text)
    return _finish(row, {}, check_text)


def _finish(row: Row, kept: dict[str, Any], check_text: bool) -> Row:
    if check_text:
        kept.update(_pop_unencodable(row, ""))
    row["_extra"] = extra_json(kept) if kept else None
    return row


# -- the tolerant way ------------------------------------------------------------------------


def validate(model: type[R], raw: Any) -> tuple[R, dict[str, Any]]:
    """Validate ``raw`` tolerantly: returns the model and the values that did not fit.

    A value that fails its field's type is removed (the field becomes null) and returned
    under its dotted path, so the caller can keep it in ``_extra``; a record that is not an
    object is returned whole under ``""``. Only the record's identity (a required field)
    failing makes this raise ValueError.
    """
    if not isinstance(raw, dict):
        required = [name for name, info in model.model_fields.items() if info.is_required()]
        if required:
            raise ValueError(f"a {model.__name__} record is a JSON object, not {_kind(raw)}: {str(raw)[:80]}")
        return model(), {"": raw}
    try:
        return model.model_validate(raw), {}
    except ValidationError as first:
        errors = first.errors()
    data = dict(raw)  # containers on the way to a misfit are copied as it is removed (_pop_path)
    misfits: dict[str, Any] = {}
    for _ in range(_MAX_REPAIRS):
        progressed = False
        popped: list[tuple[int | str, ...]] = []
        for err in errors:
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            if any(loc[: len(done)] == done for done in popped):
                continue  # another union member's complaint about a value already moved
            if _pop_unencodable_keys(data, loc, misfits):
                progressed = True
                continue
            # Union members add their type name to loc (e.g. 'int', 'str'); strip what is not in the data.
            while loc:
                found, value = _pop_path(data, loc)
                if found:
                    misfits[".".join(str(p) for p in loc)] = value
                    popped.append(loc)
                    progressed = True
                    break
                loc = loc[:-1]
        try:
            return model.model_validate(data), misfits
        except ValidationError as again:
            errors = again.errors()
        if not progressed:
            break
    raise ValueError(f"record does not fit {model.__name__}: {errors[0]['msg']} at {errors[0]['loc']}")


def _pop_unencodable_keys(data: dict[str, Any], loc: tuple[int | str, ...], misfits: dict[str, Any]) -> bool:
    """Move the keys pydantic cannot read (a lone surrogate in a field name) out of the object at ``loc``."""
    node: Any = data
    for part in loc:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False
    if not isinstance(node, dict):
        return False
    bad = [key for key in node if not key.isascii() and not _encodable(key)]
    for key in bad:
        found, value = _pop_path(data, (*loc, key))
        if found:
            misfits[".".join(str(p) for p in (*loc, key))] = value
    return bool(bad)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _pop_path(data: dict[str, Any], loc: tuple[int | str, ...]) -> tuple[bool, Any]:
    """Remove the value at ``loc`` (a list element becomes null, keeping its neighbours' places).

    Copies each container on the way, so the raw record handed in is never changed."""
    node: Any = data
    for part in loc[:-1]:
        try:
            child = node[part]
        except (KeyError, IndexError, TypeError):
            return False, None
        if isinstance(child, dict):
            child = dict(child)
        elif isinstance(child, list):
            child = list(child)
        else:
            return False, None
        node[part] = child
        node = child
    last = loc[-1]
    if isinstance(node, dict) and last in node:
        return True, node.pop(last)
    if isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        value = node[last]
        node[last] = None
        return True, value
    return False, None


def extras(record: Record, prefix: str = "") -> dict[str, Any]:
    """Unknown fields of ``record`` and of its nested records, keyed by dotted path."""
    found: dict[str, Any] = {}
    for key, value in (record.model_extra or {}).items():
        found[prefix + key] = value
    for name in type(record).model_fields:
        value = getattr(record, name)
        if isinstance(value, Record):
            found.update(extras(value, f"{prefix}{name}."))
        elif isinstance(value, list):
            for i, element in enumerate(value):
                if isinstance(element, Record):
                    found.update(extras(element, f"{prefix}{name}.{i}."))
    return found


def to_row(record: Record) -> Row:
    """The record's known fields as plain Python values (nested records as dicts), for Arrow."""
    row: Row = {}
    for name in type(record).model_fields:
        value = getattr(record, name)
        if isinstance(value, Record):
            value = to_row(value)
        elif isinstance(value, list):
            value = [to_row(v) if isinstance(v, Record) else v for v in value]
        row[name] = value
    return row


def _pop_unencodable(node: Any, prefix: str) -> dict[str, Any]:
    """Texts of a row that UTF-8 cannot encode (lone surrogates): removed, returned by dotted path."""
    found: dict[str, Any] = {}
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in list(items):
        if isinstance(value, str):
            if not value.isascii() and not _encodable(value):
                found[f"{prefix}{key}"] = value
                node[key] = None
        elif isinstance(value, dict | list):
            found.update(_pop_unencodable(value, f"{prefix}{key}."))
    return found


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# -- _extra: JSON text with exact numbers ----------------------------------------------------


def extra_json(kept: dict[str, Any]) -> str:
    """``kept`` as JSON text, keys sorted: a number as the JSON text it was sent as (a plain ``Decimal``
    with its exact digits), never through a float; texts UTF-8 can encode; read back by :func:`loads`."""
    out: list[str] = []
    try:
        _write({key: kept[key] for key in sorted(kept)}, out)
    except RecursionError:
        raise ValueError("a value nests too deeply to keep in _extra") from None
    return "".join(out)


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        # A lone surrogate is written as its \u escape, so the text stays valid UTF-8 and reads back the same.
        out.append(json.dumps(value, ensure_ascii=value.isascii() or not _encodable(value)))
    elif value is None or isinstance(value, bool | int | float):
        out.append(json.dumps(value))
    elif isinstance(value, JsonNumber):
        out.append(value.text)  # as sent
    elif isinstance(value, Decimal):
        # The exact digits (finite: only JSON numbers become Decimals). One sent as 0E0 or 5e0 is
        # written 0E0 / 5E0, not 0 / 5, so it reads back as the same non-integer number.
        text = str(value)
        out.append(text if "." in text or "E" in text else f"{text}E0")
    elif isinstance(value, dict):
        out.append("{")
        for i, (key, element) in enumerate(value.items()):
            if i:
                out.append(",")
            _write(str(key), out)
            out.append(":")
            _write(element, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, element in enumerate(value):
            if i:
                out.append(",")
            _write(element, out)
        out.append("]")
    elif isinstance(value, datetime | date):
        _write(value.isoformat(), out)
    else:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- the fast way: the same fields with no room for anything else ----------------------------


@functools.cache
def _exact(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(_exact_type(model))


@functools.cache
def _exact_list(model: type[BaseModel]) -> TypeAdapter[Any]:
    return TypeAdapter(_list_of(_exact_type(model)))


@functools.cache
def _exact_type(model: type[BaseModel]) -> Any:
    """``model``'s fields as a TypedDict that forbids any other key (extra="forbid").

    Validating with it succeeds exactly when the tolerant way would find nothing for ``_extra``,
    and then gives the same values, as a dict, at once (no model instance to dump). A field
    absent from the record is absent from the row (Arrow reads it as null)."""

    def exact(annotation: Any) -> Any:
        origin = typing.get_origin(annotation)
        if origin in (Union, types.UnionType):
            return Union[tuple(exact(a) for a in typing.get_args(annotation))]  # noqa: UP007 (built at run time)
        if origin is Annotated:
            inner, *metadata = typing.get_args(annotation)
            return Annotated[(exact(inner), *metadata)]
        if origin is list:
            return _list_of(exact(typing.get_args(annotation)[0]))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return _exact_type(annotation)
        return annotation

    fields = {
        name: Required[exact(info.annotation)] if info.is_required() else exact(info.annotation)
        for name, info in model.model_fields.items()
    }
    make: Any = TypedDict  # built at run time from the model, which a static TypedDict cannot name
    typed = make(f"{model.__name__}Row", fields, total=False)
    typed.__pydantic_config__ = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    return typed


def _list_of(item: Any) -> Any:
    """``list[item]`` for an item type made at run time, which a static ``list[...]`` cannot name."""
    return types.GenericAlias(list, (item,))
