"""Fixtures for the real S3 server on loopback (SeaweedFS, started by ``scripts/s3-local.sh``).

* ``s3_endpoint`` (session): the endpoint URL; sets the test credentials in the environment.
* ``s3_bucket``: a fresh, uniquely named, empty bucket (deleted afterwards, best effort).
* ``s3_dest``: ``s3://<fresh bucket>/bronze``.
* ``dest``: parametrised over ``local`` and ``s3``; a destination string for either backend.
* ``store``: an opened (checked) ObjectStore for ``dest``; closed afterwards.
* ``s3_faults``: an :class:`S3FaultProxy` in front of the server, no faults until the test sets them.

Tests that take ``dest``/``store`` run once per backend (ids ``[local]`` and ``[s3]``). The S3
endpoint is not in the environment: pass ``s3_endpoint`` to ``open_store`` / ``--s3-endpoint``.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator

import boto3
import pytest
from botocore.config import Config

from pncp_ingest.storage import ObjectStore, open_store
from pncp_ingest.testing.s3_faults import S3FaultProxy

__all__ = [
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "dest",
    "s3_bucket",
    "s3_client",
    "s3_dest",
    "s3_endpoint",
    "s3_faults",
    "store",
]

DEFAULT_S3_ENDPOINT = "http://127.0.0.1:8333"
S3_ACCESS_KEY = "minioadmin"
S3_SECRET_KEY = "minioadmin"
S3_REGION = "us-east-1"


def _reachable(endpoint: str) -> bool:
    """Any HTTP answer counts (SeaweedFS has /healthz; other servers may answer 403/404)."""
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/healthz", timeout=3):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The S3 endpoint (``PNCP_TEST_S3_ENDPOINT`` or ``http://127.0.0.1:8333``).

    Skips the test if nothing answers there, or fails it when ``PNCP_TEST_REQUIRE_S3=1``
    (as ``make test`` sets). For the whole session, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    AWS_REGION hold the test server's values, so subprocesses inherit them.
    """
    endpoint = os.environ.get("PNCP_TEST_S3_ENDPOINT") or DEFAULT_S3_ENDPOINT
    if not _reachable(endpoint):
        msg = f"no S3 server at {endpoint}: start it with `bash scripts/s3-local.sh start` (make test does)"
        if os.environ.get("PNCP_TEST_REQUIRE_S3") == "1":
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY)
        mp.setenv("AWS_REGION", S3_REGION)
        mp.setenv("AWS_DEFAULT_REGION", S3_REGION)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for var in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            mp.delenv(var, raising=False)
        yield endpoint


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str):  # -> botocore S3 client
    """A plain synchronous boto3 client for test setup and inspection."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
        config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}),
    )


def _empty_and_delete_bucket(client, bucket: str) -> None:
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            objs = [{"Key": o["Key"]} for o in page.get("Contents", ())]
            if objs:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", ())
        for up in uploads:
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
        client.delete_bucket(Bucket=bucket)
    except Exception:  # best effort: a leftover bucket in a throwaway server is harmless
        pass


@pytest.fixture
def s3_bucket(s3_client) -> Iterator[str]:
    """A fresh, empty bucket with a unique name; emptied and deleted afterwards (best effort)."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    _empty_and_delete_bucket(s3_client, name)


@pytest.fixture
def s3_dest(s3_bucket: str) -> str:
    """``s3://<fresh bucket>/bronze``."""
    return f"s3://{s3_bucket}/bronze"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def dest(request: pytest.FixtureRequest, tmp_path) -> str:
    """A destination for each backend: a fresh tmp folder, or ``s3://<fresh bucket>/bronze``."""
    if request.param == "local":
        return str(tmp_path / "bronze")
    return request.getfixturevalue("s3_dest")


@pytest.fixture
async def store(request: pytest.FixtureRequest, dest: str, anyio_backend) -> AsyncIterator[ObjectStore]:
    """An ObjectStore for ``dest``, already ``check()``-ed (so opened); closed afterwards."""
    endpoint = request.getfixturevalue("s3_endpoint") if dest.startswith("s3://") else None
    st = open_store(dest, s3_endpoint=endpoint)
    try:
        await st.check()
        yield st
    finally:
        await st.aclose()


@pytest.fixture
def s3_faults(s3_endpoint: str) -> Iterator[S3FaultProxy]:
    """A fault-injecting proxy in front of the S3 server (seed 1, no faults until ``set_faults``)."""
    with S3FaultProxy(s3_endpoint, seed=1) as proxy:
        yield proxy
