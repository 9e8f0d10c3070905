"""One error format, one shape of `fields` ({path: [message, ...]}), and an OpenAPI document that
describes the body the server really sends (components.schemas.Error)."""

from __future__ import annotations

import uuid
from typing import Any

import jsonschema
import pytest

from tests.api.openapi_schema import resolved
from tests.conftest import make_citizen
from tests.domain.operators.factories import admin_headers, make_operator

EN = {"Accept-Language": "en"}


@pytest.fixture
def citizen(app: Any) -> dict:
    return make_citizen(app)


@pytest.fixture
def operator(app: Any, client: Any) -> dict:
    made = make_operator(app, username="shape-op", roles=("case_operator", "catalog_editor"))
    return admin_headers(client, made)


def _documented_error_schema(client: Any) -> dict:
    """components.schemas.Error with its $refs resolved, as a JSON Schema."""
    return resolved(client.get("/openapi.json").get_json(), "Error")


def _assert_list_shape(resp: Any, status: int = 422) -> dict[str, list[str]]:
    assert resp.status_code == status, resp.get_json()
    fields = resp.get_json()["error"]["fields"]
    assert isinstance(fields, dict) and fields
    for path, messages in fields.items():
        assert isinstance(path, str)
        assert isinstance(messages, list) and messages, (path, messages)
        assert all(isinstance(m, str) and m for m in messages), (path, messages)
    return fields


LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")  # domain/evaluations/models.py
FILE = {"kind": "complaint", "category": "efficiency"}
CASES = {  # area: (method, url, body, who, path, zh, en)
    "complaint_reply": ("post", "/admin/v1/complaints/{complaint}/reply", {"text": "  "}, "operator",
                        "text", "请填写答复内容", "Required"),
    "complaint_file": ("post", "/v1/complaints", FILE | {"text": "字" * 2001}, "citizen",
                       "text", "请填写 1 到 2000 个字", "1 to 2000 characters"),
    "evaluation": ("post", "/v1/applications/{nowhere}/evaluation", {"level": "一般"}, "citizen",
                   "level", f"应为：{'、'.join(LEVELS)}", f"One of {', '.join(LEVELS)}"),
    "preferences": ("put", "/v1/me/notification-preferences", {"events": {"e0": {"sms": False}}}, "citizen",
                    "events.e0", "没有这种通知类型", "Unknown event type"),
    "templates": ("put", "/admin/v1/notification-templates/case_received/inbox/zh",
                  {"content": {"title": "x", "body": ""}}, "operator",
                  "content.body", "不能为空", "Must be non-empty text"),
    # marshmallow's nested errors ({"attachments": {0: [...]}}) become dotted paths as well
    "nested_schema_error": ("post", "/v1/complaints", FILE | {"text": "字", "attachments": [5]}, "citizen",
                            "attachments.0", "应为字符串", "Not a valid string."),
}  # fmt: skip


@pytest.mark.parametrize("area", list(CASES))
def test_every_area_gives_fields_as_lists_of_messages_in_the_request_language(
    client: Any, citizen: dict, operator: dict, area: str
) -> None:
    method, url, body, who, path, zh, en = CASES[area]
    headers = citizen["headers"] if who == "citizen" else operator
    if "{complaint}" in url:
        made = client.post("/v1/complaints", json=FILE | {"text": "窗口排队太久"}, headers=citizen["headers"])
        assert made.status_code == 201, made.get_json()
        url = url.format(complaint=made.get_json()["id"])
    url = url.format(nowhere=uuid.uuid4()) if "{nowhere}" in url else url
    documented = _documented_error_schema(client)
    for lang, expected in (({}, zh), (EN, en)):
        resp = getattr(client, method)(url, json=body, headers=headers | lang)
        fields = _assert_list_shape(resp)
        assert fields == {path: [expected]}, (area, lang, fields)
        jsonschema.validate(resp.get_json(), documented)


def test_no_caller_can_give_a_bare_string_or_nested_errors() -> None:
    from core.errors import AppError, Text, field_errors

    text = Text("Required", "必填")
    shaped = field_errors({"a": text, "b": ["x", "y"], "c": {0: ["z"], "_schema": ["w"]}, "d": None})
    assert shaped == {"a": ["Required"], "b": ["x", "y"], "c.0": ["z"], "c": ["w"]}
    assert shaped["a"][0].zh == "必填"  # a Text keeps its Chinese for the error handler
    assert AppError(fields={"text": text}).fields == {"text": ["Required"]}
    assert AppError(fields={}).fields is None and field_errors(None) is None


def test_the_openapi_document_describes_the_real_error_body(client: Any) -> None:
    doc = client.get("/openapi.json").get_json()
    schemas, responses = doc["components"]["schemas"], doc["components"]["responses"]
    error = schemas["Error"]
    assert error["type"] == "object" and error.get("required") == ["error"]
    assert set(error["properties"]) == {"error"} and error["additionalProperties"] is False
    body = _documented_error_schema(client)["properties"]["error"]
    assert body["additionalProperties"] is False
    assert set(body["required"]) == {"code", "message", "request_id"}
    props = body["properties"]
    assert set(props) == {"code", "message", "fields", "details", "request_id"}
    assert props["code"]["type"] == props["message"]["type"] == props["request_id"]["type"] == "string"
    assert props["fields"]["type"] == "object"
    assert props["fields"]["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert props["details"]["type"] == "object"
    # Every operation's default response, and the 422 of a body failing its schema, are this body.
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert responses["DEFAULT_ERROR"]["content"] == ref
    assert responses["UNPROCESSABLE_ENTITY"]["content"] == ref
    defaults = [
        op["responses"]["default"]
        for ops in doc["paths"].values()
        for op in ops.values()
        if isinstance(op, dict) and "default" in op.get("responses", {})
    ]
    assert len(defaults) > 50
    assert all(d == {"$ref": "#/components/responses/DEFAULT_ERROR"} for d in defaults)
    # Real bodies validate against the documented schema.
    documented = _documented_error_schema(client)
    invalid = client.post("/v1/auth/refresh", json={"refresh_token": 12345, "surprise": True})
    assert invalid.status_code == 422 and invalid.get_json()["error"]["fields"]
    jsonschema.validate(invalid.get_json(), documented)
    missing = client.get("/v1/no-such-endpoint", headers=EN)
    assert missing.status_code == 404
    jsonschema.validate(missing.get_json(), documented)
    wrong = {"error": {"code": 422, "status": "Unprocessable Entity", "message": "x", "errors": {}}}
    with pytest.raises(jsonschema.ValidationError):  # flask-smorest's default shape is not it
        jsonschema.validate(wrong, documented)
    with pytest.raises(jsonschema.ValidationError):  # nor is a bare string per field
        jsonschema.validate({"error": {"code": "c", "message": "m", "request_id": "r",
                                       "fields": {"text": "请填写答复内容"}}}, documented)  # fmt: skip
