from sqlalchemy import select

from domain.operators.models import OperatorSession
from tests.domain.operators.factories import admin_headers, login, make_operator, totp_now


def test_login_with_password_and_totp_then_me(app, client):
    op = make_operator(app, roles=("admin", "auditor"))
    resp = login(client, op)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["ADMIN_TOKEN_TTL"]
    assert body["idle_timeout"] == app.config["ADMIN_IDLE_TIMEOUT"]
    assert body["operator"]["username"] == "alice" and body["operator"]["roles"] == ["admin", "auditor"]
    assert "password_hash" not in body["operator"] and "totp_secret_enc" not in body["operator"]
    me = client.get("/admin/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["operator"]["id"] == op["id"]
    assert me.get_json()["session_id"] == body["session_id"]


def test_wrong_totp_and_wrong_password_and_unknown_user_answer_alike(app, client, clock):
    op = make_operator(app)
    wrong_code = login(client, op, code=totp_now(op, offset_steps=3))
    wrong_password = login(client, op, password="not the password")
    unknown = login(client, {**op, "username": "mallory"})
    bodies = [r.get_json()["error"] for r in (wrong_code, wrong_password, unknown)]
    assert {r.status_code for r in (wrong_code, wrong_password, unknown)} == {401}
    assert {(b["code"], b["message"]) for b in bodies} == {("admin.login_failed", bodies[0]["message"])}


def test_replayed_totp_code_is_rejected(app, client, clock):
    op = make_operator(app)
    code = totp_now(op)
    assert login(client, op, code=code).status_code == 200
    clock.advance(5)
    again = login(client, op, code=code)
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "admin.login_failed"
    clock.advance(30)
    assert login(client, op).status_code == 200  # the next step's code works


def test_lockout_after_five_failures_even_with_the_right_password(app, client, clock):
    op = make_operator(app)
    for i in range(4):
        assert login(client, op, password=f"wrong password {i}").status_code == 401
    fifth = login(client, op, password="wrong password 5")
    assert fifth.status_code == 403 and fifth.get_json()["error"]["code"] == "admin.locked"
    right = login(client, op)
    assert right.status_code == 403
    assert right.get_json()["error"]["code"] == "admin.locked"
    assert int(right.headers["Retry-After"]) == app.config["ADMIN_LOCKOUT_SECONDS"]
    assert right.get_json()["error"]["details"]["retry_after"] == app.config["ADMIN_LOCKOUT_SECONDS"]


def test_the_lockout_message_says_only_this_address_is_locked_and_for_how_many_minutes(app, client, clock):
    """The lock is the username's from the address that failed: the operator is not told the
    account is locked (they can still log in from another desk), and 900 seconds is 15 minutes."""
    op = make_operator(app)
    for i in range(5):
        login(client, op, password=f"wrong password {i}", ip="198.51.100.7")
    body = {"username": op["username"], "password": op["password"], "totp_code": totp_now(op)}
    zh = client.post("/admin/v1/auth/login", json=body, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    en = client.post(
        "/admin/v1/auth/login", json=body, headers={"Accept-Language": "en"},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )  # fmt: skip
    assert zh.get_json()["error"]["message"] == (
        "登录失败次数过多，已暂停从您当前网络地址登录该账号，请 15 分钟后再试或联系管理员解锁"
    )
    assert en.get_json()["error"]["message"] == (
        "Too many failed logins; logins to this account from your network address are paused "
        "for 15 minutes or until an admin unlocks it"
    )
    assert en.headers["Retry-After"] == "900" and en.get_json()["error"]["details"]["retry_after"] == 900
    assert login(client, op, ip="10.0.0.5").status_code == 200  # as said: from elsewhere it works


def test_lockout_ends_after_the_lockout_period(app, client, clock):
    op = make_operator(app)
    for i in range(5):
        login(client, op, password=f"wrong password {i}")
    clock.advance(app.config["ADMIN_LOCKOUT_SECONDS"] - 1)
    still = login(client, op)
    assert still.status_code == 403 and still.headers["Retry-After"] == "1"
    clock.advance(31)
    assert login(client, op).status_code == 200


def test_idle_session_times_out_and_stays_ended(app, client, clock, db_session):
    op = make_operator(app)
    headers = admin_headers(client, op)
    idle = app.config["ADMIN_IDLE_TIMEOUT"]
    clock.advance(idle - 1)
    assert client.get("/admin/v1/me", headers=headers).status_code == 200  # activity resets the timer
    clock.advance(idle - 1)
    assert client.get("/admin/v1/me", headers=headers).status_code == 200
    clock.advance(idle + 1)
    resp = client.get("/admin/v1/me", headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "admin.session_idle"
    sess = db_session.scalar(select(OperatorSession).where(OperatorSession.operator_id == op["id"]))
    assert sess.revoked_at is not None
    again = client.get("/admin/v1/me", headers=headers)
    assert again.status_code == 401 and again.get_json()["error"]["code"] == "admin.session_revoked"


def test_logout_ends_the_session(app, client):
    op = make_operator(app)
    headers = admin_headers(client, op)
    assert client.post("/admin/v1/auth/logout", headers=headers).status_code == 204
    resp = client.get("/admin/v1/me", headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "admin.session_revoked"
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'  # RFC 6750 3


def test_citizen_token_does_not_open_the_admin_api(app, client, citizen):
    resp = client.get("/admin/v1/me", headers=citizen["headers"])
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "auth.token_invalid"
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_admin_token_does_not_open_the_citizen_api(app, client):
    op = make_operator(app)
    headers = admin_headers(client, op)
    resp = client.get("/v1/me", headers=headers)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "auth.token_invalid"


def test_missing_token_is_401(client):
    resp = client.get("/admin/v1/me")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "admin.auth_required"
    assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_bad_input_uses_the_one_error_format(app, client):
    unknown_field = client.post(
        "/admin/v1/auth/login", json={"username": "a", "password": "b", "totp_code": "1", "remember": True}
    )
    assert unknown_field.status_code == 422
    assert unknown_field.get_json()["error"]["code"] == "request.validation_failed"
    assert "remember" in unknown_field.get_json()["error"]["fields"]
    malformed = client.post("/admin/v1/auth/login", data="{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.get_json()["error"]["code"] == "request.malformed_json"
    missing = client.post("/admin/v1/auth/login", json={"username": "alice"})
    assert missing.status_code == 422 and {"password", "totp_code"} <= set(
        missing.get_json()["error"]["fields"]
    )


def test_login_is_rate_limited_per_ip(app, client):
    limit = app.config["LOGIN_PER_IP_PER_MINUTE"]
    for i in range(limit):
        login(
            client,
            {"username": f"nobody{i}", "password": "x" * 12, "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"},
        )
    resp = login(
        client, {"username": "nobody", "password": "x" * 12, "secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}
    )
    assert resp.status_code == 429 and resp.headers["Retry-After"]
