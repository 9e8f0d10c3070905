"""Base class for every error that reaches a client: HTTP status, stable code, zh and en text."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar


class Text(str):
    """A field message with its Chinese form: the English text, and `.zh` for Chinese responses."""

    zh: str

    def __new__(cls, en: str, zh: str) -> Text:
        obj = super().__new__(cls, en)
        obj.zh = zh
        return obj

    def __getnewargs__(self) -> tuple[str, str]:  # copy and pickle keep the Chinese
        return str(self), self.zh


def field_errors(fields: Mapping[Any, Any] | None) -> dict[str, list[str]] | None:
    """`fields` in its one shape: {field path: [message, ...]}, every value a list of messages.

    A bare message becomes a one-message list; nested errors (marshmallow's
    `{"data": {"name": [...]}}`, `{"items": {0: [...]}}`) become dotted paths (`data.name`,
    `items.0`), and a nested `_schema` (the object itself is at fault) becomes the object's path.
    Messages keep their type, so a `Text` still carries its Chinese for the error handler.
    """
    if not fields:
        return None
    out: dict[str, list[str]] = {}

    def add(path: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, str):
            out.setdefault(path or "_schema", []).append(value)
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                key = str(key)
                add(path if key == "_schema" and path else f"{path}.{key}" if path else key, inner)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in value:
                add(path, item)
        else:
            out.setdefault(path or "_schema", []).append(str(value))

    if isinstance(fields, Mapping):
        add("", fields)
    else:
        add("_schema", fields)
    return out or None


class AppError(Exception):
    """An error with a stable machine code and bilingual messages.

    Subclasses set `status`, `code`, `message_zh` and `message_en`; messages may contain
    `{name}` placeholders filled from keyword arguments given to the constructor. `fields` is
    kept in its one shape, {field path: [message, ...]} (see `field_errors`); give messages as
    `Text` for a Chinese form.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    message_zh: ClassVar[str] = "请求有误"
    message_en: ClassVar[str] = "Bad request"

    def __init__(
        self,
        *,
        fields: Mapping[str, Any] | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(self.code)
        self.fields = field_errors(fields)
        self.details = details
        self.headers = headers or {}
        self.params = params

    def message(self, lang: str = "zh") -> str:
        template = self.message_en if lang == "en" else self.message_zh
        # A `Text` parameter speaks the response's language too (a reason, a problem found).
        params = {k: v.zh if isinstance(v, Text) and lang != "en" else v for k, v in self.params.items()}
        try:
            return template.format(**params)
        except (KeyError, IndexError):
            return template


class NotFound(AppError):
    status = 404
    code = "not_found"
    message_zh = "未找到该资源"
    message_en = "Resource not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    message_zh = "请求与当前状态冲突"
    message_en = "The request conflicts with the current state"


def wait_text(seconds: int) -> Text:
    """A wait as people say it: seconds under two minutes, minutes under two hours, else hours
    (rounded up: never sooner than the wait)."""
    if seconds < 120:
        return Text(f"{seconds} second{'s' if seconds != 1 else ''}", f"{seconds} 秒")
    if seconds < 7200:
        minutes = math.ceil(seconds / 60)
        return Text(f"{minutes} minutes", f"{minutes} 分钟")
    hours = math.ceil(seconds / 3600)
    return Text(f"{hours} hours", f"{hours} 小时")


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    # "请 3417 秒后再试" means little to a citizen: the wait is said in minutes or hours when long
    # (Retry-After and details.retry_after keep the seconds).
    message_zh = "操作过于频繁，请 {wait}后再试"
    message_en = "Too many requests; try again in {wait}"

    def __init__(self, *, retry_after: int, scope: str = "", **kw: Any) -> None:
        retry_after = max(1, int(retry_after))
        super().__init__(
            headers={"Retry-After": str(retry_after)},
            details={"retry_after": retry_after, "scope": scope},
            retry_after=retry_after,
            wait=wait_text(retry_after),
            **kw,
        )


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    message_zh = "服务暂时不可用，请稍后再试"
    message_en = "Service temporarily unavailable; please try again later"


class UpstreamError(AppError):
    """An external system failed in a way the citizen can retry."""

    status = 502
    code = "upstream_unavailable"
    message_zh = "上游服务暂时不可用，请稍后再试"
    message_en = "An upstream service is temporarily unavailable; please try again"


class RetryableError(Exception):
    """A job or client failure worth retrying (timeouts, 5xx, rate limits)."""


class PermanentError(Exception):
    """A job or client failure that retrying will not fix (bad request, auth, invalid data)."""
