"""Operators for tests: create through the domain service, log in through the API."""

from __future__ import annotations

from typing import Any

import pyotp

from core import clock as clock_mod
from domain.operators.audit_log import Actor

PASSWORD = "correct horse battery staple"
TEST_ACTOR = Actor("system", "tests")


def make_operator(
    app: Any,
    *,
    username: str = "alice",
    roles: tuple[str, ...] = ("admin",),
    hall_ids: tuple[str, ...] = (),
    department_codes: tuple[str, ...] = (),
) -> dict:
    """Create an operator (tied to the halls and departments given); returns its id, username,
    password and TOTP secret."""
    from core.db import db
    from domain.operators import service

    created = service.create_operator(
        db.session(), encryptor=app.extensions["yiwang"].encryptor, actor=TEST_ACTOR,
        username=username, display_name=f"{username} 测试", password=PASSWORD, roles=list(roles),
        hall_ids=list(hall_ids), department_codes=list(department_codes),
    )  # fmt: skip
    return {
        "id": created.operator.id,
        "username": username,
        "password": PASSWORD,
        "secret": created.totp_secret,
        "uri": created.totp_uri,
    }


def totp_now(operator: dict, offset_steps: int = 0) -> str:
    """The code the operator's authenticator app shows at the frozen clock's time."""
    return pyotp.TOTP(operator["secret"]).at(clock_mod.timestamp() + 30 * offset_steps)


def login(
    client: Any,
    operator: dict,
    *,
    code: str | None = None,
    password: str | None = None,
    ip: str | None = None,
) -> Any:
    """POST /admin/v1/auth/login (from `ip`, when given); returns the response."""
    return client.post(
        "/admin/v1/auth/login",
        json={
            "username": operator["username"],
            "password": password if password is not None else operator["password"],
            "totp_code": code if code is not None else totp_now(operator),
        },
        environ_base={"REMOTE_ADDR": ip or "127.0.0.1"},
    )


def admin_headers(client: Any, operator: dict) -> dict:
    """Log in and return the Authorization header (asserts success)."""
    resp = login(client, operator)
    assert resp.status_code == 200, resp.get_json()
    return {"Authorization": f"Bearer {resp.get_json()['access_token']}"}
