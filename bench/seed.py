"""Seed a benchmark database; run by the harness in the benchmark's production environment.

`python -m bench.seed citizen OUT_FILE` creates one citizen (phone login) with a session and
writes its ES256 access token (for GET /v1/me) to OUT_FILE; prints {"account_id": ...}.
`python -m bench.seed refresh OUT_FILE N ACCOUNT_ID` adds N sessions of that account, each with
one live refresh token, and writes the N raw tokens to OUT_FILE, one per line.
`python -m bench.seed catalog OUT_FILE N` imports and publishes a catalog of N service items
through the catalog importer (full validation): the seed catalog (seed/catalog/*.json, or the
test factories' items when it is missing) plus synthetic district copies of its items up to N.
Writes the code of one realistic item (居民身份证换领 when present) to OUT_FILE; prints
{"items": N, "detail_code": ...}.
`python -m bench.seed identity OUT_FILE` creates a citizen verified at L3 (an in-person check at
a hall, through domain.identity.hall.record_in_person: encrypted name and ID number, blind
index, masked copies) and writes the access token of its app session (for GET /v1/identity).
`python -m bench.seed verifiers OUT_FILE N` creates N citizens, each with an app session and a
person of its own (a valid name and GB 11643 ID number no other account holds), and writes one
JSON line per citizen: {account_id, token, name, id_number, ip}; prints {"accounts": N}.

It builds the app exactly as gunicorn will (same keys, same signing key in the database).
Files are created 0600: they are credentials, even if only for a throwaway database.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

_CHUNK = 5000
# Items per catalog import: each import is one transaction, validated as a whole.
CATALOG_CHUNK = 1000
DETAIL_NAME = "居民身份证换领"
# Guangzhou's districts (GB/T 2260): the synthetic copies are district-level implementations.
DISTRICTS = (
    ("440103", "荔湾区"), ("440104", "越秀区"), ("440105", "海珠区"), ("440106", "天河区"),
    ("440111", "白云区"), ("440112", "黄埔区"), ("440113", "番禺区"), ("440114", "花都区"),
    ("440115", "南沙区"), ("440117", "从化区"), ("440118", "增城区"),
)  # fmt: skip
DISTRICT_LEVEL = 4  # 行使层级: 县级
# The verifiers' names: common surnames and given-name characters.
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国志红"


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


def bench_person(index: int) -> tuple[str, str]:
    """A fictitious but valid person, different for every index below 20,000.

    The name is 2-3 CJK ideographs; the ID number is a Guangzhou (440106) number with a birth
    date from 1970-01-01 + index days, a sequence number and its GB 11643 check character.
    """
    from datetime import date

    from domain.identity.documents import check_character

    surname = _SURNAMES[index % len(_SURNAMES)]
    given = _GIVEN[(index // len(_SURNAMES)) % len(_GIVEN)]
    name = surname + given + (_GIVEN[index % len(_GIVEN)] if index % 2 else "")
    born = date(1970, 1, 1) + timedelta(days=index)
    first17 = f"440106{born:%Y%m%d}{index % 1000:03d}"
    return name, first17 + check_character(first17)


def bench_ip(index: int) -> str:
    """The client address a citizen's requests claim in X-Forwarded-For (one per citizen)."""
    return f"10.{128 + index // 65536 % 64}.{index // 256 % 256}.{index % 256}"


def seed_identity(out_file: Path) -> dict:
    """A citizen verified at L3 in person, and the access token of an app session it opened after."""
    from core.db import db
    from domain.accounts import service as accounts
    from domain.auth import sessions
    from domain.auth.models import CHANNEL_APP
    from factory import create_app

    try:
        from domain.identity.hall import record_in_person
    except ImportError:  # before the identity service was split into modules
        from domain.identity.service import record_in_person  # type: ignore[attr-defined,no-redef]

    app = create_app()
    svc = app.extensions["yiwang"]
    name, id_number = bench_person(19999)  # outside the verifiers' range
    with app.app_context():
        session = db.session()
        phone = "138" + f"{secrets.randbelow(10**8):08d}"
        account, _ = accounts.login_phone(session, encryptor=svc.encryptor, hasher=svc.hasher, phone=phone)
        session.commit()
        outcome = record_in_person(
            session, deps=svc.identity, operator_id="bench-hall-officer", account_id=account.id,
            name=name, id_number=id_number, hall="bench", request_id=None,
        )  # fmt: skip
        account = accounts.get_account(session, outcome.account_id)
        pair = sessions.start_session(  # after the check: the token carries the level, like a real one
            session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
            channel=CHANNEL_APP, device_label="bench",
        )  # fmt: skip
        level = account.identity_level
        _write_secret(out_file, [pair.access_token])
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    return {"account_id": pair.account_id, "level": level}


def seed_verifiers(out_file: Path, count: int) -> dict:
    """`count` citizens with an app session each, and the person each will verify as."""
    from core.db import db
    from domain.accounts import service as accounts
    from domain.auth import sessions
    from domain.auth.models import CHANNEL_APP
    from factory import create_app

    if count > 19999:
        raise SystemExit("at most 19,999 verifiers (bench_person's range)")
    app = create_app()
    svc = app.extensions["yiwang"]
    lines = []
    with app.app_context():
        session = db.session()
        for i in range(count):
            account, _ = accounts.login_phone(
                session, encryptor=svc.encryptor, hasher=svc.hasher, phone=f"136{i:08d}"
            )
            pair = sessions.start_session(
                session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
                channel=CHANNEL_APP, device_label="bench",
            )  # fmt: skip
            name, id_number = bench_person(i)
            row = {"account_id": pair.account_id, "token": pair.access_token, "name": name,
                   "id_number": id_number, "ip": bench_ip(i)}  # fmt: skip
            lines.append(json.dumps(row, ensure_ascii=False))
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    _write_secret(out_file, lines)
    return {"accounts": count}


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


def _seed_catalog_documents() -> tuple[dict, str]:
    """The seed catalog as one import document (like `flask catalog seed`), and where it came from."""
    from cli.catalog import SEED_DIR, SEED_FILES, merged_documents

    paths = [SEED_DIR / name for name in SEED_FILES]
    if all(p.exists() for p in paths[:2]):  # reference.json and items.json; bundles.json optional
        source = str(SEED_DIR.relative_to(SEED_DIR.parents[1]))
        return merged_documents([p for p in paths if p.exists()]), source
    from tests.domain.catalog import factories

    doc = factories.document(factories.item(), factories.marriage_item())
    return doc, "tests/domain/catalog/factories.py"


def synthetic_item(template: dict, serial: int, variant: int) -> dict:
    """A district copy of `template`: new basic and implementation codes, name, region, body."""
    from domain.catalog.codes import uscc_check_char

    region, district = DISTRICTS[variant % len(DISTRICTS)]
    batch = variant // len(DISTRICTS) + 1
    doc = copy.deepcopy(template)
    basic = "9" + f"{serial:011d}"
    body = doc["implementing_body"]
    # A district body has its own unified social credit code: the template's, with the district's
    # region code (characters 3-8) and a fresh check character.
    first17 = body["uscc"][:2] + region + body["uscc"][8:17]
    uscc = first17 + uscc_check_char(first17)
    name = body["name"]
    body_name = name.replace("广州市", f"广州市{district}", 1) if "广州市" in name else f"{district}{name}"
    suffix = f"（{district}）" if batch == 1 else f"（{district}·第{batch}批）"
    keywords = [*template.get("keywords", [])[:37], district, f"{district}{template['name']}"[:20]]
    doc.update({
        "code": f"{uscc}{DISTRICT_LEVEL}{basic}", "basic_code": basic, "name": template["name"] + suffix,
        "level": DISTRICT_LEVEL, "region": region, "keywords": [*keywords, f"第{batch}批"],
        "implementing_body": {"name": body_name[:100], "uscc": uscc},
    })  # fmt: skip
    return doc


def catalog_items(seed_items: list[dict], count: int) -> list[dict]:
    """The seed items, then synthetic copies of them until there are `count` items."""
    items = list(seed_items[:count])
    for serial in range(1, count - len(items) + 1):
        template = seed_items[(serial - 1) % len(seed_items)]
        items.append(synthetic_item(template, serial, (serial - 1) // len(seed_items)))
    return items


def seed_catalog(out_file: Path, count: int) -> dict:
    """Import and publish `count` items in chunks through the importer; write the detail code."""
    from core.db import db
    from domain.catalog.importing import import_catalog
    from domain.operators.audit_log import CLI_ACTOR
    from factory import create_app

    seed_doc, source = _seed_catalog_documents()
    seed_items = seed_doc["items"]
    if not seed_items:
        raise SystemExit(f"the seed catalog ({source}) has no items to copy")
    items = catalog_items(seed_items, count)
    bundles = (seed_doc.get("bundles") or []) if count >= len(seed_items) else []
    detail = next((i for i in seed_items if i["name"] == DETAIL_NAME), seed_items[0])["code"]
    app = create_app()
    chunks = []
    started = time.monotonic()
    with app.app_context():
        for start in range(0, len(items), CATALOG_CHUNK):
            document = {"items": items[start : start + CATALOG_CHUNK], "publish": True}
            if start == 0:  # reference lists and bundles once, with the items bundles refer to
                document |= {"reference": seed_doc["reference"], "bundles": bundles}
            t0 = time.monotonic()
            report = import_catalog(db.session(), CLI_ACTOR, document, dry_run=False)
            if not report.ok:
                shown = "\n".join(
                    f"  {p.subject or '-'} {p.path}: {p.code}: {p.detail}" for p in report.problems[:20]
                )
                raise SystemExit(
                    f"catalog import of items {start}..{start + len(document['items']) - 1} from {source}"
                    f" failed with {len(report.problems)} problems:\n{shown}"
                )
            published = sum(1 for change in report.items.values() if change.endswith("+published"))
            if published != len(document["items"]):
                raise SystemExit(f"only {published} of {len(document['items'])} items were published")
            chunks.append(round(time.monotonic() - t0, 2))
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    out_file.write_text(detail + "\n")
    return {
        "items": len(items), "bundles": len(bundles), "detail_code": detail, "source": source,
        "seconds": round(time.monotonic() - started, 1), "chunk_seconds": chunks,
    }  # fmt: skip


def main() -> None:
    """Entry point for the harness (see the module docstring for the arguments)."""
    mode, out_file = sys.argv[1], Path(sys.argv[2])
    if mode == "citizen":
        result = seed_citizen(out_file)
    elif mode == "refresh":
        result = seed_refresh(out_file, int(sys.argv[3]), sys.argv[4])
    elif mode == "catalog":
        result = seed_catalog(out_file, int(sys.argv[3]))
    elif mode == "identity":
        result = seed_identity(out_file)
    elif mode == "verifiers":
        result = seed_verifiers(out_file, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: use citizen, refresh, catalog, identity or verifiers")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
