"""Where the bronze layer is written: a local folder or an S3 bucket, behind one interface.

>>> store = open_store("s3://my-bucket/bronze", s3_endpoint="http://127.0.0.1:9000")
>>> store = open_store("./data/bronze")

Use the store as an async context manager (or call ``aclose()``) and ``await store.check()``
first to fail fast on a missing bucket, wrong credentials or an unwritable folder.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ._base import ObjectStore
from ._local import LocalStore

if TYPE_CHECKING:
    from ._s3 import S3Store

__all__ = ["LocalStore", "ObjectStore", "S3Store", "open_store"]


def __getattr__(name: str) -> object:
    # aioboto3 and botocore take ~0.4 s to import: only an S3 destination pays for them.
    if name == "S3Store":
        from ._s3 import S3Store

        return S3Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def open_store(dest: str, *, s3_endpoint: str | None = None) -> ObjectStore:
    """The store for ``dest``: ``s3://bucket[/prefix]`` -> :class:`S3Store`, anything else a local folder.

    ``s3_endpoint`` (e.g. ``http://127.0.0.1:9000`` for MinIO) applies to S3 only; None means
    botocore's default (AWS, or ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` if set).
    Nothing is contacted here: call ``check()``. Raises ConfigError for a malformed destination.
    """
    dest = (dest or "").strip()
    if not dest:
        raise ConfigError("destination is empty: set --dest / PNCP_DEST to a folder or s3://bucket[/prefix]")
    m = _SCHEME_RE.match(dest)
    if m:
        if m.group(1).lower() != "s3":
            raise ConfigError(
                f"destination {dest!r} uses an unsupported scheme {m.group(1)!r}: use s3://bucket[/prefix] or a local folder"
            )
        from ._s3 import S3Store, parse_s3_url

        bucket, prefix = parse_s3_url(dest)
        return S3Store(bucket, prefix, endpoint_url=s3_endpoint)
    return LocalStore(dest)
