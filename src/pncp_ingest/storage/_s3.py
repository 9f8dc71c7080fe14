"""A destination in an S3 bucket (AWS, MinIO, SeaweedFS, ...) over aioboto3.

One client is opened lazily (or by :meth:`S3Store.check`) and kept for the store's life;
:meth:`S3Store.aclose` closes it. Keys are stored under ``prefix/``. Addressing is path-style,
which every S3-compatible server accepts.

Retries: botocore's "standard" mode (the AWS SDKs' default), up to ``ATTEMPTS`` (6: the first
and 5 retries) per request. Throttling (503 SlowDown, 429), 5xx, dropped connections and
timeouts are retried with jittered exponential backoff (up to 1, 2, 4, 8, 16 s), drawing on the
client's retry quota (500 tokens, 5 a retry, 10 after a timeout; successes pay back), so a store
that keeps failing is not hammered. ``check()`` makes 3 attempts (the mode's default) to fail
fast. A retry can resend a request S3 already carried out: ``state.py`` says why that is harmless.

Error mapping, everywhere (a storage error never leaves as a traceback):

* connection refused / DNS failure / connect timeout -> StorageUnreachableError (exit 4);
* no credentials -> ConfigError (exit 2);
* any other error, including one that outlasted the retries -> StorageError (exit 4), one line
  naming the operation, the ``s3://`` key and, when retried, how many attempts were made.

Messages never contain the access key, the secret or a signature: they are built from the
error code and message only, and scrubbed of the current credentials for good measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import aioboto3
import aiohttp
import anyio
import anyio.to_thread
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from ..errors import ConfigError, StorageError, StorageUnreachableError
from ._base import ObjectStore
from ._keys import check_key, temp_name

__all__ = ["S3Store", "parse_s3_url", "validate_bucket_name"]

#: Files above this size are uploaded in parts (multipart upload).
MULTIPART_THRESHOLD = 16 * 1024 * 1024
#: Part size of multipart uploads. Peak memory of one upload is about
#: ``MULTIPART_THRESHOLD + (4 in flight + 2 queued) * MULTIPART_CHUNK``.
MULTIPART_CHUNK = 8 * 1024 * 1024
#: Read size when streaming a download to a file.
DOWNLOAD_CHUNK = 1024 * 1024
#: Requests in flight per store; also the connection pool size.
MAX_POOL_CONNECTIONS = 32
#: Batch limit of DeleteObjects.
DELETE_BATCH = 1000
#: Attempts per request, the first included (botocore "standard" retry mode), and for ``check()``.
ATTEMPTS = 6
CHECK_ATTEMPTS = 3
#: How often a put_if_absent that got 409 ConditionalRequestConflict is tried again.
CONFLICT_RETRIES = 4

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4_RE = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION_FAILED = {"412", "PreconditionFailed"}
_CONFLICT = {"409", "ConditionalRequestConflict"}
_NO_BUCKET = {"NoSuchBucket"}
_BAD_CREDENTIALS = {
    "403",
    "AccessDenied",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidSecurity",
    "AuthorizationHeaderMalformed",
}


def _display_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", url)


def validate_bucket_name(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid S3 bucket name (AWS rules), or None if it is."""
    if not 3 <= len(bucket) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET_RE.match(bucket):
        return "may only hold lowercase letters, digits, '.' and '-', and must start and end with a letter or digit"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "must not contain '..', '.-' or '-.'"
    if _IPV4_RE.match(bucket):
        return "must not look like an IP address"
    return None


def parse_s3_url(dest: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` -> ``(bucket, prefix)`` (prefix without surrounding ``/``).

    Raises ConfigError with a one-line message naming the problem and the fix.
    """
    fix = "use s3://bucket[/prefix], e.g. s3://my-bucket/bronze"
    scheme, sep, rest = dest.partition("://")
    if not sep or scheme.lower() != "s3":
        raise ConfigError(f"destination {dest!r} is not an S3 URL: {fix}")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ConfigError(f"destination {dest!r} has no bucket name: {fix}")
    problem = validate_bucket_name(bucket)
    if problem:
        raise ConfigError(f"destination {dest!r}: bucket name {bucket!r} is invalid ({problem}): {fix}")
    if any(c in rest for c in "?#\\\x00"):
        raise ConfigError(f"destination {dest!r} contains '?', '#' or '\\': {fix}")
    prefix = prefix.strip("/")
    if prefix and any(p in ("", ".", "..") for p in prefix.split("/")):
        raise ConfigError(f"destination {dest!r} has an empty, '.' or '..' path segment in its prefix: {fix}")
    return bucket, prefix


class S3Store(ObjectStore):
    """``s3://bucket/prefix`` through one long-lived aioboto3 client."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        problem = validate_bucket_name(bucket)
        if problem:
            raise ConfigError(f"bucket name {bucket!r} is invalid ({problem}): fix PNCP_DEST / --dest")
        if endpoint_url is not None:
            endpoint_url = endpoint_url.strip().rstrip("/") or None
        if endpoint_url is not None and not re.match(r"^https?://[^/\s]+", endpoint_url):
            raise ConfigError(
                f"S3 endpoint {endpoint_url!r} is not a URL: use http(s)://host[:port], e.g. http://127.0.0.1:9000"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._session_obj: aioboto3.Session | None = None
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._lock = asyncio.Lock()
        self._secrets: list[str] = []
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNK,
            max_concurrency=4,
            max_io_queue=2,  # aioboto3 buffers whole parts in this queue: keep memory bounded
        )

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint_url={self.endpoint_url!r})"

    # -- client ------------------------------------------------------------------------

    @property
    def _endpoint(self) -> str:
        """The endpoint for messages: the configured one, or AWS's default."""
        if self.endpoint_url:
            return _display_url(self.endpoint_url)
        if self._client is not None:
            return _display_url(str(self._client.meta.endpoint_url))
        return "the default AWS S3 endpoint"

    @property
    def _session(self) -> aioboto3.Session:
        """The aioboto3 session, made on first use (it reads AWS_PROFILE & co.)."""
        if self._session_obj is None:
            try:
                self._session_obj = aioboto3.Session()
            except BotoCoreError as exc:  # e.g. ProfileNotFound
                raise ConfigError(self._setup_message(exc)) from None
        return self._session_obj

    def _setup_message(self, exc: BaseException) -> str:
        return self._scrub(f"S3 client could not be set up ({exc}): check AWS_PROFILE / AWS_REGION / AWS_CONFIG_FILE")

    def _config(self, *, attempts: int, connect_timeout: float, read_timeout: float) -> Config:
        return Config(
            retries={"mode": "standard", "total_max_attempts": attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=MAX_POOL_CONNECTIONS,
            s3={"addressing_style": "path"},
        )

    async def _load_secrets(self) -> bool:
        """Remember the current credentials so that messages can be scrubbed of them.

        False if there are none; ConfigError if they cannot be loaded (a bad profile, ...).
        """
        try:
            creds = await self._session.get_credentials()
            if creds is None:
                return False
            frozen = await creds.get_frozen_credentials()
        except (BotoCoreError, OSError) as exc:
            raise ConfigError(
                self._scrub(self._no_credentials_message(exc) + f" ({type(exc).__name__}: {exc})")
            ) from None
        self._secrets = [s for s in (frozen.secret_key, frozen.token, frozen.access_key) if s]
        return bool(frozen.access_key and frozen.secret_key)

    async def open(self) -> None:
        """Open the long-lived client (idempotent; called lazily by every operation)."""
        await self._get_client()

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                await self._load_secrets()
                stack = contextlib.AsyncExitStack()
                config = self._config(attempts=ATTEMPTS, connect_timeout=10, read_timeout=60)
                try:
                    client = await stack.enter_async_context(
                        self._session.client("s3", endpoint_url=self.endpoint_url, config=config)
                    )
                except ValueError as exc:  # e.g. an endpoint botocore refuses
                    raise ConfigError(
                        f"S3 endpoint {self.endpoint_url!r} is invalid ({exc}): fix PNCP_S3_ENDPOINT_URL"
                    ) from None
                except BotoCoreError as exc:  # e.g. ProfileNotFound
                    raise ConfigError(self._setup_message(exc)) from None
                self._stack, self._client = stack, client
        return self._client

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    # -- errors ------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if len(secret) >= 4:
                text = text.replace(secret, "***")
        # Never echo signatures or credential scopes a server might quote back.
        text = re.sub(r"(Signature|Credential|Security-Token|SignatureProvided)=[^\s,;&]+", r"\1=***", text)
        return text

    def _where(self, key: str | None) -> str:
        if key is None:
            return self.url
        base = f"{self.prefix}/" if self.prefix else ""
        return f"s3://{self.bucket}/{base}{key}"

    def _raise(self, op: str, key: str | None, exc: BaseException) -> NoReturn:
        where = self._where(key)
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {}) or {}
            code = str(err.get("Code") or "")
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            msg = str(err.get("Message") or "").strip()
            detail = f"{code or 'error'}" + (f" (HTTP {status})" if status and str(status) != code else "")
            if msg and msg != code:
                detail += f": {msg}"
            retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0
            if retries:
                detail += f" (after {retries + 1} attempts)"
            if code in _NO_BUCKET:
                detail = f"bucket '{self.bucket}' does not exist at {self._endpoint}: create it or fix PNCP_DEST"
            raise StorageError(self._scrub(f"S3 {op} of {where} failed: {detail}")) from None
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
            raise ConfigError(self._no_credentials_message(exc)) from None
        if isinstance(exc, BotoConnectionError):
            raise StorageUnreachableError(
                self._scrub(f"S3 endpoint {self._endpoint} is unreachable during {op} of {where}: {exc}")
            ) from None
        retried = " (after the client's retries)" if isinstance(exc, HTTPClientError) else ""
        raise StorageError(self._scrub(f"S3 {op} of {where} failed{retried}: {type(exc).__name__}: {exc}")) from None

    def _no_credentials_message(self, exc: BaseException) -> str:
        why = "incomplete" if isinstance(exc, PartialCredentialsError) else "not found"
        if not isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            why = "could not be loaded"
        return (
            f"S3 credentials {why} for {self._endpoint}: set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)"
        )

    @contextlib.asynccontextmanager
    async def _op(self, op: str, key: str | None) -> AsyncIterator[Any]:
        client = await self._get_client()
        try:
            yield client
        except (ClientError, BotoCoreError) as exc:
            self._raise(op, key, exc)
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:  # mostly wrapped by botocore already
            self._raise(op, key, exc)

    @staticmethod
    def _code(exc: ClientError) -> str:
        return str((exc.response.get("Error") or {}).get("Code") or "")

    @staticmethod
    def _status(exc: ClientError) -> int | None:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- interface ---------------------------------------------------------------------

    async def check(self) -> None:
        """HeadBucket with a short-lived client that gives up within seconds; writes nothing."""
        if not await self._load_secrets():
            raise ConfigError(self._no_credentials_message(NoCredentialsError()))
        config = self._config(attempts=CHECK_ATTEMPTS, connect_timeout=3, read_timeout=10)
        try:
            probe_cm = self._session.client("s3", endpoint_url=self.endpoint_url, config=config)
            async with probe_cm as probe:
                endpoint = _display_url(self.endpoint_url or str(probe.meta.endpoint_url))
                try:
                    await probe.head_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    code, status = self._code(exc), self._status(exc)
                    if code in _NO_BUCKET or code in _NOT_FOUND or status == 404:
                        raise ConfigError(
                            f"bucket '{self.bucket}' does not exist at {endpoint}: create it or fix PNCP_DEST"
                        ) from None
                    if code in _BAD_CREDENTIALS or status in (401, 403):
                        raise ConfigError(
                            f"S3 credentials were rejected by {endpoint} (HTTP {status} on bucket '{self.bucket}'): "
                            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) and their access to the bucket"
                        ) from None
                    self._raise("check (HeadBucket)", None, exc)
                except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
                    self._raise("check", None, exc)
                except BotoConnectionError as exc:
                    raise StorageUnreachableError(
                        self._scrub(
                            f"S3 endpoint {endpoint} is unreachable: {exc}; start it or fix PNCP_S3_ENDPOINT_URL"
                        )
                    ) from None
                except (TimeoutError, BotoCoreError, OSError) as exc:
                    self._raise("check (HeadBucket)", None, exc)
        except ValueError as exc:
            raise ConfigError(
                f"S3 endpoint {self.endpoint_url!r} is invalid ({exc}): fix PNCP_S3_ENDPOINT_URL"
            ) from None
        except BotoCoreError as exc:  # setting the probe client up failed, e.g. ProfileNotFound
            raise ConfigError(self._setup_message(exc)) from None
        await self._get_client()

    async def get(self, key: str) -> bytes | None:
        full = self._full(key)
        async with self._op("get", key) as client:
            try:
                resp = await client.get_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if self._code(exc) in _NOT_FOUND:
                    return None
                raise
            body = resp["Body"]  # (entering it yields the raw aiohttp response: keep the wrapper)
            async with body:
                return bytes(await body.read())

    async def put(self, key: str, data: bytes) -> None:
        full = self._full(key)
        async with self._op("put", key) as client:
            await client.put_object(Bucket=self.bucket, Key=full, Body=data)

    async def put_if_absent(self, key: str, data: bytes) -> bool:
        full = self._full(key)
        async with self._op("conditional put", key) as client:
            for attempt in range(CONFLICT_RETRIES + 1):
                try:
                    await client.put_object(Bucket=self.bucket, Key=full, Body=data, IfNoneMatch="*")
                    return True
                except ClientError as exc:
                    code, status = self._code(exc), self._status(exc)
                    if code in _PRECONDITION_FAILED or status == 412:
                        return False
                    if code in _CONFLICT or status == 409:
                        # Another conditional write on this key was in flight. Try again: we
                        # either win now or see 412; if it keeps conflicting we lost the race.
                        if attempt < CONFLICT_RETRIES:
                            await anyio.sleep(0.05 * 2**attempt)
                            continue
                        return False
                    raise
        return False  # unreachable

    async def put_file(self, key: str, path: Path) -> None:
        full = self._full(key)
        async with self._op("upload", key) as client:
            await client.upload_file(os.fspath(path), self.bucket, full, Config=self._transfer)

    async def get_file(self, key: str, path: Path) -> bool:
        # One streamed GET (not ranged parallel GETs): the file is a single version of the
        # object even if it is overwritten meanwhile, and memory stays at one chunk.
        full = self._full(key)
        dst = Path(path)
        async with self._op("download", key) as client:
            try:
                resp = await client.get_object(Bucket=self.bucket, Key=full)
            except ClientError as exc:
                if self._code(exc) in _NOT_FOUND or self._status(exc) == 404:
                    return False
                raise
            body = resp["Body"]
            async with body:
                await anyio.to_thread.run_sync(lambda: dst.parent.mkdir(parents=True, exist_ok=True))
                tmp = dst.parent / temp_name(dst.name)
                f = await anyio.to_thread.run_sync(open, tmp, "xb")
                try:
                    try:
                        async for chunk in body.iter_chunks(DOWNLOAD_CHUNK):
                            await anyio.to_thread.run_sync(f.write, chunk)
                    finally:
                        f.close()  # sync on purpose: must also run when cancelled
                    await anyio.to_thread.run_sync(os.replace, tmp, dst)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
        return True

    async def list(self, prefix: str) -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        async with self._op("list", prefix) as client:
            paginator = client.get_paginator("list_objects_v2")
            # No delimiter: delimiter listings lag behind deletes on some servers (SeaweedFS).
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
                for obj in page.get("Contents", ()):
                    name = obj["Key"]
                    if name.startswith(base) and not name.endswith("/"):
                        keys.append(name[len(base) :])
        keys.sort()
        return keys

    async def remove_debris(self, prefix: str) -> int:
        # A killed multipart upload keeps its parts (and costs storage) until aborted.
        aborted = 0
        async with self._op("list uploads", prefix) as client:
            base = f"{self.prefix}/" if self.prefix else ""
            resp = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=base + prefix)
            for upload in resp.get("Uploads", ()):
                await client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
        return aborted

    async def delete(self, keys: Sequence[str]) -> None:
        fulls = [self._full(k) for k in keys]
        for i in range(0, len(fulls), DELETE_BATCH):
            batch = fulls[i : i + DELETE_BATCH]
            async with self._op("delete", keys[i]) as client:
                resp = await client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            errors = [e for e in resp.get("Errors", ()) if e.get("Code") not in _NOT_FOUND]
            if errors:
                first = errors[0]
                raise StorageError(
                    self._scrub(
                        f"S3 delete of s3://{self.bucket}/{first.get('Key')} failed: "
                        f"{first.get('Code')}: {first.get('Message', '')} ({len(errors)} keys not deleted)"
                    )
                )
