"""Errors of real-name verification; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class IdentityInvalid(AppError):
    status = 422
    code = "identity.invalid"
    message_zh = "姓名或身份证号码有误，请核对后重新填写"
    message_en = "The name or ID number is not valid; please check and try again"


class MethodUnavailable(AppError):
    status = 422
    code = "identity.method_unavailable"
    message_zh = "当前渠道不支持该认证方式"
    message_en = "This verification method is not offered on this channel"


class ConsentRequired(AppError):
    status = 422
    code = "identity.consent_required"
    message_zh = "人脸识别需要您单独同意《人脸识别授权书》"
    message_en = "Face verification needs your separate consent to the face-recognition notice"


class ConsentOutdated(AppError):
    status = 409
    code = "identity.consent_outdated"
    message_zh = "授权书已更新，请阅读最新版本后重新同意"
    message_en = "The consent text has changed; please read the current version and agree again"


class DifferentPerson(AppError):
    status = 409
    code = "identity.different_person"
    message_zh = "该账号已实名为他人，不能用其他身份认证"
    message_en = "This account is verified as another person"


class InPersonMismatch(AppError):
    """An officer's entry at a hall differs from the identity the account already proved."""

    status = 409
    code = "identity.in_person_mismatch"
    message_zh = "录入的姓名或身份证号码与该账号已核验的实名信息不一致，请核对身份证原件后重新录入"
    message_en = (
        "The name or ID number entered does not match the identity already verified on this account; "
        "check the original ID card and enter it again"
    )


class AlreadyVerified(AppError):
    status = 409
    code = "identity.already_verified"
    message_zh = "您已完成身份核验，无需重复认证"
    message_en = "Your identity is already verified"


class IdCheckInProgress(AppError):
    """Another ID check of this account is running (a double tap, or two channels at once)."""

    status = 409
    code = "identity.check_in_progress"
    message_zh = "正在核验身份，请稍候查看结果"
    message_en = "Your identity is being checked; please look for the result shortly"


class BoundToOtherAccount(AppError):
    status = 409
    code = "identity.bound_to_other_account"
    message_zh = "该身份已绑定其他账号且无法自动合并，请到政务服务大厅或联系客服处理"
    message_en = (
        "This identity belongs to another account that cannot be merged automatically; "
        "please visit a service hall or contact support"
    )


class VerificationNotFound(AppError):
    status = 404
    code = "identity.verification_not_found"
    message_zh = "未找到该认证记录"
    message_en = "Verification not found"


class NotVerified(AppError):
    status = 404
    code = "identity.not_verified"
    message_zh = "您尚未完成实名认证"
    message_en = "You have not verified your identity yet"


class VerificationFinished(AppError):
    status = 409
    code = "identity.verification_finished"
    message_zh = "该认证已结束，请重新发起认证"
    message_en = "This verification has already finished; start a new one"


class LevelRequired(AppError):
    """The request needs a higher assurance level; details say which and how to get it."""

    status = 403
    code = "identity.level_required"
    message_zh = "该服务需要更高等级的实名认证（{required_level}），请先完成认证"
    message_en = "This service needs identity level {required_level}; please verify first"


class FreshFaceRequired(AppError):
    """The level is there but the latest live check is too old (step-up)."""

    status = 403
    code = "identity.fresh_face_required"
    message_zh = "为保障您的账户安全，请在办理前重新进行人脸识别（{minutes} 分钟内有效）"
    message_en = "For your security, please verify your face again (valid for {minutes} minutes)"


class ProviderUnavailableError(AppError):
    status = 503
    code = "identity.provider_unavailable"
    message_zh = "认证服务繁忙，请稍后再试"
    message_en = "The verification service is busy; please try again shortly"


class ProviderFailedError(AppError):
    status = 502
    code = "identity.provider_error"
    message_zh = "认证服务暂时出现问题，请稍后再试或选择其他认证方式"
    message_en = "The verification service failed; try again later or choose another method"
