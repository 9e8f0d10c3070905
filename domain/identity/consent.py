"""The face-recognition consent text a citizen must accept separately, by version.

人脸识别技术应用安全管理办法 asks for separate consent, an alternative to face, and minimal data.
A new version is added here (never edited in place) and chosen with FACE_CONSENT_VERSION.
"""

from __future__ import annotations

from core.errors import AppError

FACE_CONSENT_TEXTS: dict[str, dict[str, str]] = {
    "face-2026-12": {
        "zh": (
            "《人脸识别授权书》\n"
            "1. 为核验您的真实身份，我们将请您选择的认证服务商（微信、腾讯云慧眼或支付宝）采集您的人脸，"
            "并与公安机关登记的照片比对。\n"
            "2. 本平台不接收、不保存您的人脸图像或视频，只保存核验结果、相似度分值、服务商流水号和时间。\n"
            "3. 人脸识别不是唯一的认证方式：您也可以携带身份证到任一政务服务大厅由工作人员当面核验。\n"
            "4. 您可随时在“我的-实名认证”查看认证记录。每个账号每天最多进行 3 次人脸识别。"
        ),
        "en": (
            "Face recognition consent\n"
            "1. To verify your identity, the provider you choose (WeChat, Tencent Cloud FaceID or Alipay) "
            "captures your face and compares it with the photo held by the public-security authority.\n"
            "2. yiwang never receives or stores images or video of your face; it keeps only the result, "
            "the similarity score, the provider's reference and the time.\n"
            "3. Face recognition is not the only way: you can also have your ID card checked in person "
            "at any government service hall.\n"
            "4. You can see your verifications under My account → Identity. At most 3 face checks a day."
        ),
    },
}


class ConsentVersionUnknown(AppError):
    status = 404
    code = "identity.consent_version_unknown"
    message_zh = "未找到该版本的授权书"
    message_en = "No consent text of that version"


def face_consent_text(version: str) -> dict[str, str]:
    """The zh and en text of a consent version."""
    try:
        return FACE_CONSENT_TEXTS[version]
    except KeyError:
        raise ConsentVersionUnknown() from None
