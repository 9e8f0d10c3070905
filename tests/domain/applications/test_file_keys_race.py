"""Uploaded files re-encrypted (`keys reencrypt-data`) while citizens and the orphan sweep go on:
a file the citizen deleted and the sweep removed meanwhile does not come back in storage, and a
citizen uploading meanwhile neither waits for the run nor ends up under the old key."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from core.crypto import Encryptor
from core.db import db
from domain.applications import materials
from domain.applications.file_keys import rekey_blobs
from domain.applications.models import ApplicationFile
from integrations.storage.base import BlobNotFound
from tests.api.v1.applications.conftest import SS_CARD, URL, create, jpeg, seeded, upload, verified  # noqa: F401
from tests.concurrency import Competing

NEW_KID = "k2027"
NEW_KEY = b"\x22" * 16


@pytest.fixture
def zhang(app, seeded):  # noqa: F811
    return verified(app, 0)


class Meanwhile:
    """The real storage; `hook` runs once, just before the rekey writes its `at`-th blob (after
    it read that blob, and wrote and recorded the ones before it)."""

    def __init__(self, real: Any, hook: Any, at: int = 1) -> None:
        self.real, self.hook, self.at, self.puts = real, hook, at, 0

    def get(self, key: str) -> bytes:
        return self.real.get(key)

    def put(self, key: str, data: bytes) -> None:
        self.puts += 1
        if self.puts == self.at:
            self.hook()
        self.real.put(key, data)

    def delete(self, key: str) -> None:
        self.real.delete(key)


def _in_context(app: Any, work: Any) -> Any:
    with app.app_context():
        try:
            return work()
        finally:
            db.remove()


def test_a_file_deleted_and_swept_while_it_is_rewritten_does_not_come_back(
    app, client, zhang, clock, services, db_session
):
    deps = services.applications
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    file_id = upload(client, zhang, draft["id"], "id_card", jpeg()).get_json()["id"]
    removed = client.delete(
        f"{URL}/{draft['id']}/materials/id_card/files/{file_id}", headers=zhang["headers"]
    )
    assert removed.status_code == 204
    key = db_session.get(ApplicationFile, file_id).storage_key
    db_session.rollback()
    clock.advance(deps.orphan_grace_seconds + 1)  # an orphan the next sweep removes
    rotated = Encryptor({**services.encryptor._keys, NEW_KID: NEW_KEY}, NEW_KID)
    sweeps: list[Competing] = []

    def sweep() -> None:  # the sweeper runs between the rekey's read of the blob and its write
        sweeps.append(
            Competing(
                app, lambda _http: _in_context(app, lambda: materials.sweep_orphans(db.session(), deps))
            )
        )

    report = rekey_blobs(db_session, encryptor=rotated, storage=Meanwhile(deps.storage, sweep))
    assert not sweeps[0].waited and sweeps[0].result()["files"] == 1
    assert db_session.get(ApplicationFile, file_id) is None
    with pytest.raises(BlobNotFound):  # the citizen's deleted photo is not back in storage
        deps.storage.get(key)
    assert report == {"examined": 1, "rewritten": 0, "left": 0}


def test_a_citizen_uploading_while_files_are_rewritten_does_not_wait_and_ends_under_the_new_key(
    app, client, zhang, services, db_session, monkeypatch
):
    deps, enc = services.applications, services.encryptor
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    for material in ("id_card", "insurance"):  # stored under the old key
        assert upload(client, zhang, draft["id"], material, jpeg()).status_code == 201
    old_keys = dict(enc._keys)
    # Rotated: every process (this one too) writes with the new key, the old one still decrypts.
    monkeypatch.setattr(enc, "_keys", {**old_keys, NEW_KID: NEW_KEY})
    monkeypatch.setattr(enc, "active_kid", NEW_KID)
    uploads: list[Competing] = []

    def citizen_uploads() -> None:  # once the first file is rewritten, before the second
        uploads.append(
            Competing(app, lambda http: upload(http, zhang, draft["id"], "id_card", jpeg(color="blue")))
        )

    report = rekey_blobs(db_session, encryptor=enc, storage=Meanwhile(deps.storage, citizen_uploads, at=2))
    assert not uploads[0].waited, "the citizen's upload waited for the re-encryption"
    assert uploads[0].result().status_code == 201
    assert report == {"examined": 2, "rewritten": 2, "left": 0}
    db_session.expire_all()
    rows = db_session.scalars(select(ApplicationFile)).all()
    assert len(rows) == 3 and {row.blob_key_id for row in rows} == {NEW_KID}
    monkeypatch.setattr(enc, "_keys", {NEW_KID: NEW_KEY})  # the old key removed: all three still open
    assert all(materials.file_content(deps, row).startswith(b"\xff\xd8\xff") for row in rows)
