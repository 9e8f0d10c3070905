"""Every bad input gets a 4xx in the one error format, in Chinese or English; never a 500."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from flask import request


def assert_error(resp, status, code):
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert set(body) == {"error"}
    err = body["error"]
    assert err["code"] == code
    assert isinstance(err["message"], str) and err["message"]
    assert err["request_id"] == resp.headers["X-Request-ID"]
    return err


def test_malformed_json(client):
    r = client.post("/v1/auth/refresh", data="{not json", content_type="application/json")
    err = assert_error(r, 400, "request.malformed_json")
    assert err["message"] == "请求体须为 UTF-8 编码的合法 JSON"


def _nested(depth: int) -> str:
    return "[" * (depth - 1) + "{}" + "]" * (depth - 1)


@pytest.mark.parametrize("body", [
    "[" * 100_000,  # the parser's own recursion gives out (was a 500)
    '{"refresh_token": ' + _nested(65) + "}",  # parses, but deeper than anything legitimate
    '{"refresh_token": NaN}',  # Python's json takes NaN and Infinity; PostgreSQL's JSON does not
    '{"refresh_token": 1e400}',
])  # fmt: skip
def test_json_no_database_could_take_is_malformed_not_a_crash(client, body):
    r = client.post("/v1/auth/refresh", data=body, content_type="application/json")
    assert_error(r, 400, "request.malformed_json")


def test_nesting_within_the_bound_is_read_and_judged_as_usual(client, app):
    r = client.post("/v1/auth/refresh", data='{"refresh_token": ' + _nested(63) + "}",
                    content_type="application/json")  # fmt: skip
    assert assert_error(r, 422, "request.validation_failed")["fields"] == {"refresh_token": ["应为字符串"]}
    # Flask's own reader (request.get_json) is bounded the same way.
    with app.test_request_context("/", method="POST", data=_nested(65), content_type="application/json"):
        assert request.get_json(silent=True) is None
    with app.test_request_context("/", method="POST", data=_nested(63), content_type="application/json"):
        assert request.get_json(silent=True) is not None


def test_wrong_types_and_unknown_fields_list_field_errors(client):
    r = client.post("/v1/auth/refresh", json={"refresh_token": 12345, "surprise": True})
    err = assert_error(r, 422, "request.validation_failed")
    assert err["fields"] == {"refresh_token": ["应为字符串"], "surprise": ["不允许的字段"]}
    r = client.post("/v1/auth/refresh", json={}, headers={"Accept-Language": "en-US,en;q=0.9"})
    err = assert_error(r, 422, "request.validation_failed")
    assert err["message"] == "Some fields are invalid"
    assert err["fields"] == {"refresh_token": ["Missing data for required field."]}


def test_json_array_instead_of_object(client):
    r = client.post("/v1/auth/refresh", json=["a"])
    assert_error(r, 422, "request.validation_failed")


def test_body_over_one_mebibyte(client):
    big = json.dumps({"refresh_token": "x" * (1024 * 1024 + 10)})
    r = client.post("/v1/auth/refresh", data=big, content_type="application/json")
    err = assert_error(r, 413, "request.too_large")
    assert "1 MiB" in err["message"]


def test_chunked_body_over_the_limit(client):
    r = client.post(
        "/v1/auth/refresh", input_stream=io.BytesIO(b"x" * (1024 * 1024 + 100)),
        content_type="application/json", headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets for chunked bodies
    )  # fmt: skip
    assert_error(r, 413, "request.too_large")


def test_non_json_content_type(client):
    r = client.post(
        "/v1/auth/refresh", data="refresh_token=abc", content_type="application/x-www-form-urlencoded"
    )
    assert_error(r, 415, "request.unsupported_media_type")


def test_unknown_route_and_method(client):
    assert_error(client.get("/v1/nothing-here"), 404, "request.not_found")
    r = client.put("/v1/health")
    assert_error(r, 405, "request.method_not_allowed")
    assert "GET" in r.headers["Allow"]


def test_english_messages_on_accept_language(client):
    r = client.get("/v1/me", headers={"Accept-Language": "en"})
    err = assert_error(r, 401, "auth.required")
    assert err["message"] == "Authentication is required"
    r = client.get("/v1/me")
    assert assert_error(r, 401, "auth.required")["message"] == "请先登录"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("zh-Hans;q=1.0, en;q=0.5", "zh"),  # iOS set to Simplified Chinese, English second
        ("zh-Hans-CN;q=1, en-US;q=0.9", "zh"),
        ("zh-TW,en-US;q=0.8", "zh"),
        ("zh-HK,en;q=0.9", "zh"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,en;q=0.5", "en"),
        ("fr-FR", "zh"),
    ],
)
def test_the_first_of_chinese_and_english_the_phone_lists_is_the_answers_language(client, header, lang):
    message = assert_error(client.get("/v1/me", headers={"Accept-Language": header}), 401, "auth.required")
    assert message["message"] == {"zh": "请先登录", "en": "Authentication is required"}[lang]


def test_redis_away_is_a_503_the_phone_may_retry_not_a_500(client, monkeypatch):
    import redis

    def refused(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(redis.Redis, "execute_command", refused)
    monkeypatch.setattr("core.redis.Batch.execute", refused, raising=False)
    r = client.post("/v1/auth/sms/send", json={"phone": "13812345678"}, headers={"Idempotency-Key": "k-1"})
    assert_error(r, 503, "service_unavailable")
    assert int(r.headers["Retry-After"]) > 0


def test_a_wrong_method_or_path_is_said_whatever_the_body(client):
    """A form or text body on a wrong method or a mistyped path: the client learns that, not to
    send JSON (which it would, only to learn the real problem next)."""
    form = {"data": "a=b", "content_type": "application/x-www-form-urlencoded"}
    r = client.post("/v1/health", **form)
    assert_error(r, 405, "request.method_not_allowed")
    assert "GET" in r.headers["Allow"]
    assert_error(client.post("/v1/does-not-exist", **form), 404, "request.not_found")
    assert_error(
        client.put("/v1/health", data="x", content_type="text/plain"), 405, "request.method_not_allowed"
    )


def test_unexpected_exception_is_a_500_in_the_error_format(app, client, monkeypatch):
    from domain.accounts import service

    def boom(*a, **k):
        raise RuntimeError("database exploded 13812345678")

    from tests.conftest import make_citizen

    who = make_citizen(app)
    monkeypatch.setattr(service, "profile", boom)
    r = client.get("/v1/me", headers=who["headers"])
    err = assert_error(r, 500, "internal_error")
    assert "exploded" not in err["message"]


def test_rate_limit_error_has_retry_after(client, services):
    for _ in range(600):
        services.ratelimiter.hit("refresh-ip", "127.0.0.1", limit=600, window=60)
    r = client.post("/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 40})
    err = assert_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) >= 1
    assert err["details"]["retry_after"] == int(r.headers["Retry-After"])


def test_request_id_is_echoed_or_generated(client):
    r = client.get("/v1/health", headers={"X-Request-ID": "phone-req-12345678"})
    assert r.headers["X-Request-ID"] == "phone-req-12345678"
    r = client.get("/v1/health", headers={"X-Request-ID": "bad id <script>"})
    assert r.headers["X-Request-ID"] != "bad id <script>" and len(r.headers["X-Request-ID"]) == 32


def test_json_responses_are_compressed(client, app):
    r = client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert r.headers.get("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(r.data))["info"]["title"]


@pytest.mark.parametrize("key", ["", "x" * 129, "has space"])
def test_invalid_idempotency_key(client, key):
    r = client.post(
        "/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 40}, headers={"Idempotency-Key": key}
    )
    assert_error(r, 400, "idempotency.key_invalid")


@pytest.mark.parametrize("sent", ["é", "键1"])
def test_an_idempotency_key_outside_ascii_is_refused_whatever_its_bytes(client, sent):
    """The server reads header bytes as Latin-1: a UTF-8 "键" arrives with a C1 control and was
    refused as invisible, a UTF-8 "é" arrives as "Ã©" and was taken. Keys are ASCII (a
    structured-field string), and the refusal says so."""
    arrived = sent.encode().decode("latin-1")
    for lang, needle in (("zh-CN", "ASCII"), ("en", "ASCII")):
        r = client.post(
            "/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 40},
            headers={"Idempotency-Key": arrived, "Accept-Language": lang},
        )  # fmt: skip
        assert_error(r, 400, "idempotency.key_invalid")
        assert needle in r.get_json()["error"]["message"]


def test_idempotency_key_reused_with_another_body(app, services):
    from core.idempotency import IdempotencyKeyReused, StoredResponse

    store = services.idempotency
    assert store.begin("acct-1|POST|/v1/x", "key-123", "fp-a") is None
    store.complete("acct-1|POST|/v1/x", "key-123", "fp-a", StoredResponse(200, b"{}", "application/json"))
    with pytest.raises(IdempotencyKeyReused):
        store.begin("acct-1|POST|/v1/x", "key-123", "fp-b")


def test_public_retry_from_another_network_still_replays(client, citizen):
    key = {"Idempotency-Key": "refresh-after-wifi-to-4g"}
    body = {"refresh_token": citizen["refresh_token"]}
    first = client.post("/v1/auth/refresh", json=body, headers=key, environ_base={"REMOTE_ADDR": "10.1.1.1"})
    again = client.post("/v1/auth/refresh", json=body, headers=key, environ_base={"REMOTE_ADDR": "10.2.2.2"})
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    # Another body under the same key is a different request, never someone else's replay.
    other = client.post("/v1/auth/refresh", json={"refresh_token": "rt_" + "z" * 40}, headers=key)
    assert other.status_code == 401 and "Idempotent-Replayed" not in other.headers


def test_token_responses_are_replayed_for_minutes_not_a_day(client, citizen, services):
    from core.redis import get_redis

    key = {"Idempotency-Key": "refresh-ttl-check"}
    client.post("/v1/auth/refresh", json={"refresh_token": citizen["refresh_token"]}, headers=key)
    ttls = [get_redis().ttl(k) for k in get_redis().scan_iter("idem:*")]
    assert ttls and all(0 < t <= 300 for t in ttls)


@pytest.mark.parametrize("bad", ["abc\x00def", "tab\x07bell", "del\x7f"])
def test_control_characters_are_rejected_not_stored(client, bad):
    r = client.post("/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 20 + bad})
    err = assert_error(r, 422, "request.validation_failed")
    assert "refresh_token" in err["fields"]


def test_overlong_request_id_is_replaced(client):
    long_id = "a" * 65
    r = client.get("/v1/health", headers={"X-Request-ID": long_id})
    assert r.headers["X-Request-ID"] != long_id


def test_ready_reports_503_when_redis_is_down(client, app, monkeypatch):
    from core import redis as core_redis

    class Down:
        def ping(self):
            raise ConnectionError("down")

    monkeypatch.setattr(core_redis.redis_holder, "client", Down())
    r = client.get("/v1/ready")
    err = assert_error(r, 503, "service.not_ready")
    assert err["details"]["checks"]["redis"] == "unavailable"


def test_a_view_that_takes_no_body_still_refuses_one_that_is_not_json(client):
    from tests.conftest import make_citizen
    from tests.notifications.conftest import notify

    person = make_citizen(client.application, phone="13900139011")
    notify(client.application, person, "case_refused", reason="材料不齐")
    for body in (b"[", b'{"a": 1', b"\xff"):
        refused = client.post(
            "/v1/notifications/read-all", data=body, content_type="application/json",
            headers=person["headers"],
        )  # fmt: skip
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["error"]["code"] == "request.malformed_json"
    listed = client.get("/v1/notifications", headers=person["headers"]).get_json()
    assert listed["unread_count"] == 1  # nothing was marked read
    # An empty body streamed chunked is no body at all.
    for empty in (b"", b"  "):
        streamed = client.post(
            "/v1/notifications/read-all", input_stream=io.BytesIO(empty), content_type="application/json",
            headers=person["headers"] | {"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )  # fmt: skip
        assert streamed.status_code == 200, streamed.get_json()
    assert streamed.get_json()["unread_count"] == 0


def test_a_caller_without_a_valid_token_hears_401_before_a_malformed_body_is_judged(client):
    """As from a view that reads its body: a phone whose token expired refreshes it (401) rather
    than showing a format error for a request it will send again."""
    for path in ("/v1/notifications/read-all", "/v1/applications"):
        for headers in ({}, {"Authorization": "Bearer expired.or.forged"}):
            r = client.post(path, data=b"[", content_type="application/json", headers=headers)
            assert r.status_code == 401, (path, r.get_json())


def test_every_endpoint_judges_a_malformed_body_after_its_blueprints_hooks(app_config):
    """However a blueprint is registered (late, or nested under another), its own hooks answer
    first and a malformed body to a view that takes none is refused, never acted on."""
    from flask import Blueprint, abort

    from factory import create_app

    application = create_app(app_config)
    acted = []
    parent, child = Blueprint("late_parent", __name__), Blueprint("late_child", __name__)

    @child.before_request
    def _guard():
        if "X-Let-In" not in request.headers:
            abort(401)

    @child.post("/late/act")
    def _act():
        acted.append(True)
        return {"ok": True}

    parent.register_blueprint(child)
    application.register_blueprint(parent)
    client = application.test_client()
    r = client.post("/late/act", data=b"[", content_type="application/json")
    assert r.status_code == 401
    r = client.post("/late/act", data=b"[", content_type="application/json", headers={"X-Let-In": "1"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "request.malformed_json"
    assert acted == []
    r = client.post("/late/act", data=b"{}", content_type="application/json", headers={"X-Let-In": "1"})
    assert r.status_code == 200 and acted == [True]


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: __import__("psycopg").errors.DeadlockDetected("deadlock detected"), "deadlock"),
        (
            lambda: __import__("psycopg").errors.SerializationFailure("could not serialize"),
            "serialization_failure",
        ),
        (lambda: __import__("sqlite3").OperationalError("database is locked"), "database_locked"),
    ],
)
def test_a_conflict_between_transactions_is_a_short_retry_logged_as_such_not_the_database_away(
    app, client, monkeypatch, caplog, make, kind
):
    # Two requests locking the same rows in opposite orders: the database aborts one. The phone is
    # told to try again in a moment (not half a minute), and the operator's log says which
    # conflict it was (a deadlock is a lock-order defect to fix), not that the database is down.
    from sqlalchemy.exc import OperationalError

    from domain.accounts import service
    from tests.conftest import make_citizen

    def aborted(*a, **k):
        raise OperationalError("UPDATE accounts SET ...", {}, make())

    who = make_citizen(app)
    monkeypatch.setattr(service, "profile", aborted)
    with caplog.at_level("WARNING", logger="api.errors"):
        r = client.get("/v1/me", headers=who["headers"])
    assert_error(r, 503, "service_unavailable")
    assert r.headers["Retry-After"] == "2"
    records = [rec for rec in caplog.records if rec.name == "api.errors"]
    assert [rec.getMessage() for rec in records] == ["transaction conflict: the client is told to retry"]
    assert records[0].conflict == kind
    assert records[0].levelname == ("ERROR" if kind == "deadlock" else "WARNING")


def test_the_database_away_is_still_a_503_of_half_a_minute(app, client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from domain.accounts import service
    from tests.conftest import make_citizen

    def away(*a, **k):
        raise OperationalError("SELECT 1", {}, __import__("psycopg").OperationalError("connection refused"))

    who = make_citizen(app)
    monkeypatch.setattr(service, "profile", away)
    r = client.get("/v1/me", headers=who["headers"])
    assert_error(r, 503, "service_unavailable")
    assert r.headers["Retry-After"] == "30"
