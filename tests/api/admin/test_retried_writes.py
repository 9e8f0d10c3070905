"""Admin writes a console may retry replay their first response for the same Idempotency-Key:
a lost answer never registers an app twice or loses the one showing of a secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from api.idempotency import HEADER
from domain.oauth.models import OAuthClient
from tests.domain.operators.factories import admin_headers, make_operator

APP = {
    "name": "便民银行", "contact": "ops@bank.example", "client_type": "confidential",
    "redirect_uris": ["https://bank.example/cb"], "scopes": ["profile.basic"],
}  # fmt: skip
NOT_RETRIED = {("POST", "/admin/v1/auth/login"), ("POST", "/admin/v1/auth/logout")}  # a new session each


def _is_idempotent(view: Any) -> bool:
    while view is not None:
        if getattr(view, "_yiwang_idempotent", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


def test_every_admin_write_takes_an_idempotency_key(app: Any) -> None:
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/"):
            continue
        cls = getattr(app.view_functions[rule.endpoint], "view_class", None)
        for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            view = getattr(cls, method.lower(), None) if cls else app.view_functions[rule.endpoint]
            if (method, rule.rule) not in NOT_RETRIED and not _is_idempotent(view):
                missing.append(f"{method} {rule.rule}")
    assert missing == []


def test_a_retried_app_registration_registers_once_and_shows_the_same_secret(app, client, db_session):
    headers = admin_headers(client, make_operator(app)) | {HEADER: "register-bank-1"}
    first = client.post("/admin/v1/oauth-clients", json=APP, headers=headers)
    retry = client.post("/admin/v1/oauth-clients", json=APP, headers=headers)
    assert first.status_code == retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json() == first.get_json()  # the same client_id and client secret
    assert db_session.scalar(select(func.count()).select_from(OAuthClient)) == 1


def test_a_retried_operator_creation_gives_the_totp_secret_again(app, client):
    headers = admin_headers(client, make_operator(app)) | {HEADER: "create-bob-1"}
    body = {
        "username": "bob",
        "display_name": "Bob",
        "password": "a long enough passphrase",
        "roles": ["auditor"],
    }
    first = client.post("/admin/v1/operators", json=body, headers=headers)
    retry = client.post("/admin/v1/operators", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201, retry.get_json()
    assert retry.get_json()["totp_secret"] == first.get_json()["totp_secret"]


def test_two_operators_keys_are_their_own(app, client, db_session):
    """The same key and body from two operators are two registrations, not one shared answer."""
    alice = admin_headers(client, make_operator(app, username="alice")) | {HEADER: "same-key"}
    carol = admin_headers(client, make_operator(app, username="carol")) | {HEADER: "same-key"}
    first = client.post("/admin/v1/oauth-clients", json=APP, headers=alice)
    second = client.post("/admin/v1/oauth-clients", json=APP, headers=carol)
    assert first.status_code == second.status_code == 201 and "Idempotent-Replayed" not in second.headers
    assert second.get_json()["client"]["client_id"] != first.get_json()["client"]["client_id"]
