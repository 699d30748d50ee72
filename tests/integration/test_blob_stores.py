"""Both blob-store backends behave alike: a local directory, and S3 over HTTP (moto's S3-compatible server)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from services.common.blobs import HEAD_BYTES, BlobMissing, BlobStore, BlobTooLarge, LocalBlobStore, S3BlobStore
from services.devstack.stack import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: str) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    bucket = f"b{tmp_path.name.replace('_', '-').lower()[-40:]}"
    boto3.client("s3", endpoint_url=s3_endpoint, **credentials).create_bucket(Bucket=bucket)
    return S3BlobStore.connect(bucket, s3_endpoint, "us-east-1", "test", "test")


def write(store: BlobStore, key: str, data: bytes, limit: int | None = None) -> None:
    writer = store.writer(key, limit)
    for start in range(0, len(data), 1000):
        writer.write(data[start : start + 1000])
    store.commit(writer)


def test_content_round_trips_with_its_size_and_hash(store: BlobStore) -> None:
    data = bytes(range(256)) * 50
    writer = store.writer("inputs/one", None)
    writer.write(data)
    info = store.commit(writer)
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert info.head == data[:HEAD_BYTES]
    assert b"".join(store.read("inputs/one")) == data
    assert store.size("inputs/one") == len(data)


def test_an_upload_past_the_limit_stores_nothing(store: BlobStore) -> None:
    with pytest.raises(BlobTooLarge):
        write(store, "inputs/big", b"x" * 5000, limit=4096)
    with pytest.raises(BlobMissing):
        store.size("inputs/big")


def test_delete_prefix_removes_a_jobs_results_and_nothing_else(store: BlobStore, tmp_path: Path) -> None:
    write(store, "results/job-1/1/speech.wav", b"a")
    write(store, "results/job-1/2/speech.wav", b"b")
    write(store, "results/job-10/1/speech.wav", b"c")
    store.delete_prefix("results/job-1")
    with pytest.raises(BlobMissing):
        store.size("results/job-1/2/speech.wav")
    assert store.size("results/job-10/1/speech.wav") == 1


def test_files_go_in_and_out(store: BlobStore, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"payload" * 100)
    assert store.put_file("results/x/1/out.bin", source).size == 700
    target = tmp_path / "out.bin"
    store.download("results/x/1/out.bin", target)
    assert target.read_bytes() == source.read_bytes()


@pytest.mark.parametrize("key", ["../escape", "/abs", "a/../../b", "", "a//b"])
def test_keys_cannot_leave_the_store(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="bad blob key"):
        store.writer(key, None)
