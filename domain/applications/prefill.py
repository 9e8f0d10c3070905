"""Prefill ("一表申请"): fields the government already knows are filled when a draft is created.

A source answers for the source ids a form binds fields to (`domain/catalog/sources.py`):
`identity.*` from the verified identity, `account.phone` from the account, and `shared.*` from
the data-sharing exchange, which plugs in as another `PrefillSource` (issue: shared government
data). Fields bound to nothing are filled from the citizen's latest earlier application with
the same field, as user-provided values. Every filled field carries provenance: source, record
id, retrieved at, verified or user-provided, read-only or editable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.crypto import Encryptor
from core.masking import mask_name, mask_phone
from domain.accounts import service as accounts
from domain.applications import states
from domain.applications.models import Application
from domain.identity.deps import ID_PURPOSE, NAME_PURPOSE
from domain.identity.documents import mask_id_number
from domain.identity.models import VerifiedIdentity

if TYPE_CHECKING:
    from domain.applications.forms import FormSpec

DATA_PURPOSE = "application-data"
SOURCE_APPLICATION = "application"  # an earlier application of the same account
SOURCE_USER = "user"


@dataclass(frozen=True)
class Filled:
    value: Any
    source: str
    record_id: str | None
    retrieved_at: datetime
    verified: bool
    read_only: bool
    masked: str | None = None  # what responses show instead of the value (None: the value)

    def provenance(self) -> dict[str, Any]:
        out = {
            "source": self.source,
            "record_id": self.record_id,
            "retrieved_at": self.retrieved_at.isoformat(),
            "verified": self.verified,
            "read_only": self.read_only,
        }
        if self.masked is not None:
            out["masked"] = self.masked
        return out


@dataclass(frozen=True)
class PrefillContext:
    session: Session
    encryptor: Encryptor
    account_id: str
    application_id: str
    item_codes: tuple[str, ...]
    now: datetime
    request_id: str | None = None


class PrefillSource(Protocol):
    """Answers for the source ids that start with one of `prefixes`."""

    prefixes: tuple[str, ...]

    def fetch(self, ctx: PrefillContext, sources: set[str]) -> dict[str, Filled]: ...


def _birth_date(id_number: str) -> str | None:
    try:
        return date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14])).isoformat()
    except ValueError:
        return None


class IdentitySource:
    """Name and ID number from the verified identity (L2/L3); gender and birth date derived (GB 11643)."""

    prefixes = ("identity.",)

    def fetch(self, ctx: PrefillContext, sources: set[str]) -> dict[str, Filled]:
        row = ctx.session.scalar(
            select(VerifiedIdentity).where(VerifiedIdentity.account_id == ctx.account_id)
        )
        if row is None:
            return {}
        name = ctx.encryptor.decrypt(row.name_enc, purpose=NAME_PURPOSE)
        id_number = ctx.encryptor.decrypt(row.id_number_enc, purpose=ID_PURPOSE)
        audit.record(
            ctx.session, actor_type="system", actor_id=ctx.account_id, action="pii.read",
            target_type="application", target_id=ctx.application_id, request_id=ctx.request_id,
            details={"purpose": "prefill", "fields": sorted(sources)},
        )  # fmt: skip
        values = {
            "identity.name": (name, mask_name(name)),
            "identity.id_number": (id_number, mask_id_number(id_number)),
            "identity.gender": ("男" if int(id_number[16]) % 2 else "女", None),
            "identity.birth_date": (_birth_date(id_number), None),
        }
        out = {}
        for source in sources:
            if source in values and values[source][0] is not None:
                value, masked = values[source]
                out[source] = Filled(value, source, row.id, row.verified_at, True, True, masked)
        return out


class AccountSource:
    """The account's phone number, verified by SMS or WeChat; the citizen may give another."""

    prefixes = ("account.",)

    def fetch(self, ctx: PrefillContext, sources: set[str]) -> dict[str, Filled]:
        if "account.phone" not in sources:
            return {}
        phone = accounts.full_phone(
            ctx.session, encryptor=ctx.encryptor, account_id=ctx.account_id,
            actor_id=ctx.account_id, request_id=ctx.request_id,
        )  # fmt: skip
        if phone is None:
            return {}
        return {
            "account.phone": Filled(phone, "account.phone", None, ctx.now, True, False, mask_phone(phone))
        }


def get_path(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def unset_path(data: dict[str, Any], path: str) -> None:
    """Remove the value at `path`, if any (the objects above it stay)."""
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(parts[-1], None)


def decrypt_data(encryptor: Encryptor, token: str) -> dict[str, Any]:
    return json.loads(encryptor.decrypt_bytes(token, purpose=DATA_PURPOSE))


def encrypt_data(encryptor: Encryptor, data: dict[str, Any]) -> str:
    return encryptor.encrypt(
        json.dumps(data, ensure_ascii=False, separators=(",", ":")), purpose=DATA_PURPOSE
    )


def unverified_identity_fields(spec: FormSpec, provenance: dict[str, Any]) -> dict[str, str]:
    """Fields bound to the verified identity that do not hold it ({path: source}): a draft made
    before the citizen verified (or by an account verified since) has them blank or typed."""
    return {
        path: source
        for path, source in spec.prefill.items()
        if source.startswith(IdentitySource.prefixes) and (provenance.get(path) or {}).get("source") != source
    }


def fill_identity(
    ctx: PrefillContext, spec: FormSpec, data: dict[str, Any], provenance: dict[str, Any]
) -> dict[str, Any] | None:
    """Fill the identity-bound fields that do not hold the verified identity from it, as
    verified and read-only, over whatever was typed there; the new provenance, or None when the
    account has no verified identity or every such field holds it already. `data` is changed
    in place."""
    stale = unverified_identity_fields(spec, provenance)
    if not stale:
        return None
    found = IdentitySource().fetch(ctx, set(stale.values()))
    if not found:
        return None
    out = dict(provenance)
    for path, source in stale.items():
        if source in found:
            set_path(data, path, found[source].value)
            out[path] = found[source].provenance()
    return out


class Prefiller:
    """Runs every registered source for a new draft and returns (data, provenance)."""

    def __init__(self, sources: Iterable[PrefillSource] = ()) -> None:
        self.sources: list[PrefillSource] = [IdentitySource(), AccountSource(), *sources]

    def register(self, source: PrefillSource) -> None:
        self.sources.append(source)

    def fill(
        self, ctx: PrefillContext, bindings: dict[str, str], spec: FormSpec
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {}
        provenance: dict[str, Any] = {}
        wanted = set(bindings.values())
        found: dict[str, Filled] = {}
        for source in self.sources:
            mine = {s for s in wanted if s.startswith(source.prefixes)}
            if mine:
                found.update(source.fetch(ctx, mine))
        for path, source_id in bindings.items():
            if source_id in found:
                set_path(data, path, found[source_id].value)
                provenance[path] = found[source_id].provenance()
        self._from_earlier(ctx, spec, bindings, data, provenance)
        return data, provenance

    def _from_earlier(
        self,
        ctx: PrefillContext,
        spec: FormSpec,
        bindings: dict[str, str],
        data: dict[str, Any],
        provenance: dict[str, Any],
    ) -> None:
        """Unbound fields of the citizen's latest submitted application, as user-provided values.
        A value that application showed masked (filled from the identity, the phone or shared
        data the citizen never saw in full) keeps its mask here: copying it must not reveal it."""
        row = ctx.session.execute(
            select(Application.id, Application.data_enc, Application.provenance, Application.submitted_at)
            .where(
                Application.account_id == ctx.account_id,
                Application.status.notin_((states.DRAFT, states.WITHDRAWN)),
            )
            .order_by(Application.submitted_at.desc())
            .limit(1)
        ).first()
        if row is None:
            return
        earlier = decrypt_data(ctx.encryptor, row.data_enc)
        for path in spec.leaves:
            if path in bindings or path in provenance:
                continue
            value = get_path(earlier, path)
            if value is None or not spec.accepts(path, value):
                continue
            set_path(data, path, value)
            masked = ((row.provenance or {}).get(path) or {}).get("masked")
            provenance[path] = Filled(
                value, SOURCE_APPLICATION, row.id, row.submitted_at, False, False, masked
            ).provenance()
