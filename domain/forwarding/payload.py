"""The upstream body of one outbox row: the case as the province's profile wants it.

Built at send time from the application (not stored in the outbox), so an operator's
correction or a replay always sends the current data. Reading the applicant's full name, ID
number and phone for it is audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.crypto import Encryptor
from domain.accounts.models import PHONE, ChannelIdentity
from domain.accounts.service import PHONE_PURPOSE
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


def _applicant(session: Session, encryptor: Encryptor, app: Application) -> dict[str, str]:
    applicant: dict[str, str] = {}
    identity = session.scalar(select(VerifiedIdentity).where(VerifiedIdentity.account_id == app.account_id))
    if identity is not None:
        applicant["name"] = encryptor.decrypt(identity.name_enc, purpose=NAME_PURPOSE)
        applicant["id_number"] = encryptor.decrypt(identity.id_number_enc, purpose=ID_PURPOSE)
    phone_enc = session.scalar(
        select(ChannelIdentity.value_enc).where(
            ChannelIdentity.account_id == app.account_id, ChannelIdentity.kind == PHONE
        )
    )
    if phone_enc:
        applicant["phone"] = encryptor.decrypt(phone_enc, purpose=PHONE_PURPOSE)
    return applicant


def _materials(session: Session, app_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            ApplicationMaterial.material_id,
            ApplicationMaterial.kind,
            ApplicationMaterial.ref,
            ApplicationFile.sha256,
        )
        .outerjoin(ApplicationFile, ApplicationFile.id == ApplicationMaterial.file_id)
        .where(ApplicationMaterial.application_id == app_id)
        .order_by(ApplicationMaterial.material_id, ApplicationMaterial.attached_at)
    ).all()
    return [
        {
            k: v
            for k, v in {"material_id": m, "kind": kind, "ref": ref, "sha256": sha}.items()
            if v is not None
        }
        for m, kind, ref, sha in rows
    ]


def build(session: Session, encryptor: Encryptor, profile: Profile, row: ForwardingOutbox) -> dict[str, Any]:
    """The plain body for `row` (the client encrypts the profile's sensitive fields)."""
    app = session.get(Application, row.application_id)
    if app is None:  # the application row is never deleted once submitted
        raise LookupError(f"application {row.application_id} is gone")
    body: dict[str, Any] = {
        "sblsh": row.case_number,
        "version": row.submission_version,
        "action": row.kind,
        "item_code": app.service_code,
        "item_version": int((app.items or [{}])[0].get("version") or 1),
        "channel": profile.channel_code(app.created_channel),
        "submitted_at": (app.submitted_at or row.created_at).isoformat(),
    }
    if row.kind == "withdraw":
        if row.note:
            body["reason"] = row.note
    else:
        form = _leaves(decrypt_data(encryptor, app.data_enc))
        body["form"] = {profile.fields.get(path, path): value for path, value in form.items()}
        body["applicant"] = _applicant(session, encryptor, app)
        body["materials"] = _materials(session, app.id)
        audit.record(
            session, actor_type="system", actor_id="forwarder", action="application.forwarded_personal_data",
            target_type="application", target_id=app.id,
            details={
                "case_number": row.case_number, "version": row.submission_version, "profile": profile.name,
            },
        )  # fmt: skip
    if row.overrides:
        body = deep_merge(body, row.overrides)
    return body
