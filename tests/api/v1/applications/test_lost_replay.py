"""A retried submission whose stored first answer can no longer be read (its data key removed
from DATA_KEYS before `keys reencrypt-data` moved it) is told so in the error format: never a
500, and never a second submission."""

from __future__ import annotations

import pytest

from tests.api.v1.applications.conftest import key, seeded, submit, verified  # noqa: F401
from tests.api.v1.applications.test_bad_input import _ready
from tests.cli.test_keys_reencrypt import NEW_KEY, NEW_KID, _ring


@pytest.fixture
def zhang(app, seeded):  # noqa: F811
    return verified(app, 0)


def test_a_replay_that_cannot_be_decrypted_is_a_clear_409_not_a_500(client, services, zhang, monkeypatch):
    ready = _ready(client, zhang)
    k = key()
    first = submit(client, zhang, ready, headers=k)
    assert first.status_code == 200, first.get_json()
    _ring(monkeypatch, services.encryptor, {NEW_KID: NEW_KEY}, NEW_KID)  # the old key removed too early

    retry = submit(client, zhang, ready, headers=k)
    assert retry.status_code == 409, retry.get_data(as_text=True)
    error = retry.get_json()["error"]
    assert error["code"] == "idempotency.replay_unavailable" and "新的 Idempotency-Key" in error["message"]
    assert error["details"] == {"status": 200}  # what the first request answered
    english = submit(client, zhang, ready, headers=k | {"Accept-Language": "en"})
    assert english.status_code == 409 and "new Idempotency-Key" in english.get_json()["error"]["message"]
    timeline = client.get(f"/v1/applications/{ready['id']}/timeline", headers=zhang["headers"]).get_json()
    assert [e["status"] for e in timeline["events"]].count("submitted") == 1  # submitted once only
