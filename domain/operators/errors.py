"""Errors of operator accounts, their logins and the admin API."""

from __future__ import annotations

from typing import Any

from core.errors import AppError, Text, wait_text


class LoginFailed(AppError):
    # One error for unknown user, wrong password and wrong code, so none can be probed.
    status = 401
    code = "admin.login_failed"
    message_zh = "用户名、密码或动态口令错误"
    message_en = "Wrong username, password or one-time code"


class OperatorLocked(AppError):
    # Failures lock the username for the address they came from (lockout.py): the operator can
    # still log in from elsewhere, so the message says so rather than "account locked". Only the
    # row's own lock (no Redis) locks the account everywhere. The wait is said in minutes when
    # long; Retry-After and details.retry_after keep the seconds.
    status = 403
    code = "admin.locked"
    message_zh = "登录失败次数过多，{locked}，请 {wait}后再试或联系管理员解锁"
    message_en = "Too many failed logins; {locked} for {wait} or until an admin unlocks it"

    def __init__(self, *, retry_after: int, everywhere: bool = False, **kw: Any) -> None:
        retry_after = max(1, int(retry_after))
        locked = (
            Text("the account is locked", "账号已锁定")
            if everywhere
            else Text(
                "logins to this account from your network address are paused",
                "已暂停从您当前网络地址登录该账号",
            )
        )
        super().__init__(
            headers={"Retry-After": str(retry_after)},
            details={"retry_after": retry_after},
            retry_after=retry_after,
            locked=locked,
            wait=wait_text(retry_after),
            **kw,
        )


class OperatorDisabled(AppError):
    status = 403
    code = "admin.disabled"
    message_zh = "该管理账号已停用"
    message_en = "This operator account is disabled"


class AdminAuthRequired(AppError):
    status = 401
    code = "admin.auth_required"
    message_zh = "请先以管理员身份登录"
    message_en = "Operator authentication is required"


class AdminSessionRevoked(AppError):
    status = 401
    code = "admin.session_revoked"
    message_zh = "管理会话已结束，请重新登录"
    message_en = "This operator session has ended; please log in again"


class AdminSessionIdle(AppError):
    status = 401
    code = "admin.session_idle"
    message_zh = "长时间未操作，管理会话已失效，请重新登录"
    message_en = "The operator session timed out after inactivity; please log in again"


class RoleRequired(AppError):
    status = 403
    code = "admin.role_required"
    message_zh = "此操作需要“{role}”角色"
    message_en = "This action requires the '{role}' role"

    def __init__(self, *, role: str, **kw: Any) -> None:
        super().__init__(details={"role": role}, role=role, **kw)


class ReauthFailed(AppError):
    # 403, not 401: the session is fine, the proof for this change is not (a console that sees
    # 401 would send the operator back to the login page).
    status = 403
    code = "admin.reauth_failed"
    message_zh = "当前密码或动态口令错误"
    message_en = "The current password or one-time code is wrong"


class ResetOwnCredentials(AppError):
    status = 409
    code = "admin.reset_self"
    message_zh = "不能重置自己的登录凭据，请使用“修改密码”（需当前密码和动态口令）"
    message_en = (
        "You cannot reset your own credentials; change your password with your current password and code"
    )


class DisableSelf(AppError):
    status = 409
    code = "admin.disable_self"
    message_zh = "不能停用自己的账号，请由其他管理员操作"
    message_en = "You cannot disable your own account; another admin can"


class PasswordChangeRequired(AppError):
    # 403: the session is fine (a 401 would send the console back to the login page), but the
    # password is one an admin chose and knows.
    status = 403
    code = "admin.password_change_required"
    message_zh = "您的密码由管理员设置，请先修改密码（POST /admin/v1/me/password）后再进行其他操作"
    message_en = (
        "Your password was set by an admin; change it (POST /admin/v1/me/password) before doing anything else"
    )


class PasswordUnchanged(AppError):
    status = 422
    code = "admin.password_unchanged"
    message_zh = "新密码不能与当前密码相同"
    message_en = "The new password must differ from the current one"


class TotpEnrolmentRequired(AppError):
    # 409: the request is fine, the account is not ready for it (no new secret asked for yet).
    status = 409
    code = "admin.totp_enrolment_required"
    message_zh = (
        "管理员看到过您的动态口令密钥：请先获取新的密钥（POST /admin/v1/me/totp），再用它的动态口令修改密码"
    )
    message_en = (
        "An admin has seen your authenticator secret: get a new one (POST /admin/v1/me/totp) first, "
        "then change your password with a code of it"
    )


class TotpEnrolmentExpired(AppError):
    # 409 as above: the secret asked for was not used within ADMIN_TOTP_PENDING_TTL.
    status = 409
    code = "admin.totp_enrolment_expired"
    message_zh = (
        "新的动态口令密钥未在 {minutes} 分钟内用于修改密码，已作废：请重新获取（POST /admin/v1/me/totp），"
        "再用它的动态口令修改密码"
    )
    message_en = (
        "The new authenticator secret was not used in time ({minutes} minutes) and no longer counts: "
        "get another (POST /admin/v1/me/totp), then change your password with a code of it"
    )


class TotpEnrolmentNotNeeded(AppError):
    status = 409
    code = "admin.totp_enrolment_not_needed"
    message_zh = "只有需要修改管理员设置的密码时，才能在此获取新的动态口令密钥"
    message_en = (
        "A new authenticator secret is given here only while you must replace a password an admin chose"
    )


class NewTotpCodeInvalid(AppError):
    status = 422
    code = "admin.totp_code_invalid"
    message_zh = "新动态口令错误：请输入新密钥在验证器中显示的当前动态口令"
    message_en = "The new one-time code is wrong: enter the code your authenticator shows for the new secret"


class PasswordTooWeak(AppError):
    status = 422
    code = "admin.password_weak"
    message_zh = "密码至少 {min_length} 位，且不能包含用户名"
    message_en = "The password needs at least {min_length} characters and must not contain the username"


class UnknownRole(AppError):
    status = 422
    code = "admin.role_unknown"
    message_zh = "未知角色：{role}"
    message_en = "Unknown role: {role}"


class InvalidDisplayName(AppError):
    status = 422
    code = "admin.display_name_invalid"
    message_zh = "显示名称不能为空"
    message_en = "The display name must not be blank"


class InvalidUsername(AppError):
    status = 422
    code = "admin.username_invalid"
    message_zh = "用户名须为 3-64 位小写字母、数字或 . _ -"
    message_en = "Usernames are 3-64 lowercase letters, digits, '.', '_' or '-'"


class InvalidStatus(AppError):
    status = 422
    code = "admin.status_invalid"
    message_zh = "未知状态：{value}"
    message_en = "Unknown status: {value}"


class UnknownAuditEvent(AppError):
    status = 422
    code = "admin.audit_cursor_unknown"
    message_zh = "before 须为审计日志中已有事件的 id"
    message_en = "before must be the id of an event in the audit trail"


class UsernameTaken(AppError):
    status = 409
    code = "admin.username_taken"
    message_zh = "该用户名已被使用"
    message_en = "This username is already taken"


class OperatorNotFound(AppError):
    status = 404
    code = "admin.operator_not_found"
    message_zh = "未找到该管理员"
    message_en = "Operator not found"


class LastAdmin(AppError):
    status = 409
    code = "admin.last_admin"
    message_zh = "至少需要保留一名启用状态的系统管理员"
    message_en = "At least one active operator must keep the admin role"


class JobNotFound(AppError):
    status = 404
    code = "admin.job_not_found"
    message_zh = "未找到该后台任务"
    message_en = "Job not found"


class JobNotDead(AppError):
    status = 409
    code = "admin.job_not_dead"
    message_zh = "只有失败终止（dead）的任务才能重新执行，当前状态：{status}"
    message_en = "Only dead jobs can be replayed; this job is {status}"


class JobDataErased(AppError):
    """A dead job whose personal data the sweeper erased after OUTBOX_DEAD_SCRUB_DAYS."""

    status = 409
    code = "jobs.data_erased"
    message_zh = "该任务中的个人信息已按保存期限删除，无法重发"
    message_en = (
        "The personal data of this job was erased at the end of its retention period; it cannot be replayed"
    )


class OutOfScope(AppError):
    """A hall officer named a hall they are not assigned to."""

    status = 403
    code = "admin.out_of_scope"
    message_zh = "超出您的授权范围：您未被分配到该办事大厅，请联系管理员"
    message_en = "Out of your scope: you are not assigned to this hall; ask an admin"


class HallRequired(AppError):
    status = 422
    code = "admin.hall_required"
    message_zh = "请指明办理业务的大厅（hall_id）"
    message_en = "Name the hall where you are (hall_id)"


class UnknownScope(AppError):
    status = 422
    code = "admin.scope_unknown"
    message_zh = "分配的大厅或部门不存在"
    message_en = "An assigned hall or department does not exist"
