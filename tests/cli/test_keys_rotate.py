"""`flask keys rotate` is in the audit trail, as `keys reencrypt-data` is: an auditor sees when the
token signing key changed, by whom, and which keys it retired."""

from __future__ import annotations

from sqlalchemy import select

from core.db import db
from core.signing_keys import SigningKey
from tests.domain.operators.factories import admin_headers, make_operator


def _kids() -> dict[str, bool]:
    session = db.session()
    session.expire_all()
    return {key.kid: key.retired_at is None for key in session.scalars(select(SigningKey))}


def test_a_signing_key_rotation_is_audited(app, client, clock):
    auditor = admin_headers(client, make_operator(app, username="audrey", roles=("auditor",)))
    (old,) = _kids()  # the key the login signed with

    result = app.test_cli_runner().invoke(args=["keys", "rotate"])

    assert result.exit_code == 0, result.output
    (new,) = (kid for kid, signing in _kids().items() if signing)
    trail = client.get("/admin/v1/audit?action=signing_key.rotated", headers=auditor)
    assert trail.status_code == 200, trail.get_json()
    events = trail.get_json()
    assert [(e["actor_type"], e["actor_id"], e["target_type"], e["target_id"]) for e in events] == [
        ("system", "cli", "signing_key", new)
    ]
    grace = int(result.output.split(" for ")[1].split(" s ")[0])
    assert events[0]["details"] == {"retired": [old], "verify_grace": grace}
