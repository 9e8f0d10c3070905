"""Seed the OAuth benchmark; run by bench.oauth in the benchmark's production environment.

`python -m bench.oauth_data setup OUT_DIR` registers and approves a confidential client, creates
a citizen with an app session and a grant to that client (profile.basic applications.read), and
writes: citizen.token (first-party access token), client.token (the client's access token for
the same citizen, minted as a code redemption would), client.basic (the client's Basic
authorization value), state.json (ids the next step needs). Prints {"account_id", "client_id"}.

`python -m bench.oauth_data codes OUT_DIR N THREADS` inserts N fresh authorization codes of that
grant (one bulk insert: a code lives 60 s, so they are made right before the load) with one
PKCE verifier, and splits them over THREADS files OUT_DIR/codes.<i>; writes the verifier.

Files are 0600: they are credentials, even if only for a throwaway database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import timedelta
from pathlib import Path

from bench.seed import _write_secret

SCOPE = "profile.basic applications.read"


def setup(out: Path) -> dict:
    from core.db import db
    from domain.accounts import service as accounts
    from domain.auth import sessions
    from domain.auth.models import CHANNEL_APP
    from domain.oauth import clients, grants
    from domain.oauth import tokens as oauth_tokens
    from domain.operators.audit_log import CLI_ACTOR
    from factory import create_app

    app = create_app()
    svc = app.extensions["yiwang"]
    with app.app_context():
        session = db.session()
        reg = clients.register(
            session,
            actor=CLI_ACTOR,
            name="基准测试银行",
            contact="bench",
            client_type="confidential",
            redirect_uris=["https://bench.example.cn/cb"],
            scopes=SCOPE.split(),
        )
        clients.set_status(
            session, actor=CLI_ACTOR, revocations=svc.revocations, client_id=reg.client.id, status="approved"
        )
        account, _ = accounts.login_phone(
            session, encryptor=svc.encryptor, hasher=svc.hasher, phone="13900007777"
        )
        pair = sessions.start_session(
            session,
            tokens=svc.tokens,
            policy=svc.citizen_policy,
            account=account,
            channel=CHANNEL_APP,
            device_label="bench",
        )
        grant = grants.consent(
            session, account=account, client=reg.client, asked=SCOPE.split(), sensitive_accepted=[], days=30
        )
        session.commit()
        code = oauth_tokens.issue_code(
            session,
            policy=svc.oauth_policy,
            grant=grant,
            redirect_uri="https://bench.example.cn/cb",
            scope=grant.scopes,
            code_challenge="x" * 43,
            code_challenge_method="S256",
        )
        row = oauth_tokens.redeem_code(
            session, revocations=svc.revocations, code=code, client_id=reg.client.id
        )
        assert row is not None and row.family_id
        issued = oauth_tokens.issue_for_citizen(
            session,
            tokens=svc.tokens,
            policy=svc.oauth_policy,
            revocations=svc.revocations,
            grant=grant,
            family_id=row.family_id,
            scope=grant.scopes,
            account=account,
            with_refresh=False,
        )
        basic = base64.b64encode(f"{reg.client.id}:{reg.client_secret}".encode()).decode()
        _write_secret(out / "citizen.token", [pair.access_token])
        _write_secret(out / "client.token", [issued["access_token"]])
        _write_secret(out / "client.basic", ["Basic " + basic])
        state = {"account_id": account.id, "client_id": reg.client.id, "grant_id": grant.id}
        _write_secret(out / "state.json", [json.dumps(state)])
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    return {"account_id": state["account_id"], "client_id": state["client_id"]}


def codes(out: Path, count: int, threads: int) -> dict:
    from sqlalchemy import insert

    from core import clock
    from core.crypto import random_token, token_hash
    from core.db import db, new_id
    from domain.oauth.models import OAuthCode
    from factory import create_app

    state = json.loads((out / "state.json").read_text())
    verifier = random_token(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    app = create_app()
    raws = [random_token(32) for _ in range(count)]
    with app.app_context():
        now = clock.now()
        rows = [
            {
                "id": new_id(),
                "code_hash": token_hash(raw),
                "grant_id": state["grant_id"],
                "client_id": state["client_id"],
                "account_id": state["account_id"],
                "redirect_uri": "https://bench.example.cn/cb",
                "scope": SCOPE,
                "code_challenge": challenge.decode(),
                "code_challenge_method": "S256",
                "created_at": now,
                "expires_at": now + timedelta(seconds=60),
            }
            for raw in raws
        ]
        session = db.session()
        for start in range(0, len(rows), 5000):
            session.execute(insert(OAuthCode), rows[start : start + 5000])
        session.commit()
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    for i in range(threads):
        _write_secret(out / f"codes.{i}", raws[i::threads])
    _write_secret(out / "verifier", [verifier])
    return {"codes": count}


def main() -> None:
    kind, out = sys.argv[1], Path(sys.argv[2])
    result = setup(out) if kind == "setup" else codes(out, int(sys.argv[3]), int(sys.argv[4]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
