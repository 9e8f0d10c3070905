"""One ID check of an account at a time: a second one sent while the first is with the provider
(a double tap, the mini-program and the app at once) is refused with 409 before it pays.

The race is made deterministic: the ID-check client is wrapped so that the first check, once
inside the provider call, runs the competing request in another thread (tests.concurrency) to
its end before it goes on to the simulator."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from core.redis import get_redis
from domain.identity.models import IdentityVerification
from tests.api.v1.identity.conftest import ZHANG, bearer, start
from tests.concurrency import Competing

CLAIM = "idcheck_in_flight"  # the Redis key rl:idcheck_in_flight:<account id>
WRONG = {"name": "张四", "id_number": ZHANG["id_number"]}


def _checker(app: Any) -> Any:
    return app.extensions["yiwang"].identity.providers["id_check"]


def _quota_used(account_id: str) -> int:
    return int(get_redis().zcard(f"rl:idcheck_account:{account_id}"))


def _claimed(account_id: str) -> bool:
    return bool(get_redis().exists(f"rl:{CLAIM}:{account_id}"))


def test_two_id_checks_at_once_pay_the_provider_once(app, client, app_citizen, sims, db_session, monkeypatch):
    checker = _checker(app)
    real = checker.check
    others: list[Competing] = []
    entered = threading.Event()

    def inside_the_provider_call(person: Any, *, out_ref: str) -> Any:
        if not entered.is_set():  # the first check: the second one runs now, to its end
            entered.set()
            others.append(Competing(app, lambda http: start(http, app_citizen, "id_check", consent=None)))
        return real(person, out_ref=out_ref)

    monkeypatch.setattr(checker, "check", inside_the_provider_call)
    first = start(client, app_citizen, "id_check", consent=None)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["verification"]["status"] == "passed"
    assert len(others) == 1 and not others[0].waited
    second = others[0].result()
    assert second.status_code == 409, second.get_json()
    error = second.get_json()["error"]
    assert error["code"] == "identity.check_in_progress"
    assert error["message"] == "正在核验身份，请稍候查看结果"
    assert sims["id_check"].calls() == 1  # one paid check
    assert _quota_used(app_citizen["account_id"]) == 1  # charged once
    db_session.rollback()
    rows = db_session.scalars(
        select(IdentityVerification).where(IdentityVerification.account_id == app_citizen["account_id"])
    ).all()
    assert [row.status for row in rows] == ["passed"]  # the refused check wrote nothing
    assert not _claimed(app_citizen["account_id"])
    # Afterwards, one at a time: as before.
    again = start(client, {"headers": bearer(first.get_json()["tokens"])}, "id_check", consent=None)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "identity.already_verified"


def test_the_claim_ends_with_a_provider_failure(client, app_citizen, sims):
    sims["id_check"].post("faults", {"down": True})
    failed = start(client, app_citizen, "id_check", consent=None)
    assert failed.status_code == 503, failed.get_json()
    assert not _claimed(app_citizen["account_id"])
    sims["id_check"].post("faults", {"down": False})
    after = start(client, app_citizen, "id_check", consent=None)
    assert after.status_code == 201, after.get_json()
    assert after.get_json()["verification"]["status"] == "passed"


def test_the_claim_ends_with_an_unexpected_error(app, client, app_citizen, sims, monkeypatch):
    def broken(person: Any, *, out_ref: str) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(_checker(app), "check", broken)
    assert start(client, app_citizen, "id_check", consent=None).status_code == 500
    assert not _claimed(app_citizen["account_id"])
    monkeypatch.undo()
    assert start(client, app_citizen, "id_check", consent=None).status_code == 201


def test_a_failed_check_then_a_new_one_runs_as_before(client, app_citizen, sims):
    failed = start(client, app_citizen, "id_check", person=WRONG, consent=None)
    assert failed.get_json()["verification"]["status"] == "failed"
    assert not _claimed(app_citizen["account_id"])
    passed = start(client, app_citizen, "id_check", consent=None)
    assert passed.status_code == 201 and passed.get_json()["verification"]["status"] == "passed"
    assert sims["id_check"].calls() == 2


def test_only_the_owner_releases_a_claim(app):
    limiter = app.extensions["yiwang"].identity.ratelimiter
    token = limiter.claim(CLAIM, "acc", ttl=30)
    assert token and limiter.claim(CLAIM, "acc", ttl=30) is None
    assert 0 < get_redis().ttl(f"rl:{CLAIM}:acc") <= 30
    limiter.release(CLAIM, "acc", "someone-else")  # e.g. a holder whose claim expired
    assert _claimed("acc")
    limiter.release(CLAIM, "acc", token)
    assert not _claimed("acc") and limiter.claim(CLAIM, "acc", ttl=30)
