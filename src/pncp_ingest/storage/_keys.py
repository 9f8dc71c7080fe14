"""Store keys and temporary file names: the rules every backend shares."""

from __future__ import annotations

import re
import secrets

__all__ = ["check_key", "is_temp_name", "temp_name"]

_TEMP_RE = re.compile(r"^\..*\.tmp-[0-9a-f]{16}$", re.DOTALL)


def temp_name(name: str) -> str:
    """A fresh temporary file name for writing ``name``: hidden and never ending in ``.parquet``."""
    # Keep the whole name within NAME_MAX (255 bytes) even for long keys.
    return f".{name[:200]}.tmp-{secrets.token_hex(8)}"


def is_temp_name(name: str) -> bool:
    """True for names made by :func:`temp_name` (in-flight or left behind by a crash)."""
    return _TEMP_RE.match(name) is not None


def check_key(key: str) -> str:
    """Validate a store key (shared by every backend); returns it unchanged.

    A key is a relative ``/``-separated path with no empty, ``.`` or ``..`` segment and no
    leading or trailing ``/``. A bad key is a bug in the caller, hence ValueError.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"invalid store key {key!r}: must be a non-empty string")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in key or "\x00" in key:
        raise ValueError(
            f"invalid store key {key!r}: must be a relative a/b/c path without empty, '.' or '..' segments"
        )
    if is_temp_name(parts[-1]):
        raise ValueError(f"invalid store key {key!r}: the name looks like a temporary file")
    return key
