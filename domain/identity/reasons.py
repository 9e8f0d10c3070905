"""What a citizen reads when a verification did not pass, by normalised reason."""

from __future__ import annotations

from domain.identity.models import ID_CHECK
from integrations.realname import base

# Refusals of yiwang's own (the provider passed the check, but the identity cannot be bound).
REASON_BOUND_ELSEWHERE = "bound_to_other_account"
REASON_DIFFERENT = "different_person"

REASON_MESSAGES: dict[str, tuple[str, str]] = {
    REASON_BOUND_ELSEWHERE: (
        "该身份已绑定其他账号，请用原账号登录；如需帮助，请携带身份证到政务服务大厅办理",
        "This identity belongs to another account; sign in with that account, "
        "or bring your ID card to a service hall",
    ),
    REASON_DIFFERENT: (
        "本账号已认证为其他人的身份，不能再认证另一个人",
        "This account is already verified as another person and cannot verify a second one",
    ),
    base.REASON_IDENTITY_MISMATCH: (
        "姓名、身份证号码与人脸不一致，请核对后重试",
        "The name, ID number and face do not match; please check and try again",
    ),
    base.REASON_NO_RECORD: (
        "未查询到该身份证号码的登记信息，请核对号码，或携带身份证到政务服务大厅办理",
        "No record of this ID number; check it, or bring your ID card to a service hall",
    ),
    base.REASON_LIVENESS_FAILED: (
        "未能识别到真人人脸，请在光线充足处正对屏幕，按提示完成动作后重试",
        "No live face was recognised; face the screen in good light, follow the prompts and retry",
    ),
    base.REASON_EXPIRED: (
        "认证已超时，请重新发起认证",
        "The verification expired; please start again",
    ),
    base.REASON_CANCELLED: (
        "您已取消人脸识别，可以重新发起或选择其他认证方式",
        "You cancelled the face check; start again or choose another method",
    ),
    base.REASON_ID_INVALID: (
        "身份证号码格式有误，请核对后重新填写",
        "The ID number is not valid; please check it",
    ),
    base.REASON_REJECTED: (
        "认证未通过，请稍后重试或选择其他认证方式",
        "The verification did not pass; try again later or choose another method",
    ),
}


# An ID check compares no face: its mismatch must not send the citizen to look at the camera.
_ID_CHECK_MESSAGES: dict[str, tuple[str, str]] = {
    base.REASON_IDENTITY_MISMATCH: (
        "姓名与身份证号码不一致，请核对后重试",
        "The name and ID number do not match; please check and try again",
    ),
}


def reason_message(reason: str | None, lang: str, method: str | None = None) -> str | None:
    """The localised message of a failure reason (None when there is no reason); `method` the
    verification method, for wording that depends on it."""
    if reason is None:
        return None
    own = _ID_CHECK_MESSAGES if method == ID_CHECK else {}
    zh, en = own.get(reason) or REASON_MESSAGES.get(reason, REASON_MESSAGES[base.REASON_REJECTED])
    return en if lang == "en" else zh
