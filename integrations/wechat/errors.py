"""Typed failures of WeChat server-API calls, classified for callers and background jobs."""

from __future__ import annotations

from core.errors import PermanentError, RetryableError

# errcodes worth retrying later: system busy, frequency limits, a token that stayed invalid.
RETRYABLE_ERRCODES = frozenset({-1, 45009, 45011, 40001, 40014, 42001})
# errcodes that mean our own configuration is wrong (appid, secret, IP whitelist, request shape).
CONFIG_ERRCODES = frozenset({40002, 40013, 40125, 40164, 41001, 41002, 41004, 43001, 43002, 47001})
# Access-token errcodes that a fresh token cures.
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})


class WechatApiError(Exception):
    """A WeChat call failed. `errcode` is WeChat's, or None when no usable answer came back."""

    retryable = False

    def __init__(
        self, *, endpoint: str, errcode: int | None = None, errmsg: str = "", http_status: int | None = None
    ) -> None:
        self.endpoint = endpoint
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status
        super().__init__(f"{endpoint}: errcode={errcode} http={http_status} {errmsg}".strip())


class WechatRetryableError(WechatApiError, RetryableError):
    """Busy, rate-limited, timed out, unreachable or 5xx: the same call may succeed later."""

    retryable = True


class WechatPermanentError(WechatApiError, PermanentError):
    """WeChat refused the request itself (bad code, unknown openid, invalid data)."""


class WechatConfigError(WechatPermanentError):
    """WeChat rejected our credentials or request shape: an operator must fix the configuration."""


def classify(*, endpoint: str, errcode: int, errmsg: str) -> WechatApiError:
    """The typed error for a WeChat errcode."""
    if errcode in RETRYABLE_ERRCODES:
        return WechatRetryableError(endpoint=endpoint, errcode=errcode, errmsg=errmsg)
    if errcode in CONFIG_ERRCODES:
        return WechatConfigError(endpoint=endpoint, errcode=errcode, errmsg=errmsg)
    return WechatPermanentError(endpoint=endpoint, errcode=errcode, errmsg=errmsg)
