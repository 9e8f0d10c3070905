"""Errors of 好差评; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class NotRateable(AppError):
    status = 409
    code = "evaluations.not_finished"
    message_zh = "办件办结后才能评价"
    message_en = "A case can be rated once it is completed"


class AlreadyRated(AppError):
    status = 409
    code = "evaluations.already_rated"
    message_zh = "该办件已评价（一事一评）"
    message_en = "This case has already been rated"


class NotRated(AppError):
    status = 404
    code = "evaluations.not_rated"
    message_zh = "该办件尚未评价"
    message_en = "This case has not been rated yet"


class BadRating(AppError):
    status = 422
    code = "evaluations.bad_rating"
    message_zh = "评价内容有误，请检查后重试"
    message_en = "The rating is invalid"


class TaskNotFound(AppError):
    status = 404
    code = "evaluations.task_not_found"
    message_zh = "未找到该整改任务"
    message_en = "Rectification task not found"


class TaskState(AppError):
    status = 409
    code = "evaluations.task_state"
    message_zh = "整改任务当前状态不允许该操作"
    message_en = "The rectification task's state does not allow this"


class NotResponded(TaskState):
    message_zh = "部门尚未回复整改情况，请收到回复后再确认或申诉"
    message_en = "The department has not answered yet; accept or appeal once it has"


class AwaitingDecision(TaskState):
    message_zh = "该整改任务已回复，正在等待群众确认或申诉，不能再次回复"
    message_en = "This task has been answered and awaits the citizen's acceptance or appeal"


class TaskClosed(TaskState):
    message_zh = "该整改任务已办结"
    message_en = "This rectification is closed"


class BadCursor(AppError):
    status = 400
    code = "evaluations.bad_cursor"
    message_zh = "分页游标无效，请从第一页重新加载"
    message_en = "The page cursor is invalid; load from the first page"


class AppealLimit(AppError):
    status = 409
    code = "evaluations.appeal_limit"
    message_zh = "该整改已申诉复核过一次，不能再次申诉；请确认整改结果，如仍有异议可提交投诉"
    message_en = (
        "This rectification has already been reviewed once on appeal and cannot be appealed again;"
        " please accept it, or file a complaint"
    )


class DecisionClosed(AppError):
    status = 409
    code = "evaluations.decision_closed"
    message_zh = "确认或申诉的期限（{decide_by}）已过，整改结果已视为确认"
    message_en = "The time to accept or appeal ended on {decide_by}; the rectification counts as accepted"
