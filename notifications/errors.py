"""Errors of the notification endpoints; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class BadPreferences(AppError):
    status = 422
    code = "notifications.bad_preferences"
    message_zh = "通知设置有误，请检查后重试"
    message_en = "The notification preferences are invalid"


class NotificationNotFound(AppError):
    status = 404
    code = "notifications.not_found"
    message_zh = "未找到该消息"
    message_en = "Notification not found"


class BadCursor(AppError):
    status = 400
    code = "notifications.bad_cursor"
    message_zh = "分页游标无效，请从第一页重新加载"
    message_en = "The page cursor is invalid; load from the first page"


class DeviceNotFound(AppError):
    status = 404
    code = "devices.not_found"
    message_zh = "未找到该设备"
    message_en = "Device not found"


class BadDeviceToken(AppError):
    status = 422
    code = "devices.bad_token"
    message_zh = "推送令牌格式不正确"
    message_en = "The push token is malformed"


class NoWechatIdentity(AppError):
    status = 409
    code = "notifications.no_wechat_identity"
    message_zh = "请先使用微信小程序登录后再订阅消息"
    message_en = "Log in with the WeChat mini-program before subscribing to messages"


class StreamsBusy(AppError):
    status = 503
    code = "notifications.streams_busy"
    message_zh = "实时消息连接较多，请稍后重试，或下拉刷新查看消息"
    message_en = "Too many live connections; retry shortly or refresh the inbox"
