"""The object-store interface every destination implements.

Keys are ``/``-separated paths relative to the destination root (``pncp/year=2025/...``,
``_state/...``); a store never sees absolute paths or bucket names. Everything the
pipeline needs from storage is here, so local folders and S3 behave the same to it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path


class ObjectStore(abc.ABC):
    """An async key/value store of immutable-ish objects with a conditional create."""

    #: Human-readable root, safe to print (no credentials): ``./data/bronze`` or ``s3://bucket/prefix``.
    url: str

    @abc.abstractmethod
    async def check(self) -> None:
        """Fail fast with a clear error if the destination cannot be written.

        Raises ConfigError (missing bucket, wrong credentials, unwritable folder) or
        StorageUnreachableError (endpoint down). Writes nothing that is left behind.
        """

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The object's bytes, or None if it does not exist."""

    @abc.abstractmethod
    async def put(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` atomically: readers see the old or the new object, never a mix."""

    @abc.abstractmethod
    async def put_if_absent(self, key: str, data: bytes) -> bool:
        """Create ``key`` only if it does not exist. True if we created it, False if it existed.

        Exactly one of many racing writers wins (S3 ``IfNoneMatch='*'``; locally an exclusive create).
        """

    @abc.abstractmethod
    async def put_file(self, key: str, path: Path) -> None:
        """Like :meth:`put` for a local file, streamed (multipart on S3) so large files stay off the heap."""

    @abc.abstractmethod
    async def get_file(self, key: str, path: Path) -> bool:
        """Download ``key`` into ``path``, streamed. False (and no file written) if it does not exist."""

    @abc.abstractmethod
    async def list(self, prefix: str) -> list[str]:
        """All keys that start with ``prefix`` (a plain string prefix, not a delimiter listing), sorted."""

    @abc.abstractmethod
    async def delete(self, keys: Sequence[str]) -> None:
        """Delete these keys; missing keys are not an error."""

    async def remove_debris(self, prefix: str) -> int:
        """Remove what interrupted writes left under ``prefix`` (temp files, unfinished uploads).

        Only safe while holding the lease that covers ``prefix``: another writer's in-flight
        temp file looks the same. Returns how many leftovers were removed.
        """
        return 0

    def local_path(self, key: str) -> Path | None:
        """The key's path on the local filesystem, if this store is a local folder (lets readers skip a copy)."""
        return None

    async def aclose(self) -> None:
        """Release connections."""

    async def __aenter__(self) -> ObjectStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
