"""The upstream body of one outbox row: the case as the province's profile wants it.

Built at send time from the application (not stored in the outbox), so an operator's
correction or a replay always sends the current data. Reading the applicant's full name, ID
number and phone for it is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.crypto import Encryptor
from domain.accounts.models import PHONE, ChannelIdentity
from domain.accounts.service import PHONE_PURPOSE
from domain.applications import forms
from domain.applications.models import Application, ApplicationFile, ApplicationMaterial, ForwardingOutbox
from domain.applications.prefill import decrypt_data
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE
from domain.identity.models import VerifiedIdentity
from integrations.province.profile import Profile


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_leaves(value, path))
        else:
            out[path] = value
    return out


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` laid over `base` (nested objects merged, other values replaced)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Sources:
    """What a batch of bodies is built from, read with one query per table."""

    apps: dict[str, Application] = field(default_factory=dict)
    identities: dict[str, tuple[str, str]] = field(default_factory=dict)  # account: (name, id number)
    phones: dict[str, str] = field(default_factory=dict)  # account: phone, encrypted
    materials: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # application: material id -> its name in the pinned catalog version (or why it is unknown)
    material_names: dict[str, dict[str, str] | Exception] = field(default_factory=dict)


def _sources(session: Session, rows: list[ForwardingOutbox]) -> Sources:
    app_ids = sorted({r.application_id for r in rows})
    src = Sources(
        apps={a.id: a for a in session.scalars(select(Application).where(Application.id.in_(app_ids)))}
    )
    accounts = sorted({a.account_id for a in src.apps.values()})
    if not any(r.kind != "withdraw" for r in rows):
        return src
    for account_id, name_enc, id_enc in session.execute(
        select(VerifiedIdentity.account_id, VerifiedIdentity.name_enc, VerifiedIdentity.id_number_enc).where(
            VerifiedIdentity.account_id.in_(accounts)
        )
    ):
        src.identities[account_id] = (name_enc, id_enc)
    for account_id, value_enc in session.execute(
        select(ChannelIdentity.account_id, ChannelIdentity.value_enc).where(
            ChannelIdentity.account_id.in_(accounts), ChannelIdentity.kind == PHONE
        )
    ):
        if value_enc:
            src.phones.setdefault(account_id, value_enc)
    for app_id, material_id, kind, ref, sha in session.execute(
        select(
            ApplicationMaterial.application_id,
            ApplicationMaterial.material_id,
            ApplicationMaterial.kind,
            ApplicationMaterial.ref,
            ApplicationFile.sha256,
        )
        .outerjoin(ApplicationFile, ApplicationFile.id == ApplicationMaterial.file_id)
        .where(ApplicationMaterial.application_id.in_(app_ids))
        .order_by(
            ApplicationMaterial.application_id,
            ApplicationMaterial.material_id,
            ApplicationMaterial.attached_at,
        )
    ):
        item = {"material_id": material_id, "kind": kind, "ref": ref, "sha256": sha}
        src.materials.setdefault(app_id, []).append({k: v for k, v in item.items() if v is not None})
    for app_id in src.materials:
        app = src.apps.get(app_id)
        if app is None or not app.items:
            continue
        try:
            spec = forms.spec_for(
                session, [(i["code"], int(i["version"])) for i in app.items], name=app.service_name
            )
        except Exception as exc:  # this row cannot be built; the batch's others still can
            src.material_names[app_id] = exc
            continue
        src.material_names[app_id] = {mid: str(m.get("name") or mid) for mid, m in spec.materials.items()}
    return src


def _materials(src: Sources, app_id: str) -> list[dict[str, Any]]:
    """The case's materials as the province lists them: id, how satisfied, digest, and the name
    the catalog gives it (材料名称), which the province's officers read."""
    names = src.material_names.get(app_id, {})
    if isinstance(names, Exception):
        raise names
    return [
        m | {"name": names[m["material_id"]]} if m["material_id"] in names else m
        for m in src.materials.get(app_id, [])
    ]


def _applicant(encryptor: Encryptor, src: Sources, account_id: str) -> dict[str, str]:
    applicant: dict[str, str] = {}
    if account_id in src.identities:
        name_enc, id_enc = src.identities[account_id]
        applicant["name"] = encryptor.decrypt(name_enc, purpose=NAME_PURPOSE)
        applicant["id_number"] = encryptor.decrypt(id_enc, purpose=ID_PURPOSE)
    if account_id in src.phones:
        applicant["phone"] = encryptor.decrypt(src.phones[account_id], purpose=PHONE_PURPOSE)
    return applicant


def build(session: Session, encryptor: Encryptor, profile: Profile, row: ForwardingOutbox) -> dict[str, Any]:
    """The plain body for `row` (the client encrypts the profile's sensitive fields)."""
    outcome = build_many(session, encryptor, profile, [row])[row.id]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def build_many(
    session: Session, encryptor: Encryptor, profile: Profile, rows: list[ForwardingOutbox]
) -> dict[str, dict[str, Any] | Exception]:
    """The plain body of each row by its id, or why it cannot be built; a handful of queries
    for the whole batch. Adds the audit of each personal-data read (the caller commits)."""
    src = _sources(session, rows)
    out: dict[str, dict[str, Any] | Exception] = {}
    for row in rows:
        try:
            out[row.id] = _body(encryptor, profile, row, src)
        except Exception as exc:  # one bad row must not stop the others
            out[row.id] = exc
            continue
        if row.kind != "withdraw":
            audit.record(
                session, actor_type="system", actor_id="forwarder",
                action="application.forwarded_personal_data", target_type="application",
                target_id=row.application_id,
                details={
                    "case_number": row.case_number, "version": row.submission_version,
                    "profile": profile.name,
                },
            )  # fmt: skip
    return out


def applicant_name(session: Session, encryptor: Encryptor, application_id: str) -> str | None:
    """The verified name of an application's applicant, read to mask it where a refusal of a
    withdrawal is kept (a withdrawal's body does not carry it, but the province's text may quote
    it). Audited as a read of personal data; the caller commits."""
    name_enc = session.scalar(
        select(VerifiedIdentity.name_enc)
        .join(Application, Application.account_id == VerifiedIdentity.account_id)
        .where(Application.id == application_id)
    )
    if name_enc is None:
        return None
    audit.record(
        session, actor_type="system", actor_id="forwarder", action="pii.read", target_type="application",
        target_id=application_id, details={"purpose": "mask-refusal"},
    )  # fmt: skip
    return encryptor.decrypt(name_enc, purpose=NAME_PURPOSE)


def _body(encryptor: Encryptor, profile: Profile, row: ForwardingOutbox, src: Sources) -> dict[str, Any]:
    app = src.apps.get(row.application_id)
    if app is None:  # the application row is never deleted once submitted
        raise LookupError(f"application {row.application_id} is gone")
    body: dict[str, Any] = {
        "sblsh": row.case_number,
        "version": row.submission_version,
        "action": row.kind,
        "item_code": app.service_code,
        "item_version": int((app.items or [{}])[0].get("version") or 1),
        "channel": profile.channel_code(app.submitted_channel or app.created_channel),
        "submitted_at": (app.submitted_at or row.created_at).isoformat(),
    }
    if row.kind == "withdraw":
        if row.note:
            body["reason"] = row.note
    else:
        form = _leaves(decrypt_data(encryptor, app.data_enc))
        body["form"] = {profile.fields.get(path, path): value for path, value in form.items()}
        body["applicant"] = _applicant(encryptor, src, app.account_id)
        body["materials"] = _materials(src, app.id)
    if row.overrides:
        body = deep_merge(body, row.overrides)
    return body
