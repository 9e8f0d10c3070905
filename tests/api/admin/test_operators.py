import pyotp

from core import clock as clock_mod
from tests.domain.operators.factories import admin_headers, login, make_operator

NEW = {"username": "carol", "display_name": "张三", "password": "a sturdy passphrase", "roles": ["ops"]}


def test_admin_creates_an_operator_who_can_log_in_with_the_uri(app, client):
    headers = admin_headers(client, make_operator(app))
    resp = client.post("/admin/v1/operators", json=NEW, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["operator"]["username"] == "carol" and body["operator"]["roles"] == ["ops"]
    assert "password" not in body["operator"]
    totp = pyotp.parse_uri(body["totp_uri"])
    assert totp.secret == body["totp_secret"]
    code = totp.at(clock_mod.timestamp())
    carol = {"username": "carol", "password": NEW["password"], "secret": totp.secret}
    assert login(client, carol, code=code).status_code == 200
    # The secret is never shown again.
    listing = client.get("/admin/v1/operators", headers=headers).get_json()
    assert body["totp_secret"] not in repr(listing)
    assert [o["username"] for o in listing] == ["alice", "carol"]


def test_create_validates_password_roles_and_username(app, client):
    headers = admin_headers(client, make_operator(app))
    weak = client.post("/admin/v1/operators", json={**NEW, "password": "short"}, headers=headers)
    assert weak.status_code == 422 and weak.get_json()["error"]["code"] == "admin.password_weak"
    role = client.post("/admin/v1/operators", json={**NEW, "roles": ["root"]}, headers=headers)
    # marshmallow's {"roles": {0: [...]}} arrives as the path of the item at fault
    assert role.status_code == 422 and role.get_json()["error"]["fields"] == {
        "roles.0": ["取值不在允许范围内"]
    }
    taken = client.post("/admin/v1/operators", json={**NEW, "username": "alice"}, headers=headers)
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "admin.username_taken"
    bad_name = client.post("/admin/v1/operators", json={**NEW, "username": "no spaces"}, headers=headers)
    assert bad_name.status_code == 422 and bad_name.get_json()["error"]["code"] == "admin.username_invalid"
    for blank in ("   ", "\u3000\u200b"):  # spaces, a full-width space and a zero-width one
        nameless = client.post("/admin/v1/operators", json={**NEW, "username": "bob", "display_name": blank},
                               headers=headers)  # fmt: skip
        assert nameless.status_code == 422, nameless.get_json()
        assert nameless.get_json()["error"]["code"] == "admin.display_name_invalid"
        assert "display_name" in nameless.get_json()["error"]["fields"]
    spaced_name = {**NEW, "username": "bob", "display_name": "  王  小明 "}
    spaced = client.post("/admin/v1/operators", json=spaced_name,
                         headers=headers)  # fmt: skip
    assert spaced.status_code == 201 and spaced.get_json()["operator"]["display_name"] == "王 小明"


def test_auditor_cannot_create_operators(app, client):
    auditor = make_operator(app, username="audrey", roles=("auditor",))
    headers = admin_headers(client, auditor)
    resp = client.post("/admin/v1/operators", json=NEW, headers=headers)
    assert resp.status_code == 403
    error = resp.get_json()["error"]
    assert error["code"] == "admin.role_required" and error["details"] == {"role": "admin"}
    assert client.get("/admin/v1/operators", headers=headers).status_code == 403


def test_admin_unlocks_a_locked_operator(app, client):
    headers = admin_headers(client, make_operator(app))
    bob = make_operator(app, username="bob", roles=("ops",))
    for i in range(5):
        login(client, bob, password=f"wrong password {i}")
    assert login(client, bob).status_code == 403  # this address is locked out...
    listed = {o["username"]: o for o in client.get("/admin/v1/operators", headers=headers).get_json()}
    assert listed["bob"]["failed_attempts"] >= 4  # ...which the admins see counted
    resp = client.post(f"/admin/v1/operators/{bob['id']}/unlock", headers=headers)
    assert resp.status_code == 200 and resp.get_json()["locked"] is False
    assert resp.get_json()["failed_attempts"] == 0
    assert login(client, bob).status_code == 200


def test_a_stranger_locks_out_only_their_own_address(app, client, clock):
    """Five wrong logins every lockout period, from anywhere, used to keep an admin locked out for
    good (the lock refused the right password and code too)."""
    root = make_operator(app, username="root")
    for _ in range(3):
        tries = [
            login(client, root, password="wrong password!!", ip="198.51.100.7").status_code for _ in range(5)
        ]
        assert tries[-1] == 403 and login(client, root, ip="198.51.100.7").status_code == 403
        clock.advance(31)  # a fresh one-time code
        assert login(client, root, ip="10.0.0.5").status_code == 200  # the admin, from the office
        clock.advance(900)


def test_patch_roles_takes_effect_on_the_next_request(app, client, clock):
    headers = admin_headers(client, make_operator(app))
    bob = make_operator(app, username="bob", roles=("auditor",))
    bob_headers = admin_headers(client, bob)
    assert client.get("/admin/v1/jobs", headers=bob_headers).status_code == 403
    resp = client.patch(
        f"/admin/v1/operators/{bob['id']}", json={"roles": ["auditor", "ops"]}, headers=headers
    )
    assert resp.status_code == 200 and resp.get_json()["roles"] == ["auditor", "ops"]
    assert client.get("/admin/v1/jobs", headers=bob_headers).status_code == 200


def test_disabling_an_operator_ends_its_sessions(app, client):
    headers = admin_headers(client, make_operator(app))
    bob = make_operator(app, username="bob", roles=("ops",))
    bob_headers = admin_headers(client, bob)
    resp = client.patch(f"/admin/v1/operators/{bob['id']}", json={"status": "disabled"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == "disabled"
    assert client.get("/admin/v1/me", headers=bob_headers).status_code == 401


def test_an_admin_cannot_disable_themselves(app, client):
    """Their session would end with the click and only another admin could undo it: refused,
    even with another admin active; the other admin can."""
    alice = make_operator(app)
    bob = make_operator(app, username="bob")  # a second admin
    alice_headers, bob_headers = admin_headers(client, alice), admin_headers(client, bob)
    own = client.patch(
        f"/admin/v1/operators/{alice['id']}", json={"status": "disabled"}, headers=alice_headers
    )
    assert own.status_code == 409 and own.get_json()["error"]["code"] == "admin.disable_self"
    assert client.get("/admin/v1/me", headers=alice_headers).status_code == 200  # still signed in
    other = client.patch(
        f"/admin/v1/operators/{alice['id']}", json={"status": "disabled"}, headers=bob_headers
    )
    assert other.status_code == 200 and other.get_json()["status"] == "disabled"


def test_patch_rejects_empty_and_unknown_input_and_protects_the_last_admin(app, client):
    alice = make_operator(app)
    headers = admin_headers(client, alice)
    assert client.patch(f"/admin/v1/operators/{alice['id']}", json={}, headers=headers).status_code == 422
    unknown = client.patch(f"/admin/v1/operators/{alice['id']}", json={"password": "x"}, headers=headers)
    assert unknown.status_code == 422 and "password" in unknown.get_json()["error"]["fields"]
    last = client.patch(f"/admin/v1/operators/{alice['id']}", json={"roles": ["ops"]}, headers=headers)
    assert last.status_code == 409 and last.get_json()["error"]["code"] == "admin.last_admin"
    missing = client.patch("/admin/v1/operators/nope", json={"status": "active"}, headers=headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "admin.operator_not_found"
