"""Errors of the accounts area."""

from core.errors import AppError


class InvalidPhone(AppError):
    status = 422
    code = "account.phone_invalid"
    message_zh = "请输入正确的中国大陆手机号码"
    message_en = "Enter a valid mainland China mobile number"


class AccountLocked(AppError):
    status = 403
    code = "account.locked"
    message_zh = "账号已被锁定，请联系客服"
    message_en = "This account is locked; please contact support"


class AccountNotFound(AppError):
    status = 404
    code = "account.not_found"
    message_zh = "账号不存在"
    message_en = "Account not found"


class PhoneBoundElsewhere(AppError):
    status = 409
    code = "account.phone_bound_elsewhere"
    message_zh = "该手机号已绑定其他账号，请使用该手机号登录"
    message_en = "This phone number belongs to another account; log in with it instead"
