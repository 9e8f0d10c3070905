"""Errors of closing an account."""

from core.errors import AppError


class ClosureBlocked(AppError):
    """Something still open needs the account: every blocker is listed in `details.blockers`."""

    status = 409
    code = "account.closure_blocked"
    message_zh = "账号下还有未办结的事项，暂时无法注销：请等待办结、撤回或取消后再试"
    message_en = (
        "The account still has unfinished business and cannot be closed yet: "
        "wait until it is finished, or withdraw or cancel it, then try again"
    )


class FreshLoginRequired(AppError):
    """Closing needs a login made within the last minutes (a refreshed token is not one)."""

    status = 403
    code = "account.closure_login_required"
    message_zh = "为确认是您本人操作，请退出后重新登录，{minutes} 分钟内完成注销"
    message_en = "To confirm it is you, log in again and close the account within {minutes} minutes"


class ClosureBusy(AppError):
    """A case of the account was being written at every try: asked again in a moment, the
    closure finds it finished (and refused for it, or not). Nothing was written but the
    refusal's audit event, and the attempt is not counted against the hour's limit."""

    status = 503
    code = "account.closure_busy"
    message_zh = "您有办件正在提交或更新，请稍后再试注销"
    message_en = (
        "A case of yours is being submitted or updated; please try closing the account again in a moment"
    )
