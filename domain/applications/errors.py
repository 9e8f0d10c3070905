"""Errors of applications; each carries its HTTP status and a stable code."""

from __future__ import annotations

from core.errors import AppError


class ApplicationNotFound(AppError):
    # Another account's application is "not found" too: nothing about it leaks.
    status = 404
    code = "application.not_found"
    message_zh = "未找到该申请"
    message_en = "Application not found"


class ServiceUnknown(AppError):
    status = 422
    code = "application.service_unknown"
    message_zh = "该事项不存在或暂停办理"
    message_en = "This service does not exist or is suspended"


class TargetRequired(AppError):
    status = 422
    code = "application.target_required"
    message_zh = "请提供 service_code 或 bundle_id 其中之一"
    message_en = "Give exactly one of service_code or bundle_id"


class ChannelNotOffered(AppError):
    status = 422
    code = "application.channel_not_offered"
    message_zh = "该事项暂不支持在本渠道办理"
    message_en = "This service cannot be applied for on this channel"


class PreconditionRequired(AppError):
    status = 428
    code = "application.if_match_required"
    message_zh = "保存草稿需要携带 If-Match 版本号，请刷新后重试"
    message_en = "Send If-Match with the version you edited"


class RevisionRequired(AppError):
    status = 428
    code = "application.if_match_revision_required"
    message_zh = "保存草稿需要携带所编辑的版本号（ETag），不能用“*”代替，请刷新后重试"
    message_en = "Send If-Match with the ETag of the version you edited; '*' does not say which one"


class VersionConflict(AppError):
    status = 412
    code = "application.version_conflict"
    message_zh = "该申请已在其他设备上修改，请刷新后再保存"
    message_en = "The application was changed elsewhere; reload it before saving"


class InvalidPatch(AppError):
    status = 422
    code = "application.invalid_patch"
    message_zh = "修改内容有误"
    message_en = "The change is not valid"


class UploadInvalid(InvalidPatch):
    # The same code (the part at fault is named in `fields`); the message speaks of the upload.
    message_zh = "上传的文件有误"
    message_en = "The upload is not valid"


class FieldReadOnly(AppError):
    status = 422
    code = "application.field_read_only"
    message_zh = "部分信息来自权威数据源，不能修改"
    message_en = "Some fields come from authoritative sources and cannot be changed"


class FieldLocked(AppError):
    status = 422
    code = "application.field_locked"
    message_zh = "补正时只能修改部门要求补正的内容"
    message_en = "During a supplement only the fields the department named can be changed"


class IllegalTransition(AppError):
    status = 409
    code = "application.illegal_transition"
    message_zh = "当前状态（{current}）下不能执行该操作"
    message_en = "This action is not possible while the application is {current_en}"


class ProvinceUpdatePending(AppError):
    # The province has moved the case (e.g. accepted it) and yiwang has not applied that yet.
    status = 409
    code = "application.province_update_pending"
    message_zh = "省政务服务平台刚更新了办理进度，请稍后刷新再试"
    message_en = "The provincial platform has just updated this case; refresh and try again shortly"


class NotEditable(AppError):
    status = 409
    code = "application.not_editable"
    message_zh = "当前状态（{current}）下不能修改申请"
    message_en = "The application cannot be changed while it is {current_en}"


class SubmissionInvalid(AppError):
    status = 422
    code = "application.invalid"
    message_zh = "申请还有 {count} 处需要完善，请按提示修改"
    message_en = "{count} problem(s) must be fixed before submitting"


class MaterialUnknown(AppError):
    status = 404
    code = "application.material_unknown"
    message_zh = "该事项没有这项材料"
    message_en = "This service has no such material"


class MaterialLocked(AppError):
    status = 409
    code = "application.material_locked"
    message_zh = "当前状态下不能更改这项材料"
    message_en = "This material cannot be changed in the application's current state"


class MaterialNotNamed(MaterialLocked):
    # The same code: a supplement is open, but it does not name this material.
    message_zh = "补正时只能更改部门要求补正的材料"
    message_en = "During a supplement only the materials the department named can be changed"


class FileNotFound(AppError):
    status = 404
    code = "application.file_not_found"
    message_zh = "未找到该文件"
    message_en = "File not found"


class FileEmpty(AppError):
    status = 422
    code = "file.empty"
    message_zh = "文件是空的，请重新选择"
    message_en = "The file is empty"


class FileUnsupported(AppError):
    status = 422
    code = "file.unsupported_type"
    message_zh = "文件内容不是 JPG、PNG、PDF 或 OFD 格式，请重新选择"
    message_en = "The file content is not JPEG, PNG, PDF or OFD"


class FileCorrupt(AppError):
    status = 422
    code = "file.corrupt"
    message_zh = "文件已损坏或不完整，请重新拍照或选择"
    message_en = "The file is damaged or incomplete"


class FileTooManyPixels(AppError):
    status = 422
    code = "file.too_many_pixels"
    message_zh = "图片尺寸过大，请压缩后再上传"
    message_en = "The image has too many pixels"


class TooManyFiles(AppError):
    status = 409
    code = "application.too_many_files"
    message_zh = "每项材料最多上传 {limit} 个文件，请先删除不需要的文件"
    message_en = "A material holds at most {limit} files; remove one you do not need first"


class FileTooLarge(AppError):
    status = 413
    code = "file.too_large"
    message_zh = "文件不能超过 {limit}"
    message_en = "The file must not exceed {limit}"

    @classmethod
    def of(cls, limit_bytes: int) -> FileTooLarge:
        """The limit as a person reads it (`10 MB`, `1.5 MB`, `500 KB`: a limit under 1 MiB is not
        "0 MB"), and in bytes in `details` for a phone that checks before it uploads."""
        return cls(limit=_size(limit_bytes), details={"limit_bytes": limit_bytes})


def _size(n: int) -> str:
    for unit, size in (("MB", 1024 * 1024), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} B"


class UnknownStatus(AppError):
    status = 422
    code = "application.unknown_status"
    message_zh = "未知的办件状态"
    message_en = "Unknown case status"


class InvalidCursor(AppError):
    status = 400
    code = "application.invalid_cursor"
    message_zh = "分页参数无效，请从第一页重新加载"
    message_en = "Invalid cursor; reload from the first page"


class CaseNumberRetry(AppError):
    """The case number this process had reserved was given out already (its reservation was lost
    by the database); the blocks are dropped, so submitting again takes a fresh number."""

    status = 503
    code = "application.case_number_retry"
    message_zh = "办件编号分配冲突，请重新提交"
    message_en = "The case number could not be assigned; please submit again"

    def __init__(self, **kw: object) -> None:
        super().__init__(headers={"Retry-After": "1"}, **kw)
