"""Uploaded files re-encrypted in blob storage after a data-key rotation: an interrupted run leaves
every row naming a readable blob, a re-run finishes it, and a finished run fetches nothing again."""

from __future__ import annotations

import pytest

from core import clock
from core.crypto import Encryptor
from domain.applications.file_keys import rekey_blobs
from domain.applications.materials import FILE_PURPOSE, file_content
from domain.applications.models import ApplicationFile
from tests.conftest import make_citizen

NEW_KID = "k2027"


class Flaky:
    """The real storage, counting reads; the process is killed right after the `fail_at`-th
    write, before the row records the blob's new key."""

    def __init__(self, real, fail_at: int | None = None) -> None:
        self.real, self.fail_at, self.gets, self.puts = real, fail_at, 0, 0

    def get(self, key):
        self.gets += 1
        return self.real.get(key)

    def put(self, key, data):
        self.puts += 1
        self.real.put(key, data)
        if self.puts == self.fail_at:
            raise KeyboardInterrupt


def _stored(db_session, services, account_id: str, content: bytes) -> str:
    enc, storage = services.encryptor, services.applications.storage
    row = ApplicationFile(
        account_id=account_id, material_id="id_card", storage_key="", sha256="0" * 64, size=len(content),
        media_type="image/jpeg", created_at=clock.now(),
    )  # fmt: skip
    db_session.add(row)
    db_session.flush()
    row.storage_key = f"materials/{account_id}/{row.id}"
    storage.put(row.storage_key, enc.encrypt(content, purpose=FILE_PURPOSE).encode())
    db_session.commit()  # blob_key_id left empty, as for files stored before it was recorded
    return row.id


def test_an_interrupted_run_leaves_every_file_readable_and_a_rerun_finishes(
    app, services, db_session, monkeypatch
):
    who = make_citizen(app)
    ids = [_stored(db_session, services, who["account_id"], f"file {i}".encode()) for i in range(3)]
    enc = services.encryptor
    rotated = Encryptor({**enc._keys, NEW_KID: b"\x22" * 16}, NEW_KID)

    flaky = Flaky(services.applications.storage, fail_at=2)
    with pytest.raises(KeyboardInterrupt):
        rekey_blobs(db_session, encryptor=rotated, storage=flaky, batch_size=10)
    db_session.rollback()
    deps = services.applications
    monkeypatch.setattr(deps, "encryptor", rotated)
    for i, file_id in enumerate(ids):  # two blobs rewritten (one recorded), one untouched: all readable
        assert file_content(deps, db_session.get(ApplicationFile, file_id)) == f"file {i}".encode()

    again = Flaky(services.applications.storage)
    # The first file's key was recorded before the kill: not fetched again. The second is
    # already under the new key: recorded, not written again.
    assert rekey_blobs(db_session, encryptor=rotated, storage=again, batch_size=2) == {
        "examined": 2, "rewritten": 1, "left": 0,
    }  # fmt: skip
    assert (again.gets, again.puts) == (2, 1)
    db_session.expire_all()
    for i, file_id in enumerate(ids):
        row = db_session.get(ApplicationFile, file_id)
        assert row.blob_key_id == NEW_KID
        assert deps.storage.get(row.storage_key).startswith(f"v1.{NEW_KID}.".encode())
        # Only the new key is needed now.
        monkeypatch.setattr(deps, "encryptor", Encryptor({NEW_KID: b"\x22" * 16}, NEW_KID))
        assert file_content(deps, row) == f"file {i}".encode()

    done = Flaky(services.applications.storage)
    assert rekey_blobs(db_session, encryptor=rotated, storage=done) == {
        "examined": 0,
        "rewritten": 0,
        "left": 0,
    }
    assert done.gets == 0 and done.puts == 0  # the rows say every blob is done: nothing fetched


def test_a_row_whose_blob_is_missing_is_reported_as_left(app, services, db_session):
    who = make_citizen(app)
    file_id = _stored(db_session, services, who["account_id"], b"lost")
    services.applications.storage.delete(db_session.get(ApplicationFile, file_id).storage_key)
    rotated = Encryptor({**services.encryptor._keys, NEW_KID: b"\x22" * 16}, NEW_KID)
    report = rekey_blobs(db_session, encryptor=rotated, storage=services.applications.storage)
    assert report == {"examined": 0, "rewritten": 0, "left": 1}
