"""Errors of OAuth clients, grants and third-party access (the /v1 and /admin format).

The OAuth endpoints themselves (/oauth/token, /oauth/revoke, /oauth/introspect) answer in the
format RFC 6749 §5.2 prescribes, because OAuth client libraries parse exactly that.
"""

from __future__ import annotations

from core.errors import AppError


class ClientNotFound(AppError):
    status = 404
    code = "oauth.client_not_found"
    message_zh = "未找到该第三方应用"
    message_en = "OAuth client not found"


class ClientInvalid(AppError):
    status = 422
    code = "oauth.client_invalid"
    message_zh = "应用登记信息有误：{reason}"
    message_en = "The client registration is invalid: {reason}"


class GrantNotFound(AppError):
    status = 404
    code = "oauth.grant_not_found"
    message_zh = "未找到该授权"
    message_en = "Grant not found"


class ScopeNotAllowed(AppError):
    """A third-party token on an endpoint no scope opens to third parties."""

    status = 403
    code = "oauth.endpoint_not_allowed"
    message_zh = "第三方应用无权使用此功能"
    message_en = "Third-party apps cannot use this endpoint"


class InsufficientScope(AppError):
    status = 403
    code = "oauth.insufficient_scope"
    message_zh = "您未授权该应用“{scope_title}”，无法执行此操作"
    message_en = "The app was not granted the scope {scope} needed here"


class ConsentLevelTooLow(AppError):
    status = 403
    code = "oauth.level_too_low"
    message_zh = "授权“{scope_title}”需要先完成更高等级的实名认证（{min_level}）"
    message_en = "Granting {scope} needs identity level {min_level} first"


class IdentityNotVerified(AppError):
    status = 409
    code = "oauth.identity_not_verified"
    message_zh = "您尚未完成实名认证，无法核对身份"
    message_en = "The citizen has no verified identity to match against"


class NothingConsented(AppError):
    status = 422
    code = "oauth.nothing_consented"
    message_zh = "您没有同意任何授权内容。"
    message_en = "Nothing was consented to"


class LedgerBacklogged(AppError):
    """The data-use ledger cannot take more lines: third-party access pauses rather than go unrecorded."""

    status = 503
    code = "oauth.ledger_unavailable"
    message_zh = "服务繁忙，第三方应用暂时无法访问您的数据，请稍后再试"
    message_en = "Third-party access is paused while the data-use ledger catches up; try again later"

    def __init__(self, **kw: object) -> None:
        super().__init__(headers={"Retry-After": "5"}, **kw)
