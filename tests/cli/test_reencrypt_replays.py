"""`keys reencrypt-data` and the responses kept in Redis for idempotent replays: a submission's
stored answer (the whole application, the citizen's form in it) is encrypted under the data key,
so the command rewrites it too. Once it reports nothing left the old key can go, and a phone
that retries the submission with its key still gets its first answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.redis import get_redis
from tests.api.v1.applications.conftest import key, seeded, submit, verified  # noqa: F401
from tests.api.v1.applications.test_bad_input import _ready
from tests.cli.test_keys_reencrypt import NEW_KEY, NEW_KID, _ring

PLACE = "redis.idem:<replay>"


@pytest.fixture
def zhang(app, seeded):  # noqa: F811
    return verified(app, 0)


def _replays() -> dict[str, dict[str, Any]]:
    redis = get_redis()
    return {name.decode(): json.loads(redis.get(name)) for name in redis.scan_iter("idem:*")}


def _lines(output: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in output.splitlines() if "\t" in line)


def test_a_submission_retried_once_the_old_key_is_gone_still_gets_its_answer(
    app, client, services, zhang, monkeypatch
):
    enc = services.encryptor
    old_kid, old_keys = enc.active_kid, dict(enc._keys)
    ready = _ready(client, zhang)
    k = key()
    first = submit(client, zhang, ready, headers=k)
    assert first.status_code == 200, first.get_json()
    # Kept in Redis as ciphertext under the data key: no name, ID number or form in plain text.
    [(name, entry)] = [(n, e) for n, e in _replays().items() if e["state"] == "done"]
    raw = get_redis().get(name).decode()
    assert entry["body"].startswith(f"v1.{old_kid}.")
    assert zhang["name"] not in raw and zhang["id_number"] not in raw and "icbc" not in raw
    ttl = get_redis().ttl(name)

    _ring(monkeypatch, enc, {**old_keys, NEW_KID: NEW_KEY}, NEW_KID)
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert result.exit_code == 0, result.output
    assert _lines(result.output)[PLACE].endswith("rewritten 1\tleft 0"), result.output
    assert "no sooner than IDEMPOTENCY_TTL" not in result.output  # nothing to wait for
    assert _replays()[name]["body"].startswith(f"v1.{NEW_KID}.")
    assert ttl - 5 <= get_redis().ttl(name) <= ttl  # it still expires when it would have

    _ring(monkeypatch, enc, {NEW_KID: NEW_KEY}, NEW_KID)  # the old key removed, as the docs allow
    retry = submit(client, zhang, ready, headers=k)
    assert retry.status_code == 200, retry.get_json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()
    assert retry.headers["ETag"] == first.headers["ETag"]


def test_a_replay_under_a_key_no_longer_configured_is_reported_as_left(
    app, client, services, zhang, monkeypatch
):
    enc = services.encryptor
    old_keys = dict(enc._keys)
    ready = _ready(client, zhang)
    assert submit(client, zhang, ready).status_code == 200
    _ring(monkeypatch, enc, {NEW_KID: NEW_KEY}, NEW_KID)  # the old key removed too early
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert result.exit_code == 1, result.output
    assert f"{PLACE} (1)" in result.output and "Keep the old keys" in result.output
    _ring(monkeypatch, enc, {**old_keys, NEW_KID: NEW_KEY}, NEW_KID)  # put back: the re-run finishes
    again = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert again.exit_code == 0, again.output
    assert _lines(again.output)[PLACE].endswith("rewritten 1\tleft 0")


def test_a_replay_stored_anew_while_the_command_runs_is_kept(app, services, monkeypatch):
    """A first request that finishes meanwhile (under the same key) is not overwritten by the
    command's rewrite of what it read before."""
    from core.idempotency import StoredResponse

    enc = services.encryptor
    old_keys = dict(enc._keys)
    store = services.idempotency
    store.complete("scope", "k1", "fp", StoredResponse(200, b'{"n": 1}', "application/json"))
    _ring(monkeypatch, enc, {**old_keys, NEW_KID: NEW_KEY}, NEW_KID)
    real, fired = enc.encrypt, []

    def encrypt(plaintext: Any, *, purpose: str) -> str:
        if purpose == "idempotency" and not fired:  # mid-rewrite, the entry is stored again
            fired.append(1)
            store.complete("scope", "k1", "fp", StoredResponse(201, b'{"n": 2}', "application/json"))
        return real(plaintext, purpose=purpose)

    monkeypatch.setattr(enc, "encrypt", encrypt)
    result = app.test_cli_runner().invoke(args=["keys", "reencrypt-data"])
    assert fired and result.exit_code == 0, result.output
    replay = store.begin("scope", "k1", "fp")
    assert replay is not None and (replay.status, replay.body) == (201, b'{"n": 2}')
