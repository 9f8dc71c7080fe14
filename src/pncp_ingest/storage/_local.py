"""A destination on the local filesystem: keys are files under one root folder.

Every write goes to a temporary file in the destination's own directory and is then renamed
(or hard-linked, for :meth:`LocalStore.put_if_absent`) into place, so readers never see a
half-written object. Temporary names look like ``.{name}.tmp-<hex>``: hidden, and never ending
in ``.parquet``, so a reader globbing ``*.parquet`` cannot pick one up. :meth:`LocalStore.list`
skips them too (a crash can leave one behind).

All blocking file I/O runs in worker threads (``anyio.to_thread``), off the event loop.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread

from ..errors import ConfigError, StorageError
from ._base import ObjectStore
from ._keys import check_key, is_temp_name, temp_name

__all__ = ["LocalStore"]


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable; best effort (not every filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


_COPY_CHUNK = 1 << 20


def _write_new(path: Path, source: bytes | Path) -> None:
    """Create ``path`` exclusively (FileExistsError if it exists) holding ``source`` (bytes, or a
    file copied in chunks), fsynced; a failed write leaves no file behind."""
    with open(path, "xb") as out:
        try:
            if isinstance(source, bytes):
                out.write(source)
            else:
                with open(source, "rb") as src:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            _unlink_quietly(path)
            raise


def _write_temp(final: Path, source: bytes | Path) -> Path:
    """Write ``source`` completely to a fresh temp file next to ``final`` and return its path."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / temp_name(final.name)
    _write_new(tmp, source)
    return tmp


def _replace(final: Path, source: bytes | Path) -> None:
    """Atomically make ``final`` hold ``source``: temp file, fsync, rename, fsync the folder."""
    tmp = _write_temp(final, source)
    try:
        os.replace(tmp, final)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_dir(final.parent)


class LocalStore(ObjectStore):
    """A folder on the local filesystem (``--dest ./data/bronze``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.url = os.fspath(root)
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    # -- helpers -----------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _fail(self, op: str, key: str, exc: OSError) -> StorageError:
        reason = exc.strerror or type(exc).__name__
        return StorageError(f"local {op} of {key!r} under {self.url} failed ({reason}): check the destination folder")

    # -- interface ---------------------------------------------------------------------

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self._check_sync)

    def _check_sync(self) -> None:
        # A folder that does not exist yet is made by the first write, not here: a run that fails
        # before writing anything (the API unreachable, a usage error) leaves no empty folder.
        # Until then the probe goes to the nearest folder that exists, where the first write's
        # own folders will be made.
        root = self.root
        while not root.exists() and root.parent != root and not root.is_symlink():
            root = root.parent
        probe = root / temp_name("pncp-ingest-write-probe")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            _unlink_quietly(probe)
            if self.root.exists() and not self.root.is_dir():
                reason = "it is a file, not a folder"
            elif exc.errno == errno.ENOTDIR:
                reason = "a file is in the way of its path"
            else:
                reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                f"destination {self.url} is not writable ({reason}): choose a writable --dest or fix its permissions"
            ) from None

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
            except OSError as exc:
                raise self._fail("read", key, exc) from exc

        return await anyio.to_thread.run_sync(read)

    async def put(self, key: str, data: bytes) -> None:
        await self._replace("write", key, data)

    async def _replace(self, op: str, key: str, source: bytes | Path) -> None:
        final = self._path(key)

        def write() -> None:
            try:
                _replace(final, source)
            except OSError as exc:
                raise self._fail(op, key, exc) from exc

        await anyio.to_thread.run_sync(write)

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        final = self._path(key)

        def create() -> bool:
            try:
                tmp = _write_temp(final, data)
                try:
                    # link() is an atomic exclusive create of a complete file.
                    os.link(tmp, final)
                except FileExistsError:
                    return False
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                        raise
                    # No hard links here (some FUSE/SMB/FAT mounts): fall back to O_EXCL,
                    # still exclusive, but a reader may briefly see a partial file.
                    return _create_exclusive(final, data)
                finally:
                    _unlink_quietly(tmp)
                _fsync_dir(final.parent)
                return True
            except OSError as exc:
                raise self._fail("create", key, exc) from exc

        return await anyio.to_thread.run_sync(create)

    async def put_file(self, key: str, path: Path) -> None:
        await self._replace("upload", key, Path(path))

    async def get_file(self, key: str, path: Path) -> bool:
        src = self._path(key)

        def copy() -> bool:
            try:
                _replace(Path(path), src)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                if not src.is_file():  # missing (or deleted meanwhile)
                    return False
                raise
            except OSError as exc:
                raise self._fail("download", key, exc) from exc
            return True

        return await anyio.to_thread.run_sync(copy)

    def _scan(self, prefix: str) -> tuple[list[str], list[Path]]:
        """Keys under ``prefix`` (sorted) and the temp files a crashed write left there."""
        # Walk only below the deepest folder the prefix names, then filter by plain prefix.
        head, sep, _ = prefix.rpartition("/")
        start_parts = [p for p in head.split("/") if p] if sep else []
        if any(p in (".", "..") for p in start_parts):
            return [], []
        keys: list[str] = []
        temps: list[Path] = []
        stack = [(self.root.joinpath(*start_parts), "/".join(start_parts))]
        while stack:
            folder, rel = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise self._fail("list", prefix, exc) from exc
            for entry in entries:
                key = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        stack.append((Path(entry.path), key))
                elif is_temp_name(entry.name):
                    if rel.startswith(prefix.rstrip("/")) or key.startswith(prefix):
                        temps.append(Path(entry.path))
                elif key.startswith(prefix):
                    keys.append(key)
        keys.sort()
        return keys, temps

    async def list(self, prefix: str) -> list[str]:
        keys, _ = await anyio.to_thread.run_sync(self._scan, prefix)
        return keys

    async def remove_debris(self, prefix: str) -> int:
        def sweep() -> int:
            _, temps = self._scan(prefix)
            for path in temps:
                _unlink_quietly(path)
            return len(temps)

        return await anyio.to_thread.run_sync(sweep)

    async def delete(self, keys: Sequence[str]) -> None:
        paths = [(k, self._path(k)) for k in keys]

        def remove() -> None:
            for key, path in paths:
                try:
                    os.unlink(path)
                except (FileNotFoundError, NotADirectoryError):
                    pass
                except IsADirectoryError:
                    pass  # a "folder" is not an object
                except OSError as exc:
                    if exc.errno == errno.EISDIR or (exc.errno == errno.EPERM and path.is_dir()):
                        continue
                    raise self._fail("delete", key, exc) from exc

        await anyio.to_thread.run_sync(remove)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


def _create_exclusive(final: Path, data: bytes) -> bool:
    try:
        _write_new(final, data)
    except FileExistsError:
        return False
    return True
