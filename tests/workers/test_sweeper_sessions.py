"""The sweeper deletes citizen sessions (with their refresh tokens) and operator sessions a day
after they ended, and keeps what a refresh, the device list or a reuse check still reads."""

from __future__ import annotations

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.db import db
from domain.auth import sessions
from domain.auth.models import LoginSession, RefreshToken
from domain.operators.models import OperatorSession
from tests.conftest import make_citizen
from tests.domain.operators.factories import login, make_operator
from workers import sweeper

DAY = 86400


def _sweep(app, monkeypatch) -> dict:
    monkeypatch.setitem(sweeper._housekeeping, "last", 0.0)
    with app.app_context():
        return sweeper.run_once(0)


def _refresh(client, token: str) -> dict:
    resp = client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _rows(model, column) -> set[str]:
    session = db.session()
    session.expire_all()
    return set(session.scalars(select(column)))


def test_expired_sessions_go_a_day_after_and_a_live_one_still_catches_a_reused_token(
    app, client, clock, monkeypatch
):
    max_age, refresh_ttl = app.config["SESSION_MAX_AGE"], app.config["REFRESH_TOKEN_TTL"]
    lapsed = make_citizen(app, device_label="旧手机")  # expires at max_age
    clock.advance(DAY)
    nearly = make_citizen(app, device_label="平板")  # expires a day later
    clock.advance(40 * DAY - DAY)
    live = make_citizen(app, device_label="常用手机")
    stolen = live["refresh_token"]
    token = _refresh(client, stolen)["refresh_token"]  # `stolen` rotated; it expires in 30 days
    clock.advance(refresh_ttl - 60)
    token = _refresh(client, token)["refresh_token"]
    clock.advance(max_age + DAY + 60 - 40 * DAY - (refresh_ttl - 60))
    # Now: `lapsed` expired a day and a minute ago, `nearly` a minute ago; `live` is in use, and
    # its first token, rotated long ago, expired three weeks ago.
    pair = _refresh(client, token)

    done = _sweep(app, monkeypatch)

    assert _rows(LoginSession, LoginSession.id) == {nearly["session_id"], live["session_id"]}
    assert lapsed["session_id"] not in _rows(RefreshToken, RefreshToken.session_id)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    listing = client.get("/v1/me/sessions", headers=headers).get_json()
    assert [s["device_label"] for s in listing] == ["常用手机"]
    # Whoever copied the first token still trips the reuse check, and the whole session ends.
    replay = client.post("/v1/auth/refresh", json={"refresh_token": stolen})
    assert replay.status_code == 401
    assert replay.get_json()["error"]["code"] == "auth.refresh_reused"
    ended = client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert ended.get_json()["error"]["code"] == "auth.session_revoked"
    old = client.post("/v1/auth/refresh", json={"refresh_token": lapsed["refresh_token"]})
    assert old.status_code == 401
    assert old.get_json()["error"]["code"] == "auth.refresh_invalid"
    assert done["login_sessions_purged"] == 1
    assert done["refresh_tokens_purged"] == 1
    clock.advance(DAY - 30)
    assert _sweep(app, monkeypatch)["login_sessions_purged"] == 1  # `nearly`, a day after it ended
    assert _rows(LoginSession, LoginSession.id) == {live["session_id"]}  # revoked under a day ago


def test_logged_out_sessions_go_a_day_after_the_logout(app, client, clock, monkeypatch):
    out = make_citizen(app)
    assert client.post("/v1/auth/logout", headers=out["headers"]).status_code in (200, 204)
    clock.advance(DAY - 60)
    recent = make_citizen(app)
    assert client.post("/v1/auth/logout", headers=recent["headers"]).status_code in (200, 204)
    clock.advance(120)

    done = _sweep(app, monkeypatch)

    assert done["login_sessions_purged"] == 1
    assert _rows(LoginSession, LoginSession.id) == {recent["session_id"]}
    assert _rows(RefreshToken, RefreshToken.session_id) == {recent["session_id"]}


def test_a_backlog_larger_than_a_batch_goes_in_bounded_batches(app, clock):
    phone = "13912340077"
    for _ in range(7):
        make_citizen(app, phone=phone)
    clock.advance(app.config["SESSION_MAX_AGE"] + DAY + 60)
    keep = make_citizen(app, phone=phone)["session_id"]
    session = db.session()
    ttl = app.config["ACCESS_TOKEN_TTL"]

    first = sessions.purge_ended_sessions(session, access_ttl=ttl, batch=3, batches=2)

    assert first == {"sessions": 6, "tokens": 6}  # two batches of three, then the pass stops
    assert len(_rows(LoginSession, LoginSession.id)) == 2
    assert sessions.purge_ended_sessions(session, access_ttl=ttl, batch=3, batches=2)["sessions"] == 1
    assert _rows(LoginSession, LoginSession.id) == {keep}


def test_operator_sessions_go_a_day_after_they_expired(app, client, clock, monkeypatch):
    ttl = app.config["ADMIN_TOKEN_TTL"]
    alice = make_operator(app, username="alice")
    assert login(client, alice).status_code == 200  # expires in ttl
    clock.advance(DAY)
    assert login(client, alice).status_code == 200  # a day later
    clock.advance(ttl)
    fresh = login(client, alice).get_json()["access_token"]
    assert len(_rows(OperatorSession, OperatorSession.id)) == 3
    clock.advance(30)  # the first expired a day and half a minute ago, the second half a minute ago

    done = _sweep(app, monkeypatch)

    assert done["operator_sessions_purged"] == 1
    assert len(_rows(OperatorSession, OperatorSession.id)) == 2
    me = client.get("/admin/v1/me", headers={"Authorization": f"Bearer {fresh}"})
    assert me.status_code == 200, me.get_json()


def test_a_refresh_that_meets_the_purge_is_told_its_token_is_unknown(app, client, clock):
    """The sweeper deletes a long-ended session between the refresh's token lookup and its
    session lookup: the refresh is refused like any unknown token, not with a server error."""
    gone = make_citizen(app)
    clock.advance(app.config["SESSION_MAX_AGE"] + DAY + 60)
    seen: list[object] = []

    def purge_meanwhile(state) -> None:
        if not state.is_select:
            return
        entity = state.statement.column_descriptions[0]["entity"]
        if entity is RefreshToken:
            seen.append(entity)
        elif entity is LoginSession and seen == [RefreshToken]:
            seen.append(entity)
            with Session(db.engine) as other:
                sessions.purge_ended_sessions(other, access_ttl=app.config["ACCESS_TOKEN_TTL"])

    event.listen(Session, "do_orm_execute", purge_meanwhile)
    try:
        resp = client.post("/v1/auth/refresh", json={"refresh_token": gone["refresh_token"]})
    finally:
        event.remove(Session, "do_orm_execute", purge_meanwhile)

    assert seen == [RefreshToken, LoginSession]
    assert resp.status_code == 401, resp.get_json()
    assert resp.get_json()["error"]["code"] == "auth.refresh_invalid"
    assert _rows(LoginSession, LoginSession.id) == set()
