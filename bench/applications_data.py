"""Data for the application scenarios of `python -m bench.run`; run by the harness in its own
process with the benchmark's production environment (like bench.seed).

`python -m bench.applications_data setup OUT_JSON CITIZENS GET_APPS` imports and publishes the
seed catalog unless the run already did (the catalog scenarios), then creates CITIZENS citizens,
each verified at L3 in person (domain.identity.hall, as tests/api/v1/applications/conftest.py
`verified` does) with an app session, and through the application services one *template*
draft per citizen for 社会保障卡申领 (create with prefill, autosave of the remaining fields, the
two required materials uploaded as JPEGs). The first citizen also gets GET_APPS applications
of its own (create, autosave, materials reused from its template; three in four submitted, the
rest left as drafts) for the GET scenario. Writes OUT_JSON (0600: it holds access tokens):
{citizens: [{account_id, token, template_id}], get_ids, text_version, service_code}.

`python -m bench.applications_data drafts SETUP_JSON OUT_PREFIX COUNT THREADS` adds COUNT
complete drafts, ready to submit, round-robin over the citizens: copies of each citizen's
template (the application row with its encrypted data and provenance, its `draft` timeline
event, its two materials as reuses of the template's files), inserted in bulk. Creating each
through the services would take longer than the scenario itself, and submit reads nothing a
copy does not have. Writes `APP_ID CONSENT_TEXT_VERSION TOKEN` lines to OUT_PREFIX.0 …
OUT_PREFIX.(THREADS-1), one wrk thread each (bench/lua/submit.lua), so no draft is submitted twice.

`python -m bench.applications_data fill ROWS` adds applications until the table holds ROWS,
as a production database would hold them after two years: many accounts (1 to 300
applications each, most a handful), a status mix from drafts to delivered results, and for
every application what its history would have written: a timeline event per transition, a
consent record and a forwarding outbox row per submission (plus resubmission and withdrawal
rows), materials satisfied by e-certificate and shared-data references. The rows are generated
by PostgreSQL itself (INSERT … SELECT over generate_series, gen_random_uuid() keys, so the
indexes see random keys as with uuid4) in committed batches of 50,000 applications on two
connections, with progress on stderr. To fit in about three minutes on two cores, the fill
(a) runs without foreign-key triggers (session_replication_role = replica, superuser only;
the rows are consistent by construction) and (b) drops the filled tables' secondary indexes
(those that back no constraint) and builds them again afterwards, also when the fill fails;
primary keys and unique constraints take every insert as production's do. A built index is
denser than one grown by random inserts, which flatters reads slightly. Then VACUUM ANALYZE, so
neither autovacuum nor stale statistics land in a measured scenario.
Shortcuts, all of them invisible to the GET and submit paths measured: every generated
application carries the same encrypted form data (one ciphertext of a real draft's data, the
size a real one has) and provenance; the items are the seeded catalog's, each pinned at its
published version; case numbers use one global serial (unique; days before today, so they
never meet the serials of today's submissions); audit events are not generated (the audit
table is written, never read, by these paths). Prints {rows, seconds, ...} as JSON.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

SERVICE_CODE = "11440100007504956C3000110001000"  # 社会保障卡申领: L2, two required materials
FORM_DATA = {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
MATERIALS = ("id_card", "insurance")
PERSON_BASE = 19000  # bench.seed.bench_person indexes of these citizens (verifiers use 0..63)
_CHUNK = 2000

# fill: the status mix of two years of applications (weights) and the path each one took.
STATUS_MIX = (
    ("draft", 12), ("submitted", 5), ("received", 4), ("accepted", 6), ("in_review", 8),
    ("supplement_requested", 3), ("resubmitted", 1), ("special_procedure", 1), ("not_accepted", 3),
    ("completed", 12), ("result_delivered", 41), ("withdrawn", 4),
)  # fmt: skip
_BASE = ("draft", "submitted", "received")
PATHS = {
    "draft": ("draft",),
    "submitted": ("draft", "submitted"),
    "received": _BASE,
    "accepted": (*_BASE, "accepted"),
    "in_review": (*_BASE, "accepted", "in_review"),
    "supplement_requested": (*_BASE, "supplement_requested"),
    "resubmitted": (*_BASE, "supplement_requested", "resubmitted"),
    "special_procedure": (*_BASE, "accepted", "in_review", "special_procedure"),
    "not_accepted": (*_BASE, "not_accepted"),
    "completed": (*_BASE, "accepted", "in_review", "completed"),
    "result_delivered": (*_BASE, "accepted", "in_review", "completed", "result_delivered"),
    "withdrawn": ("draft", "submitted", "withdrawn"),
}
MAX_PER_ACCOUNT = 300
BATCH_ROWS = 50_000


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _jpeg(color: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 400), color).save(out, "JPEG")
    return out.getvalue()


def setup(out_file: Path, citizens: int, get_apps: int) -> dict:
    """Verified citizens, a template draft each, and the first citizen's applications."""
    import secrets

    from bench.seed import bench_person
    from core.db import db
    from domain.accounts import service as accounts
    from domain.applications import materials, service, submission
    from domain.auth import sessions
    from domain.auth.models import CHANNEL_APP
    from domain.identity.hall import record_in_person
    from factory import create_app

    app = create_app()
    svc = app.extensions["yiwang"]
    deps = svc.applications
    people: list[dict] = []
    get_ids: list[str] = []
    with app.app_context():
        session = db.session()
        catalog = _ensure_catalog(session)
        for i in range(citizens):
            phone = "135" + f"{secrets.randbelow(10**8):08d}"
            account, _ = accounts.login_phone(
                session, encryptor=svc.encryptor, hasher=svc.hasher, phone=phone
            )
            session.commit()
            name, id_number = bench_person(PERSON_BASE + i)
            record_in_person(
                session, deps=svc.identity, operator_id="bench-hall-officer", account_id=account.id,
                name=name, id_number=id_number, hall="bench", request_id=None,
            )  # fmt: skip
            account = accounts.get_account(session, account.id)
            pair = sessions.start_session(  # after the check: the token carries L3
                session, tokens=svc.tokens, policy=svc.citizen_policy, account=account,
                channel=CHANNEL_APP, device_label="bench",
            )  # fmt: skip
            draft = _complete_draft(session, deps, account.id, files=None)
            files = [
                materials.upload(
                    session, deps, account_id=account.id, app_id=draft.id, material_id=m,
                    data=_jpeg(color), filename=f"{m}.jpg",
                ).id
                for m, color in zip(MATERIALS, ("red", "blue"), strict=True)
            ]  # fmt: skip
            people.append({"account_id": account.id, "token": pair.access_token, "template_id": draft.id,
                           "files": files})  # fmt: skip
        first = people[0]
        text_version = service.consent_text(service.spec_of(session, service.owned(
            session, first["account_id"], first["template_id"])))[1]  # fmt: skip
        for k in range(get_apps):
            draft = _complete_draft(session, deps, first["account_id"], files=first["files"])
            if k % 4 != 3:
                submission.submit(
                    session, deps, account_id=first["account_id"], app_id=draft.id, channel=CHANNEL_APP,
                    consent={"accepted": True, "text_version": text_version}, ip="10.0.0.1",
                )  # fmt: skip
            get_ids.append(draft.id)
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    result = {"citizens": people, "get_ids": get_ids, "text_version": text_version,
              "service_code": SERVICE_CODE}  # fmt: skip
    _write_secret(out_file, json.dumps(result))
    return {
        "citizens": len(people),
        "get_ids": len(get_ids),
        "text_version": text_version,
        "catalog": catalog,
    }


def _ensure_catalog(session: Any) -> str:
    """Import and publish the seed catalog (as `flask catalog seed`) unless the item is published."""
    from sqlalchemy import select

    from cli.catalog import SEED_DIR, SEED_FILES, merged_documents
    from domain.catalog.importing import import_catalog
    from domain.catalog.models import ServiceItem
    from domain.operators.audit_log import CLI_ACTOR

    published = session.scalar(select(ServiceItem.published_version).where(ServiceItem.code == SERVICE_CODE))
    if published is not None:
        return "already imported"
    document = merged_documents([SEED_DIR / name for name in SEED_FILES if (SEED_DIR / name).exists()])
    document["publish"] = True
    report = import_catalog(session, CLI_ACTOR, document, dry_run=False)
    if not report.ok:
        raise SystemExit(f"importing the seed catalog failed: {report.problems[:5]}")
    return f"seed catalog imported ({len(document['items'])} items)"


def _complete_draft(session: Any, deps: Any, account_id: str, files: list[str] | None) -> Any:
    """A draft of the item with every field filled; its materials reuse `files` when given."""
    from domain.applications import drafts, materials
    from domain.auth.models import CHANNEL_APP

    draft = drafts.create(
        session, deps, account_id=account_id, channel=CHANNEL_APP, service_code=SERVICE_CODE, bundle_code=None
    )
    draft = drafts.patch(
        session, deps, account_id=account_id, app_id=draft.id, if_match=draft.revision, data_patch=FORM_DATA
    )
    for material_id, file_id in zip(MATERIALS, files or (), strict=False):
        materials.reuse(
            session, deps, account_id=account_id, app_id=draft.id, material_id=material_id, file_id=file_id
        )
    return draft


def drafts(setup_file: Path, out_prefix: Path, count: int, threads: int) -> dict:
    """`count` copies of the citizens' templates, round-robin; the id and token files for wrk."""
    from sqlalchemy import insert, select

    from bench.load import split_tokens
    from core import clock
    from core.db import db, new_id
    from domain.applications.models import Application, ApplicationEvent, ApplicationMaterial
    from factory import create_app

    setup_data = json.loads(setup_file.read_text())
    people, text_version = setup_data["citizens"], setup_data["text_version"]
    app = create_app()
    deps = app.extensions["yiwang"].applications
    columns = [c.key for c in Application.__table__.columns]
    lines: list[str] = []
    started = time.monotonic()
    with app.app_context():
        session = db.session()
        templates = []
        for person in people:
            row = session.get(Application, person["template_id"])
            rows = session.scalars(
                select(ApplicationMaterial).where(ApplicationMaterial.application_id == row.id)
            ).all()
            templates.append(
                ({c: getattr(row, c) for c in columns}, [(m.material_id, m.file_id) for m in rows])
            )
        now = clock.now()
        for start in range(0, count, _CHUNK):
            apps, events, mats = [], [], []
            for i in range(start, min(count, start + _CHUNK)):
                values, attached = templates[i % len(templates)]
                app_id = new_id()
                apps.append(values | {
                    "id": app_id, "created_at": now, "updated_at": now,
                    "expires_at": now + timedelta(days=deps.draft_ttl_days),
                })  # fmt: skip
                events.append({
                    "id": new_id(), "application_id": app_id, "seq": 1, "at": now, "from_status": None,
                    "to_status": "draft", "actor_type": "citizen", "actor_id": values["account_id"],
                })  # fmt: skip
                mats += [{"id": new_id(), "application_id": app_id, "material_id": material_id,
                          "kind": "reuse", "file_id": file_id, "attached_at": now}
                         for material_id, file_id in attached]  # fmt: skip
                lines.append(f"{app_id} {text_version} {people[i % len(people)]['token']}")
            session.execute(insert(Application), apps)
            session.execute(insert(ApplicationEvent), events)
            session.execute(insert(ApplicationMaterial), mats)
            session.commit()
        db.session.remove()
    db.engine.dispose()  # type: ignore[union-attr]
    split_tokens(lines, out_prefix, threads)
    return {"drafts": len(lines), "seconds": round(time.monotonic() - started, 1)}


# --- fill: a table of ROWS applications ----------------------------------------------------------


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _catalog_items(session: Any) -> list[dict]:
    """Every published item of the catalog: code, pinned version, name, consent text version."""
    from sqlalchemy import select

    from domain.applications import forms, service
    from domain.catalog.models import ServiceItem

    out = []
    for code, version in session.execute(
        select(ServiceItem.code, ServiceItem.published_version)
        .where(ServiceItem.published_version.is_not(None))
        .order_by(ServiceItem.code)
        .limit(200)
    ):
        spec = forms.spec_for(session, [(code, version)])
        out.append({"code": code, "version": version, "name": spec.name[:200],
                    "text_version": service.consent_text(spec)[1]})  # fmt: skip
    return out


_PREPARE = """
SET jit = off;
SET synchronous_commit = off;
CREATE TEMP TABLE bench_mix (status text, lo float8, hi float8, steps int, subs int);
CREATE TEMP TABLE bench_paths (status text, seq int, from_status text, to_status text, actor text);
CREATE TEMP TABLE bench_items (n int, code text, version int, name text, text_version text);
CREATE TEMP SEQUENCE bench_case_serial START WITH {serial_start};
"""

# One batch: accounts with 1..300 applications each (most a handful), then every row a history
# of that many applications would have written. %(accounts)s accounts, at most %(limit)s apps.
# Statements are separated by blank lines (run one at a time: they take parameters).
_BATCH = """
CREATE TEMP TABLE bench_acc ON COMMIT DROP AS
SELECT gen_random_uuid()::text AS id,
       1 + floor(%(max_minus_one)s * power(random(), 6))::int AS n,
       CASE WHEN random() < 0.5 THEN 'app' ELSE 'miniprogram' END AS channel,
       now() - interval '800 days' + random() * interval '60 days' AS created_at
FROM generate_series(1, %(accounts)s)

INSERT INTO accounts (id, status, identity_level, live_checked_at, created_at, updated_at, created_via)
SELECT id, 'active', 'L3', created_at, created_at, created_at, channel FROM bench_acc

CREATE TEMP TABLE bench_app ON COMMIT DROP AS
WITH raw AS (
  SELECT gen_random_uuid()::text AS id, a.id AS account_id, a.channel, random() AS r,
         floor(random() * %(items)s)::int AS item_n, random() AS age, random() AS pace
  FROM bench_acc a CROSS JOIN LATERAL generate_series(1, a.n)
  LIMIT %(limit)s
), picked AS (
  SELECT raw.id, raw.account_id, raw.channel, m.status, m.steps, m.subs, i.code, i.version, i.name,
         i.text_version,
         CASE WHEN m.status = 'draft' THEN now() - interval '1 hour' - raw.age * interval '28 days'
              ELSE now() - interval '3 days' - raw.age * interval '725 days' END AS created_at,
         raw.pace * interval '2 days' AS step,
         CASE WHEN m.status = 'draft' THEN NULL ELSE gen_random_uuid()::text END AS consent_id,
         CASE WHEN m.status = 'draft' THEN NULL ELSE nextval('bench_case_serial')::text END AS serial
  FROM raw
  JOIN bench_mix m ON raw.r >= m.lo AND raw.r < m.hi
  JOIN bench_items i ON i.n = raw.item_n
)
SELECT picked.*,
       code || to_char((created_at + step) AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD')
       || lpad(serial, greatest(4, length(serial)), '0') AS case_number,
       steps >= 4 AND status NOT IN ('supplement_requested', 'resubmitted', 'not_accepted', 'withdrawn')
         AS clock_running
FROM picked

INSERT INTO consent_records (id, account_id, purpose, text_version, channel, given_at)
SELECT consent_id, account_id, 'application_share', text_version, channel, created_at + step
FROM bench_app WHERE consent_id IS NOT NULL

INSERT INTO applications (
  id, account_id, kind, service_code, bundle_code, items, service_name, status, result, revision,
  submission_version, data_enc, provenance, supplement, case_number, consent_id, created_channel,
  created_at, updated_at, expires_at, submitted_at, clock_started_on, paused_on, paused_working_days,
  due_on, completed_at, fields_prefilled, fields_typed, materials_without_upload, materials_uploaded)
SELECT id, account_id, 'item', code, NULL,
       json_build_array(json_build_object('code', code, 'version', version)), name, status,
       CASE WHEN status IN ('completed', 'result_delivered') THEN 'approved' END,
       steps + 1, subs, %(data_enc)s, %(provenance)s::json,
       CASE WHEN status = 'supplement_requested'
            THEN '{"fields": [], "materials": ["id_card"], "reason": "材料不清晰"}'::json END,
       case_number, consent_id, channel, created_at, created_at + (steps - 1) * step,
       CASE WHEN status = 'draft' THEN created_at + interval '30 days' END,
       CASE WHEN status <> 'draft' THEN created_at + step END,
       CASE WHEN clock_running THEN ((created_at + 3 * step) AT TIME ZONE 'Asia/Shanghai')::date END,
       CASE WHEN status IN ('supplement_requested', 'resubmitted', 'special_procedure')
            THEN ((created_at + (steps - 1) * step) AT TIME ZONE 'Asia/Shanghai')::date END,
       0,
       CASE WHEN clock_running THEN ((created_at + 3 * step) AT TIME ZONE 'Asia/Shanghai')::date + 14 END,
       CASE WHEN status IN ('completed', 'result_delivered') THEN created_at + (steps - 1) * step END,
       3, 2, CASE WHEN status = 'draft' THEN 0 ELSE 2 END, 0
FROM bench_app

INSERT INTO application_events (id, application_id, seq, at, from_status, to_status, actor_type, actor_id)
SELECT gen_random_uuid()::text, b.id, p.seq, b.created_at + (p.seq - 1) * b.step, p.from_status,
       p.to_status, p.actor, CASE WHEN p.actor = 'citizen' THEN b.account_id END
FROM bench_app b JOIN bench_paths p ON p.status = b.status

INSERT INTO application_materials (id, application_id, material_id, kind, file_id, ref, attached_at)
SELECT gen_random_uuid()::text, b.id, m.material_id, m.kind, NULL, m.ref || substr(b.id, 1, 8),
       b.created_at + b.step / 4
FROM bench_app b
CROSS JOIN (VALUES ('id_card', 'ecert', 'ecert:11100000000019713D001:'),
                   ('insurance', 'shared', 'social_security.insurance_record:')) AS m(material_id, kind, ref)
WHERE b.status <> 'draft'

INSERT INTO forwarding_outbox (id, application_id, kind, submission_version, case_number, state,
                               attempts, created_at, sent_at, receipt)
SELECT gen_random_uuid()::text, b.id, o.kind, o.version, b.case_number, 'sent', 1,
       b.created_at + o.at * b.step, b.created_at + o.at * b.step + interval '2 seconds',
       json_build_object('accepted', true, 'province_case_id', 'P' || b.case_number)
FROM bench_app b
CROSS JOIN (VALUES ('submit', 1, 1), ('resubmit', 2, 4), ('withdraw', 1, 2)) AS o(kind, version, at)
WHERE b.status <> 'draft'
  AND (o.kind = 'submit' OR (o.kind = 'resubmit' AND b.subs = 2)
       OR (o.kind = 'withdraw' AND b.status = 'withdrawn'))
"""
FILL_TABLES = ("applications", "application_events", "application_materials", "forwarding_outbox",
               "consent_records", "accounts")  # fmt: skip
FILL_WORKERS = 2  # connections filling at once: one PostgreSQL backend each, the bottleneck


def _mix_rows() -> tuple[list[tuple], list[tuple]]:
    total = sum(w for _, w in STATUS_MIX)
    mix, paths, lo = [], [], 0.0
    for status, weight in STATUS_MIX:
        hi = lo + weight / total
        path = PATHS[status]
        mix.append((status, lo, 1.01 if status == STATUS_MIX[-1][0] else hi, len(path),
                    2 if status == "resubmitted" else (0 if status == "draft" else 1)))  # fmt: skip
        for seq, to in enumerate(path, start=1):
            actor = "citizen" if to in ("draft", "submitted", "resubmitted", "withdrawn") else "province"
            paths.append((status, seq, path[seq - 2] if seq > 1 else None, to, actor))
        lo = hi
    return mix, paths


class _Quota:
    """Applications still to add, handed out in batches to the fill workers; progress on stderr."""

    def __init__(self, existing: int, rows: int, started: float) -> None:
        import threading

        self.lock = threading.Lock()
        self.done, self.claimed, self.rows, self.started = existing, existing, rows, started
        self.errors: list[BaseException] = []

    def claim(self) -> int:
        with self.lock:
            n = 0 if self.errors else min(BATCH_ROWS, self.rows - self.claimed)
            self.claimed += n
            return n

    def report(self, claimed: int, added: int, seconds: float) -> None:
        with self.lock:
            self.done += added
            self.claimed -= claimed - added  # a short batch hands its rest back
            total = time.monotonic() - self.started
            print(f"  applications {self.done:,}/{self.rows:,} (+{added:,} in {seconds:.1f} s,"
                  f" {total:.0f} s so far)", file=sys.stderr, flush=True)  # fmt: skip


def _fill_worker(url: str, worker: int, quota: _Quota, setup_rows: tuple, params: dict) -> None:
    import psycopg

    mix, paths, items = setup_rows
    try:
        with psycopg.connect(url, autocommit=False) as conn:
            try:  # no foreign-key triggers: the rows are consistent by construction (superuser only)
                conn.execute("SET session_replication_role = replica")
            except psycopg.errors.InsufficientPrivilege:
                conn.rollback()
            # Serial ranges per worker, past any earlier fill's: case numbers stay unique.
            conn.execute(_PREPARE.format(serial_start=10**7 * (worker + 1) + quota.done))
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO bench_mix VALUES (%s, %s, %s, %s, %s)", mix)
                cur.executemany("INSERT INTO bench_paths VALUES (%s, %s, %s, %s, %s)", paths)
                cur.executemany("INSERT INTO bench_items VALUES (%s, %s, %s, %s, %s)", items)
            conn.commit()
            mean = 1 + (MAX_PER_ACCOUNT - 1) / 7  # E[1 + 299 u^6]
            while limit := quota.claim():
                t0 = time.monotonic()
                batch = params | {"limit": limit, "accounts": max(1, round(limit / mean * 1.15))}
                with conn.cursor() as cur:
                    for statement in _BATCH.strip().split("\n\n"):
                        cur.execute(statement, batch)
                added = conn.execute("SELECT count(*) FROM bench_app").fetchone()[0]
                conn.commit()
                quota.report(limit, added, time.monotonic() - t0)
                if added == 0:
                    raise RuntimeError("a fill batch added no applications")
    except BaseException as exc:  # reported by fill() once every worker has stopped
        with quota.lock:
            quota.errors.append(exc)


def fill(rows: int) -> dict:
    """Add applications (and their history) until the table holds `rows`; see the docstring."""
    import psycopg
    from sqlalchemy import select

    from core.db import db
    from domain.applications.models import Application
    from factory import create_app

    started = time.monotonic()
    app = create_app()
    with app.app_context():
        session = db.session()
        items = _catalog_items(session)
        sample = session.execute(
            select(Application.data_enc, Application.provenance)
            .where(Application.service_code == SERVICE_CODE)
            .limit(1)
        ).first()
        db.session.remove()
        url = _psycopg_url(db.engine.url.render_as_string(hide_password=False))  # type: ignore[union-attr]
    db.engine.dispose()  # type: ignore[union-attr]
    if not items or sample is None:
        raise SystemExit("fill needs the seeded catalog and one application (run setup first)")
    with psycopg.connect(url, autocommit=True) as conn:
        existing = conn.execute("SELECT count(*) FROM applications").fetchone()[0]
    quota = _Quota(existing, rows, started)
    mix, paths = _mix_rows()
    item_rows = [(n, i["code"], i["version"], i["name"], i["text_version"]) for n, i in enumerate(items)]
    params = {
        "items": len(items), "max_minus_one": MAX_PER_ACCOUNT - 1, "data_enc": sample.data_enc,
        "provenance": json.dumps(sample.provenance, ensure_ascii=False),
    }  # fmt: skip
    indexes = _drop_plain_indexes(url)
    try:
        _parallel(
            _fill_worker, [(url, k, quota, (mix, paths, item_rows), params) for k in range(FILL_WORKERS)]
        )
    finally:  # also on failure: the scenarios and the sweeper need the indexes back
        filled = time.monotonic() - started
        _parallel(_run_ddl, [(url, indexes[k::FILL_WORKERS], quota) for k in range(FILL_WORKERS)])
    indexed = time.monotonic() - started - filled
    if quota.errors:
        raise SystemExit(f"filling failed: {quota.errors[0]!r}")
    # VACUUM now: after a million inserts autovacuum would otherwise start on these tables during
    # a measured scenario; ANALYZE gives the planner the big tables' statistics.
    vacuum = [f"VACUUM (ANALYZE) {table}" for table in FILL_TABLES]
    _parallel(_run_ddl, [(url, vacuum[k::FILL_WORKERS], quota) for k in range(FILL_WORKERS)])
    if quota.errors:
        raise SystemExit(f"rebuilding the indexes or VACUUM failed: {quota.errors[0]!r}")
    with psycopg.connect(url, autocommit=True) as conn:
        totals = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in FILL_TABLES}
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    return {
        "rows": totals["applications"], "existing_before": existing, "tables": totals, "database_size": size,
        "fill_seconds": round(filled, 1), "index_seconds": round(indexed, 1),
        "vacuum_seconds": round(time.monotonic() - started - filled - indexed, 1),
        "indexes_rebuilt": [name for name, _ in indexes],
        "seconds": round(time.monotonic() - started, 1), "workers": FILL_WORKERS,
    }  # fmt: skip


def _parallel(target: Any, arg_lists: list[tuple]) -> None:
    import threading

    threads = [threading.Thread(target=target, args=args) for args in arg_lists]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _drop_plain_indexes(url: str) -> list[tuple[str, str]]:
    """Drop the filled tables' indexes that back no constraint; their (name, CREATE INDEX ...).

    Inserting a million rows into five random-key secondary indexes costs most of a fill's time;
    building them afterwards sorts once. (A built index is denser than one grown by random
    inserts: slightly kinder to reads than production's. Primary keys and unique constraints
    stay, and take their inserts as production's do.)
    """
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
            " AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
            " WHERE c.conname = i.indexname) ORDER BY i.indexname",
            [list(FILL_TABLES)],
        ).fetchall()
        for name, _ in rows:
            conn.execute(f'DROP INDEX "{name}"')
    return [(name, ddl) for name, ddl in rows]


def _run_ddl(url: str, statements: list, quota: _Quota) -> None:
    """Run statements (or (name, statement) pairs) one by one; errors go to quota.errors."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '256MB'")
            for statement in statements:
                sql = statement[1] if isinstance(statement, tuple) else statement
                t0 = time.monotonic()
                conn.execute(sql)
                print(f"  {sql[:90]}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
    except BaseException as exc:
        with quota.lock:
            quota.errors.append(exc)


def main() -> None:
    """Entry point for the harness (see the module docstring for the arguments)."""
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "setup":
        result = setup(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "drafts":
        result = drafts(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif mode == "fill":
        result = fill(int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: use setup, drafts or fill")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
