"""Seed a benchmark database; run by the harness in the benchmark's production environment.

`python -m bench.seed citizen OUT_FILE` creates one citizen (phone login) with a session and
writes its ES256 access token (for GET /v1/me) to OUT_FILE; prints {"account_id": ...}.
`python -m bench.seed refresh OUT_FILE N ACCOUNT_ID` adds N sessions of that account, each with
one live refresh token, and writes the N raw tokens to OUT_FILE, one per line.

It builds the app exactly as gunicorn will (same keys, same signing key in the database).
Files are created 0600: they are credentials, even if only for a throwaway database.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

_CHUNK = 5000


def _write_secret(path: Path, lines: list[str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")


def seed_citizen(out_file: Path) -> dict:
    """Create the citizen and write the access token of its session."""
    from core.db import db
    from domain.accounts import service as accounts
    from domain.auth import sessions
    from domain.auth.models import CHANNEL_APP
    from factory import create_app

    app = create_app()
    svc = app.extensions["yiwang"]
    with app.app_context():
        session = db.session()
        phone = "139" + f"{secrets.randbelow(10**8):08d}"
        account, _ = accounts.login_phone(session, encryptor=svc.encryptor, hasher=svc.hasher, phone=phone)
        pair = sessions.start_session(
            session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
            channel=CHANNEL_APP, device_label="bench",
        )  # fmt: skip
        _write_secret(out_file, [pair.access_token])
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    return {"account_id": pair.account_id}


def seed_refresh(out_file: Path, count: int, account_id: str) -> dict:
    """Add `count` sessions of the account, each with one unused refresh token."""
    from core import clock
    from core.crypto import random_token, token_hash
    from core.db import db, new_id
    from domain.auth.models import CHANNEL_APP, LoginSession, RefreshToken
    from factory import create_app

    app = create_app()
    policy = app.extensions["yiwang"].citizen_policy
    # The rows sessions.start_session writes, inserted in bulk: minting 10^4 tokens through
    # the service, one commit each, would take longer than the benchmark itself.
    now = clock.now()
    session_expiry = now + timedelta(seconds=policy.max_age)
    token_expiry = now + timedelta(seconds=min(policy.refresh_ttl, policy.max_age))
    raw_tokens: list[str] = []
    with app.app_context():
        session = db.session()
        for start in range(0, count, _CHUNK):
            sess_rows, token_rows = [], []
            for _ in range(min(_CHUNK, count - start)):
                sid, raw = new_id(), "rt_" + random_token(32)
                raw_tokens.append(raw)
                sess_rows.append({
                    "id": sid, "account_id": account_id, "channel": CHANNEL_APP, "device_label": "bench",
                    "created_at": now, "last_seen_at": now, "expires_at": session_expiry,
                })  # fmt: skip
                token_rows.append({
                    "id": new_id(), "session_id": sid, "token_hash": token_hash(raw),
                    "created_at": now, "expires_at": token_expiry,
                })  # fmt: skip
            session.execute(insert(LoginSession), sess_rows)
            session.execute(insert(RefreshToken), token_rows)
            session.commit()
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    _write_secret(out_file, raw_tokens)
    return {"refresh_tokens": len(raw_tokens)}


def main() -> None:
    """Entry point for the harness (see the module docstring for the arguments)."""
    mode, out_file = sys.argv[1], Path(sys.argv[2])
    if mode == "citizen":
        result = seed_citizen(out_file)
    elif mode == "refresh":
        result = seed_refresh(out_file, int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode!r}: use citizen or refresh")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
