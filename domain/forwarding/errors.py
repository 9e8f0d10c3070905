"""Errors of the province-facing endpoints; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class CallbackUnauthenticated(AppError):
    status = 401
    code = "platform.unauthenticated"
    message_zh = "回调签名、时间戳或随机数校验未通过（{reason}）"
    message_en = "The callback's signature, timestamp or nonce did not verify ({reason})"


class UnknownProfile(AppError):
    status = 404
    code = "platform.unknown_profile"
    message_zh = "未配置该省级平台"
    message_en = "No such provincial platform profile"


class UnknownCase(AppError):
    status = 404
    code = "platform.unknown_case"
    message_zh = "没有该申办流水号对应的办件"
    message_en = "No case has this application serial number"


class BadEvent(AppError):
    status = 400
    code = "platform.bad_event"
    message_zh = "回调内容不完整或格式有误"
    message_en = "The callback event is incomplete or malformed"


class RowNotFound(AppError):
    status = 404
    code = "forwarding.not_found"
    message_zh = "未找到该转发记录"
    message_en = "Forwarding record not found"


class BadCursor(AppError):
    status = 400
    code = "forwarding.bad_cursor"
    message_zh = "分页游标无效，请从第一页重新加载"
    message_en = "The page cursor is invalid; load from the first page"


class NotDeadLetter(AppError):
    status = 409
    code = "forwarding.not_dead_letter"
    message_zh = "只有转发失败（死信）的记录可以修正或重放，当前状态：{state}"
    message_en = "Only dead letters can be corrected or replayed; this one is {state}"


class CaseWithdrawn(AppError):
    status = 409
    code = "forwarding.case_withdrawn"
    message_zh = "申请人已撤回该办件，其申报不再重放"
    message_en = "The applicant withdrew this case; its submission is not replayed"
