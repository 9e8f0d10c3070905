"""Fixtures for application flows: the seeded catalog, verified citizens, files, operators."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from PIL import Image

from cli.catalog import SEED_DIR, SEED_FILES, merged_documents
from domain.catalog.importing import import_catalog
from domain.identity import hall
from domain.operators.audit_log import CLI_ACTOR
from integrations.realname.people import DEMO_PEOPLE
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator

URL = "/v1/applications"
SS_CARD = "11440100007504956C3000110001000"  # 社会保障卡申领: L2, 3 materials
PASSPORT = "11440100007502318X3000105101000"  # 普通护照签发: L2
DIVORCE = "11440100007502908Y3000106002000"  # 内地居民离婚登记: L3 + face within 30 min
NEWBORN = "YJS-NEWBORN"  # 新生儿出生一件事 (bundle)


@pytest.fixture
def seeded(app, db_session) -> None:
    document = merged_documents([SEED_DIR / f for f in SEED_FILES])
    document["publish"] = True
    report = import_catalog(db_session, CLI_ACTOR, document, dry_run=False)
    assert report.ok, report.problems


def verified(app: Any, person: int = 0, **kw: Any) -> dict:
    """A citizen whose identity a hall officer checked just now (L3, fresh live check)."""
    from core.db import db

    who = make_citizen(app, **kw)
    svc = app.extensions["yiwang"]
    name, id_number = DEMO_PEOPLE[person][0], DEMO_PEOPLE[person][1]
    hall.record_in_person(
        db.session(), deps=svc.identity, operator_id="op-test", account_id=who["account_id"],
        name=name, id_number=id_number, hall="天河区政务服务中心", request_id=None,
    )  # fmt: skip
    return who | {"name": name, "id_number": id_number}


@pytest.fixture
def zhang(app, seeded) -> dict:
    return verified(app, 0)


@pytest.fixture
def li(app, seeded) -> dict:
    return verified(app, 1)


@pytest.fixture
def officer(app, client) -> dict:
    return admin_headers(client, make_operator(app, username="case-op", roles=("case_operator",)))


def jpeg(size: tuple[int, int] = (64, 48), color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def key() -> dict:
    return {"Idempotency-Key": uuid.uuid4().hex}


def create(client: Any, who: dict, **body: Any) -> Any:
    return client.post(URL, json=body, headers=who["headers"])


def patch(client: Any, who: dict, app: dict, data: dict, *, revision: int | None = None) -> Any:
    rev = app["revision"] if revision is None else revision
    return client.patch(
        f"{URL}/{app['id']}", json={"data": data}, headers=who["headers"] | {"If-Match": f'"r{rev}"'}
    )


def upload(client: Any, who: dict, app_id: str, material: str, data: bytes, name: str = "photo.jpg") -> Any:
    return client.post(
        f"{URL}/{app_id}/materials/{material}/files",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        headers=who["headers"],
    )


def submit(client: Any, who: dict, app: dict, *, consent: bool = True, headers: dict | None = None) -> Any:
    body: dict[str, Any] = {}
    if consent:
        body["consent"] = {"accepted": True, "text_version": app["consent"]["text_version"]}
    return client.post(f"{URL}/{app['id']}/submit", json=body, headers=who["headers"] | (headers or key()))


def stage(client: Any, officer: dict, app_id: str, to: str, **body: Any) -> Any:
    return client.post(f"/admin/v1/applications/{app_id}/stages", json={"to": to, **body}, headers=officer)


def get(client: Any, who: dict, app_id: str) -> Any:
    return client.get(f"{URL}/{app_id}", headers=who["headers"])


def error_code(resp: Any) -> str:
    return resp.get_json()["error"]["code"]


def relogin(app: Any, who: dict, channel: str = "app") -> dict:
    """A new session for the same account (after the test clock outlived the old one)."""
    from core.db import db
    from domain.accounts.service import get_account
    from domain.auth import sessions

    svc = app.extensions["yiwang"]
    pair = sessions.start_session(
        db.session(), tokens=svc.tokens, policy=svc.citizen_policy,
        account=get_account(db.session(), who["account_id"]), channel=channel, device_label="测试手机",
    )  # fmt: skip
    return who | {"headers": {"Authorization": f"Bearer {pair.access_token}"}}


# A value for each pattern the seeded forms use (what a citizen would type).
PATTERN_VALUES = {
    r"^1[3-9]\d{9}$": "13912345678",
    r"^\d{12,19}$": "6222020200112233445",
    r"^\d{17}[\dX]$": "110105194912310029",
    r"^\d{4}-(0[1-9]|1[0-2])$": "2026-11",
    r"^[A-Z]\d{9}$": "E123456789",
    r"^\d{6}$": "510000",
    r"^\d{9,20}$": "123456789012",
    r"^C[0-9A-Z]\d{7}$": "CA1234567",
    r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$": "91440101MA5CXXXX1X",
    r"^[0-9A-Z]{9}$": "MA5CXXXX1",
    r"^[0-9A-Z]{6,20}$": "GZ2026001",
}


def fill_value(schema: dict, root: dict) -> Any:
    """A valid value for `schema`, filling only required properties (what a phone must send)."""
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"][2:].split("/"):
            node = node[part]
        return fill_value(node, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: fill_value(props[name], root) for name in schema.get("required", []) if name in props}
    if kind == "integer" or kind == "number":
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "array":
        return [fill_value(schema.get("items") or {"type": "string"}, root)] * max(
            1, schema.get("minItems", 1)
        )
    if schema.get("format") == "date":
        return "2026-12-20"
    if "pattern" in schema:
        return PATTERN_VALUES[schema["pattern"]]
    text = "广州市天河区体育西路一号"
    return (text * 5)[: max(schema.get("minLength", 1), min(len(text), schema.get("maxLength", len(text))))]


def missing_data(schema: dict, data: dict) -> dict:
    """The part of a complete form the draft does not have yet (prefilled values kept)."""
    full = fill_value(schema, schema)

    def diff(want: Any, have: Any) -> Any:
        if isinstance(want, dict):
            have = have if isinstance(have, dict) else {}
            out = {k: diff(v, have.get(k)) for k, v in want.items()}
            return {k: v for k, v in out.items() if v is not None and v != {}}
        return None if have is not None else want

    return diff(full, data)
