"""Errors of logins and sessions."""

from typing import Any

from core.errors import AppError


class RefreshTokenInvalid(AppError):
    status = 401
    code = "auth.refresh_invalid"
    message_zh = "登录状态已失效，请重新登录"
    message_en = "The refresh token is invalid or expired; please log in again"


class RefreshTokenReused(AppError):
    status = 401
    code = "auth.refresh_reused"
    message_zh = "检测到登录凭证被重复使用，为保护账号安全已退出该设备，请重新登录"
    message_en = "This refresh token was already used; the session was ended to protect the account"


class SessionRevoked(AppError):
    status = 401
    code = "auth.session_revoked"
    message_zh = "该设备已退出登录，请重新登录"
    message_en = "This session has been signed out; please log in again"


class SessionNotFound(AppError):
    status = 404
    code = "auth.session_not_found"
    message_zh = "未找到该登录设备"
    message_en = "Session not found"


class OtpInvalid(AppError):
    status = 400
    code = "auth.otp_invalid"
    message_zh = "验证码错误，还可尝试 {remaining} 次"
    message_en = "Wrong verification code; {remaining} {attempts} left"

    def __init__(self, *, remaining: int, **kw: Any) -> None:
        super().__init__(remaining=remaining, attempts="attempt" if remaining == 1 else "attempts", **kw)


class OtpExpired(AppError):
    status = 400
    code = "auth.otp_expired"
    message_zh = "验证码已失效，请重新获取"
    message_en = "The verification code has expired or was used; request a new one"


class OtpTooManyAttempts(AppError):
    status = 400
    code = "auth.otp_attempts_exceeded"
    message_zh = "验证码错误次数过多，请重新获取"
    message_en = "Too many wrong attempts; request a new code"


class WechatCodeInvalid(AppError):
    status = 400
    code = "auth.wechat_code_invalid"
    message_zh = "微信登录凭证无效或已使用，请重新进入小程序"
    message_en = "The WeChat login code is invalid or already used; reopen the mini-program"


class WechatRiskyUser(AppError):
    status = 403
    code = "auth.wechat_risky_user"
    message_zh = "微信提示该账号存在安全风险，暂时无法登录"
    message_en = "WeChat flagged this user as high-risk; login is not possible now"


class WechatPhoneCodeInvalid(AppError):
    status = 400
    code = "auth.wechat_phone_code_invalid"
    message_zh = "手机号授权凭证无效或已使用，请重新授权"
    message_en = "The phone-number code is invalid or already used; authorise again"


class WechatRequired(AppError):
    status = 403
    code = "auth.wechat_session_required"
    message_zh = "请在微信小程序中操作"
    message_en = "This action is only available from the WeChat mini-program"
