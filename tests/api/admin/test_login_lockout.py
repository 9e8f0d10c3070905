"""Lockout answers the same for a real operator's name and a made-up one, so guessing with it
cannot tell which usernames exist; an unlock forgets the counted failures."""

from __future__ import annotations

from typing import Any

from tests.domain.operators.factories import login, make_operator, totp_now


def _attempts(client: Any, clock: Any, username: str, gaps: list[float]) -> list[tuple]:
    out = []
    for gap in gaps:
        clock.advance(gap)
        resp = client.post(
            "/admin/v1/auth/login",
            json={"username": username, "password": "wrong password!!", "totp_code": "000000"},
        )
        out.append((resp.status_code, resp.get_json()["error"]["code"], resp.headers.get("Retry-After")))
    return out


def test_a_burst_of_guesses_locks_a_real_and_an_unknown_name_alike(app: Any, client: Any, clock: Any) -> None:
    make_operator(app, username="alice")
    gaps = [0, 2, 2, 2, 2, 2]
    real = _attempts(client, clock, "alice", gaps)
    assert real == _attempts(client, clock, "nosuchop", gaps)
    assert [code for code, _, _ in real] == [401, 401, 401, 401, 403, 403]


def test_slow_guessing_looks_the_same_for_real_and_unknown_names(app: Any, client: Any, clock: Any) -> None:
    make_operator(app, username="alice")
    gaps = [0, 1, 1, 1, app.config["ADMIN_LOCKOUT_SECONDS"] + 1]  # four guesses, a long wait, one more
    real = _attempts(client, clock, "alice", gaps)
    assert real == _attempts(client, clock, "nosuchop", gaps)
    assert real[-1][0] == 401  # old failures are forgotten: no lock


def test_an_unlock_forgets_the_counted_failures(app: Any, client: Any, clock: Any) -> None:
    from tests.domain.operators.factories import admin_headers

    admin = admin_headers(client, make_operator(app, username="root"))
    bob = make_operator(app, username="bob", roles=("auditor",))
    assert _attempts(client, clock, "bob", [0, 1, 1, 1, 1])[-1][0] == 403  # locked
    assert client.post(f"/admin/v1/operators/{bob['id']}/unlock", headers=admin).status_code == 200
    clock.advance(31)  # a fresh TOTP step
    assert _attempts(client, clock, "bob", [0])[0][0] == 401  # one typo after the unlock: no new lock
    assert login(client, bob, code=totp_now(bob)).status_code == 200
