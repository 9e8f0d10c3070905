"""Blob storage: one behavioural suite run on LocalStorage (tmp_path) and S3Storage (moto's in-process S3)."""

from __future__ import annotations

import os
import stat
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from integrations.storage.base import BlobNotFound, BlobStorage, StorageError, StorageUnavailable
from integrations.storage.local import LocalStorage
from integrations.storage.s3 import S3Storage
from integrations.storage.select import storage_from_config

BUCKET = "yiwang-materials-test"
BAD_KEYS = [
    "",
    "/abs",
    "a/../b",
    "..",
    "a/./b",
    "a//b",
    "a/",
    ".hidden",
    "a/.tmp-x",
    "a b",
    "a\\b",
    "材料/1",
    "a?b",
    "x" * 257,
]


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials, and no developer ~/.aws files leaking into the test."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3(aws_env):
    """A raw boto3 client on moto's in-process S3, with the test bucket created."""
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path / "blobs")
    request.getfixturevalue("s3")
    return S3Storage(BUCKET, region="us-east-1", access_key="testing", secret_key="testing", prefix="yiwang")


# --- the same behaviour on every backend --------------------------------------------------------


def test_is_a_blob_storage(storage):
    assert isinstance(storage, BlobStorage)


def test_put_get_overwrite(storage):
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    storage.put("materials/acc1/f1", data)
    assert storage.get("materials/acc1/f1") == data
    storage.put("materials/acc1/f1", b"second")
    assert storage.get("materials/acc1/f1") == b"second"
    storage.put("materials/acc1/empty", b"")
    assert storage.get("materials/acc1/empty") == b""


def test_missing_key(storage):
    with pytest.raises(BlobNotFound) as caught:
        storage.get("materials/nobody/nothing")
    assert caught.value.key == "materials/nobody/nothing"
    assert not storage.exists("materials/nobody/nothing")


def test_delete_is_idempotent(storage):
    storage.put("materials/a/1", b"x")
    assert storage.exists("materials/a/1")
    storage.delete("materials/a/1")
    storage.delete("materials/a/1")
    storage.delete("never/was/there")
    assert not storage.exists("materials/a/1")
    with pytest.raises(BlobNotFound):
        storage.get("materials/a/1")


def test_iter_keys_by_prefix_with_utc_times(storage):
    keys = ["materials/a/1", "materials/a/2", "materials/b/1", "materials-archive/z", "other/x"]
    before = datetime.now(UTC) - timedelta(seconds=2)
    for key in keys:
        storage.put(key, key.encode())
    after = datetime.now(UTC) + timedelta(seconds=2)

    def listed(prefix: str = "") -> list[str]:
        return sorted(key for key, _ in storage.iter_keys(prefix))

    assert listed() == sorted(keys)
    assert listed("materials/") == ["materials/a/1", "materials/a/2", "materials/b/1"]
    assert listed("materials") == sorted(keys[:4])
    assert listed("materials/a") == ["materials/a/1", "materials/a/2"]
    assert listed("materials/a/2") == ["materials/a/2"]
    assert listed("nothing/") == []
    for _, modified in storage.iter_keys():
        assert modified.utcoffset() == timedelta(0)
        assert before <= modified <= after
    storage.delete("materials/a/1")
    assert listed("materials/a") == ["materials/a/2"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_rejected(storage, key):
    for call in (lambda: storage.put(key, b"x"), lambda: storage.get(key)):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(ValueError):
        storage.delete(key)
    with pytest.raises(ValueError):
        storage.exists(key)


def test_key_rules_edges(storage):
    longest = "k/" + "x" * 254
    storage.put(longest, b"ok")
    assert storage.get(longest) == b"ok"
    storage.put("A-z_0.9/v1.2-final_b", b"ok")
    for prefix in ("/x", "../", "a//"):
        with pytest.raises(ValueError):
            list(storage.iter_keys(prefix))


# --- LocalStorage -------------------------------------------------------------------------------


def test_local_files_are_private_and_no_temp_files_remain(tmp_path):
    store = LocalStorage(tmp_path / "blobs")
    store.put("materials/acc/f1", b"one")
    store.put("materials/acc/f1", b"two")
    folder = tmp_path / "blobs" / "materials" / "acc"
    assert os.listdir(folder) == ["f1"]
    assert stat.S_IMODE(os.stat(folder / "f1").st_mode) == 0o600
    for path in (tmp_path / "blobs", tmp_path / "blobs" / "materials", folder):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


def test_local_failed_write_keeps_the_old_object(tmp_path, monkeypatch):
    store = LocalStorage(tmp_path)
    store.put("m/f", b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        store.put("m/f", b"new")
    monkeypatch.undo()
    assert store.get("m/f") == b"old"
    assert os.listdir(tmp_path / "m") == ["f"]


def test_local_readers_never_see_a_partial_object(tmp_path):
    store = LocalStorage(tmp_path)
    versions = (b"a" * 2_000_000, b"b" * 3_000_000)
    store.put("m/f", versions[0])
    done = threading.Event()

    def writer() -> None:
        for i in range(40):
            store.put("m/f", versions[i % 2])
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads < 10:
        assert store.get("m/f") in versions
        reads += 1
    thread.join()
    assert [name for name in os.listdir(tmp_path / "m") if name != "f"] == []


def test_partial_writes_left_by_a_killed_writer_are_dropped_once_old(storage, tmp_path):
    """A writer killed before its rename leaves a hidden temporary file (local storage) that no
    key lists; the sweep drops it once older than the cutoff, and never a stored object or a
    write still in progress."""
    storage.put("materials/a/1", b"kept")
    now = datetime.now(UTC)
    if isinstance(storage, LocalStorage):
        folder = storage.root / "materials" / "a"
        (folder / ".tmp-dead").write_bytes(b"half")
        hour_ago = (now - timedelta(hours=1)).timestamp()
        os.utime(folder / ".tmp-dead", (hour_ago, hour_ago))
        (folder / ".tmp-writing").write_bytes(b"in progress")
        assert storage.drop_partial_writes(now - timedelta(minutes=10)) == 1
        assert sorted(p.name for p in folder.iterdir()) == [".tmp-writing", "1"]
    else:
        assert storage.drop_partial_writes(now) == 0
    assert storage.get("materials/a/1") == b"kept"


def test_local_key_conflicts_and_stray_files(tmp_path):
    store = LocalStorage(tmp_path)
    store.put("a/b", b"child")
    with pytest.raises(ValueError):
        store.put("a", b"parent")  # "a" is the folder of "a/b"
    store.put("c", b"file")
    with pytest.raises(ValueError):
        store.put("c/d", b"below a file")
    with pytest.raises(BlobNotFound):
        store.get("a")
    store.delete("a")  # a folder is not an object: nothing happens
    assert store.get("a/b") == b"child"
    (tmp_path / "a" / ".tmp-left-by-a-crash").write_bytes(b"partial")
    assert sorted(key for key, _ in store.iter_keys()) == ["a/b", "c"]


# --- S3Storage ----------------------------------------------------------------------------------


def test_s3_keys_live_under_the_prefix(s3):
    store = S3Storage(BUCKET, region="us-east-1", prefix="/yiwang/")
    store.put("materials/a/1", b"x")
    assert s3.get_object(Bucket=BUCKET, Key="yiwang/materials/a/1")["Body"].read() == b"x"
    s3.put_object(Bucket=BUCKET, Key="elsewhere/materials/a/2", Body=b"y")
    s3.put_object(Bucket=BUCKET, Key="yiwang/materials/not ours", Body=b"z")
    assert [key for key, _ in store.iter_keys()] == ["materials/a/1"]


def test_s3_missing_bucket_is_permanent(s3):
    with pytest.raises(StorageError, match="NoSuchBucket"):
        S3Storage("no-such-bucket", region="us-east-1").put("k", b"x")


def test_s3_unreachable_endpoint_is_retryable(aws_env):
    unreachable = S3Storage(BUCKET, endpoint_url="http://127.0.0.1:9", access_key="a", secret_key="b")
    with pytest.raises(StorageUnavailable):
        unreachable.get("k")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, BlobNotFound),
        ("404", 404, BlobNotFound),
        ("NoSuchBucket", 404, StorageError),
        ("AccessDenied", 403, StorageError),
        ("SlowDown", 503, StorageUnavailable),
        ("InternalError", 500, StorageUnavailable),
        ("TooManyRequests", 429, StorageUnavailable),
    ],
)
def test_s3_client_errors_are_classified(aws_env, code, status, expected):
    from botocore.exceptions import ClientError

    store = S3Storage(BUCKET, region="us-east-1")
    error = ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )
    with pytest.raises(expected):
        store._fail(error, "k")


def test_s3_without_boto3_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(RuntimeError, match="boto3"):
        S3Storage(BUCKET)


# --- storage_from_config ------------------------------------------------------------------------


def test_config_selects_the_backend(tmp_path, s3):
    default = storage_from_config({"INSTANCE_DIR": tmp_path})
    assert isinstance(default, LocalStorage) and default.root == (tmp_path / "blobs").resolve()
    local = storage_from_config({"STORAGE_BACKEND": "local", "STORAGE_LOCAL_ROOT": str(tmp_path / "x")})
    assert local.root == (tmp_path / "x").resolve()
    remote = storage_from_config(
        {
            "STORAGE_BACKEND": "S3",
            "STORAGE_S3_BUCKET": BUCKET,
            "STORAGE_S3_REGION": "us-east-1",
            "STORAGE_S3_ENDPOINT": "",
            "STORAGE_S3_PREFIX": "prod",
        }
    )
    assert isinstance(remote, S3Storage) and remote.prefix == "prod/" and remote.endpoint_url is None
    remote.put("k", b"v")
    assert "prod/k" in [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    for bad in ({"STORAGE_BACKEND": "ftp"}, {"STORAGE_BACKEND": "s3"}, {"STORAGE_BACKEND": "local"}):
        with pytest.raises(ValueError):
            storage_from_config(bad)
