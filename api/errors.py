"""The one error format: {"error": {code, message, fields?, details?, request_id}}.

`fields` is always {field path: [message, ...]} (core.errors.field_errors); the documented
schema of the body is api.schemas.ErrorSchema (factory.YiwangApi.ERROR_SCHEMA)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify
from marshmallow import Schema
from marshmallow import fields as ma_fields
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, StatementError
from werkzeug.exceptions import HTTPException

from api.i18n import language, localise_field_errors
from core.db import database_away, transaction_conflict
from core.errors import AppError, ServiceUnavailable, field_errors

log = logging.getLogger(__name__)


class ErrorBodySchema(Schema):
    """What is inside `error`. Documentation only: bodies are built by `error_response`."""

    code = ma_fields.String(
        required=True, metadata={"description": "stable machine code, e.g. request.validation_failed"}
    )
    message = ma_fields.String(
        required=True, metadata={"description": "for people: Chinese, or English on Accept-Language: en"}
    )
    fields_ = ma_fields.Dict(
        data_key="fields",
        keys=ma_fields.String(),
        values=ma_fields.List(ma_fields.String()),
        metadata={
            "description": "field path (dotted, e.g. data.applicant.phone, attachments.0) → its "
            "messages, in the response's language; only when fields are at fault"
        },
    )
    details = ma_fields.Dict(metadata={"description": "machine-readable extras of this code"})
    request_id = ma_fields.String(
        required=True, metadata={"description": "the X-Request-ID header of this response"}
    )


class ErrorSchema(Schema):
    """The one error format, documented as components.schemas.Error (factory.YiwangApi)."""

    error = ma_fields.Nested(ErrorBodySchema, required=True)


# HTTP status → (code, zh, en) for errors raised by Flask/werkzeug/webargs themselves.
HTTP_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("request.bad_request", "请求格式有误", "The request is malformed"),
    401: ("auth.required", "请先登录", "Authentication is required"),
    403: ("auth.forbidden", "没有权限执行此操作", "You are not allowed to do this"),
    404: ("request.not_found", "请求的地址不存在", "No such endpoint or resource"),
    405: ("request.method_not_allowed", "不支持该请求方法", "Method not allowed for this endpoint"),
    406: ("request.not_acceptable", "无法提供所需的响应格式", "Cannot produce an acceptable response"),
    409: ("request.conflict", "请求与当前状态冲突", "The request conflicts with the current state"),
    412: (
        "request.precondition_failed",
        "数据已被修改，请刷新后重试",
        "The resource changed; reload and retry",
    ),
    413: ("request.too_large", "请求内容过大", "The request body is too large"),
    415: (
        "request.unsupported_media_type",
        "请以 application/json 格式提交",
        "Send the body as application/json",
    ),
    422: ("request.validation_failed", "提交的内容有误，请检查后重试", "Some fields are invalid"),
    428: ("request.precondition_required", "缺少 If-Match 请求头", "If-Match header is required"),
    429: ("rate_limited", "操作过于频繁，请稍后再试", "Too many requests; please slow down"),
    500: ("internal_error", "服务器开小差了，请稍后再试", "Internal server error; please try again later"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试", "Service temporarily unavailable"),
}


# A body that is not JSON; the usual cause past a typo is another encoding (GBK, UTF-16), and
# JSON is UTF-8 (RFC 8259), so the message says so.
MALFORMED_JSON = (
    "request.malformed_json",
    "请求体须为 UTF-8 编码的合法 JSON",
    "The request body must be valid JSON in UTF-8",
)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: Any = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build a response in the one error format; `fields` leaves as {path: [message, ...]}."""
    body: dict[str, Any] = {"code": code, "message": message, "request_id": g.get("request_id")}
    fields = field_errors(fields)
    if fields:
        body["fields"] = fields
    if details:
        body["details"] = details
    resp = jsonify({"error": body})
    resp.status_code = status
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def http_error_response(error: HTTPException) -> Response:
    """Turn a werkzeug/webargs HTTPException into the error format."""
    status = error.code or 500
    lang = language()
    code, zh, en = HTTP_ERRORS.get(status, (f"http_{status}", error.name, error.name))
    fields = None
    data = getattr(error, "data", None) or {}
    messages = data.get("messages") if isinstance(data, dict) else None
    if status == 400 and messages and "json" in messages and "Invalid JSON body." in str(messages):
        code, zh, en = MALFORMED_JSON
    elif messages:
        # webargs nests errors by location; flatten {"json": {...}} to {...}.
        merged: dict[str, Any] = {}
        for location, errs in messages.items():
            if isinstance(errs, dict):
                merged.update(errs)
            else:
                merged[location] = errs
        fields = localise_field_errors(field_errors(merged), lang)
    headers = {}
    allow = error.get_response().headers.get("Allow") if status == 405 else None
    if allow:
        headers["Allow"] = allow
    if isinstance(data, dict) and data.get("headers"):
        headers.update(data["headers"])
    return error_response(status, code, en if lang == "en" else zh, fields=fields, headers=headers)


class BadIfMatch(AppError):
    """An If-Match header that names no ETag (`abc`, garbage). Not 428: the client did send the
    header, and "send If-Match" would have it send the same again. The API's ETags are
    `"r<revision>"` (W/ and a list of them are fine too)."""

    status = 400
    code = "request.bad_if_match"
    message_zh = 'If-Match 请求头不是有效的 ETag：请原样发回上次响应中的 ETag，如 "r3"'
    message_en = 'The If-Match header is not a valid ETag: send back the ETag of the last response, e.g. "r3"'


class RepeatedParameter(AppError):
    """A query parameter the endpoint takes once, given more than once (`?limit=5&limit=500`):
    taking the first would answer another question than the client believes it asked."""

    status = 400
    code = "request.repeated_parameter"
    message_zh = "查询参数 {name} 只能出现一次"
    message_en = "The query parameter {name} may be given only once"

    def __init__(self, *, name: str) -> None:
        super().__init__(details={"parameter": name}, name=name)


_INVALID_VALUE = (
    "request.invalid_value",
    "请求中有无法保存的值（如不可见字符或超出范围的数字、日期）",
    "The request holds a value that cannot be stored (an invisible character, or a number or date "
    "out of range)",
)


def register_error_handlers(app: Flask) -> None:
    """Every error leaves in the one format."""

    @app.errorhandler(AppError)
    def _app_error(error: AppError) -> Response:
        from api.auth import challenge_unauthorised  # api.auth renders its errors through here

        challenge_unauthorised(error)
        lang = language()
        headers = error.headers
        if error.status == 503 and "Retry-After" not in (headers or {}):
            headers = (headers or {}) | {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}
        return error_response(
            error.status,
            error.code,
            error.message(lang),
            fields=localise_field_errors(error.fields, lang) if error.fields else None,
            details=error.details,
            headers=headers,
        )

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        return http_error_response(error)

    @app.errorhandler(StatementError)
    def _statement_error(error: StatementError) -> Response:
        """A value the database (or its type conversion) refuses is bad input, not a fault:
        NUL in text, a number or date beyond the column's range. The transaction is rolled back
        at the end of the request, so nothing is written. Other database errors stay 500/503."""
        if isinstance(error, DataError) or (
            type(error) is StatementError and isinstance(error.orig, (OverflowError, ValueError))
        ):
            log.warning("value refused by the database", extra={"error_type": type(error.orig).__name__})
            code, zh, en = _INVALID_VALUE
            return error_response(400, code, en if language() == "en" else zh)
        return _unexpected(error)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if (conflict := transaction_conflict(error)) is not None:
            # Aborted for another transaction (nothing of this one was written): the phone may
            # try again in a moment. A deadlock is two paths locking in opposite orders, a defect
            # for the operator to report: logged as an error, with the stack.
            level = logging.ERROR if conflict == "deadlock" else logging.WARNING
            message = "transaction conflict: the client is told to retry"
            log.log(level, message, exc_info=conflict == "deadlock", extra={"conflict": conflict})
            unavailable = ServiceUnavailable()
            return error_response(
                503, unavailable.code, unavailable.message(language()),
                headers={"Retry-After": str(RETRY_AFTER_CONFLICT)},
            )  # fmt: skip
        if _dependency_away(error):
            # Redis or the database unreachable: the phone may try again, and is told when.
            log.exception("a dependency is unavailable", extra={"error_type": type(error).__name__})
            unavailable = ServiceUnavailable()
            return error_response(
                503, unavailable.code, unavailable.message(language()),
                headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
            )  # fmt: skip
        log.exception("unhandled error", extra={"error_type": type(error).__name__})
        code, zh, en = HTTP_ERRORS[500]
        return error_response(500, code, en if language() == "en" else zh)


RETRY_AFTER_UNAVAILABLE = 30  # seconds: a 503 without its own estimate
RETRY_AFTER_CONFLICT = 2  # seconds: a transaction aborted for another's sake


def _dependency_away(error: BaseException) -> bool:
    """Redis or the database could not be reached (a lost or refused connection, a timeout), as
    opposed to a fault in what was asked of them."""
    return isinstance(error, (RedisConnectionError, RedisTimeoutError)) or database_away(error)
