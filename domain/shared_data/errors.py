"""Errors of data sharing and the certificate wallet; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class ConsentRequired(AppError):
    status = 422
    code = "sharing.consent_required"
    message_zh = "请阅读并同意授权获取您的政府共享数据和电子证照"
    message_en = "Agree to let yiwang fetch your government data and e-certificates for this application"


class ConsentOutdated(AppError):
    status = 422
    code = "sharing.consent_outdated"
    message_zh = "授权内容已更新，请重新阅读并同意"
    message_en = "The authorisation text has changed; read it again"


class VerifiedIdentityRequired(AppError):
    status = 403
    code = "sharing.identity_required"
    message_zh = "获取政府共享数据和电子证照前，请先完成实名认证"
    message_en = "Verify your identity before fetching government data or e-certificates"


class NothingToShare(AppError):
    status = 409
    code = "sharing.nothing_to_share"
    message_zh = "该事项没有可从政府共享数据或电子证照获取的信息"
    message_en = "This service uses no shared government data or e-certificates"


class DraftOnly(AppError):
    status = 409
    code = "sharing.draft_only"
    message_zh = "只有草稿状态的申请可以获取共享数据"
    message_en = "Shared data can be fetched only for a draft"


class SourceUnavailable(AppError):
    status = 503
    code = "sharing.source_unavailable"
    message_zh = "政府数据共享平台暂时无法访问，请稍后再试，或先上传材料"
    message_en = "The government data platform is unavailable; try again later or upload the material"


class CertificateNotFound(AppError):
    # Another account's certificate is "not found" too.
    status = 404
    code = "certificate.not_found"
    message_zh = "未找到该电子证照"
    message_en = "Certificate not found"


class CertificateNotValid(AppError):
    status = 409
    code = "certificate.not_valid"
    message_zh = "该证照当前状态为「{state}」，不能出示"
    message_en = "This certificate is {state_en} and cannot be shown"


class PresentationInvalid(AppError):
    status = 422
    code = "certificate.presentation_invalid"
    message_zh = "亮证码无效或已被篡改"
    message_en = "This certificate code is not valid"


class PresentationExpired(AppError):
    status = 422
    code = "certificate.presentation_expired"
    message_zh = "亮证码已过期，请让办事人刷新后重新出示"
    message_en = "This certificate code has expired; ask the holder to show a new one"


class PresentationUsed(AppError):
    status = 409
    code = "certificate.presentation_used"
    message_zh = "亮证码已使用过，请让办事人重新出示"
    message_en = "This certificate code was already used; ask the holder to show a new one"


class PresentationWithdrawn(AppError):
    """A genuine code whose certificate left the holder's wallet after it was shown (the holder
    closed the account, or the wallet dropped a certificate the library no longer lists)."""

    status = 404
    code = "certificate.presentation_withdrawn"
    message_zh = "亮证码已失效：该证照已不在办事人的电子证照卡包中"
    message_en = (
        "This certificate code is no longer valid: the certificate is no longer in the holder's wallet"
    )
