"""Errors of the service catalog."""

from __future__ import annotations

from typing import Any

from core.errors import AppError, Text


class ItemNotFound(AppError):
    status = 404
    code = "catalog.item_not_found"
    message_zh = "未找到该服务事项，可能已下线或编码有误"
    message_en = "Service item not found; it may have been withdrawn or the code is wrong"


class DepartmentNotFound(AppError):
    status = 404
    code = "catalog.department_not_found"
    message_zh = "未找到该部门"
    message_en = "Department not found"


class VersionNotFound(AppError):
    status = 404
    code = "catalog.version_not_found"
    message_zh = "未找到该事项的这一版本"
    message_en = "This version of the service item does not exist"


class BundleNotFound(AppError):
    status = 404
    code = "catalog.bundle_not_found"
    message_zh = "未找到该“一件事”"
    message_en = "Life-event bundle not found"


class ItemSuspended(AppError):
    status = 409
    code = "catalog.item_suspended"
    message_zh = "该事项已暂停办理"
    message_en = "This service is suspended"


class NothingToPublish(AppError):
    status = 409
    code = "catalog.nothing_to_publish"
    message_zh = "没有待发布的草稿版本"
    message_en = "There is no draft version to publish"


class BundleItemsNotPublished(AppError):
    status = 409
    code = "catalog.bundle_items_unpublished"
    message_zh = "该“一件事”中有事项未发布或已暂停办理，不能发布或恢复办理：{items}"
    message_en = (
        "The bundle cannot be published or resumed: these items are not published or are suspended: {items}"
    )

    def __init__(self, *, items: list[dict[str, Any]], **kw: Any) -> None:
        zh = "、".join(f"{i['name']}（{i['code']}）" for i in items)
        en = ", ".join(f"{i['name_en'] or i['name']} ({i['code']})" for i in items)
        super().__init__(details={"items": items}, items=Text(en, zh), **kw)


class InvalidTransition(AppError):
    status = 409
    code = "catalog.invalid_transition"
    message_zh = "当前状态（{status}）不能执行该操作"
    message_en = "Not possible in the current status ({status})"


class ImportRejected(AppError):
    status = 422
    code = "catalog.import_invalid"
    message_zh = "导入内容有 {count} 处问题，未导入任何内容"
    message_en = "The import has {count} problem(s); nothing was imported"

    def __init__(self, *, problems: list[dict[str, Any]], **kw: Any) -> None:
        super().__init__(details={"problems": problems}, count=len(problems), **kw)


class InvalidUpload(AppError):
    status = 400
    code = "catalog.upload_invalid"
    message_zh = "提交的内容有误：{problem}"
    message_en = "Upload refused: {problem}"


class InvalidQuery(AppError):
    status = 400
    code = "catalog.query_invalid"
    message_zh = "搜索条件有误：{problem}"
    message_en = "Invalid search: {problem}"


class InvalidCursor(AppError):
    status = 400
    code = "catalog.cursor_invalid"
    message_zh = "翻页参数无效，请从第一页重新加载"
    message_en = "Invalid page cursor; reload from the first page"


class BundleFormConflict(AppError):
    status = 409
    code = "catalog.bundle_form_conflict"
    message_zh = (
        "发布后，已发布的“一件事”中各事项对同一信息组的定义将不一致，合并表单会漏问信息：{conflicts}。"
        "请在同一次导入中一并发布相关事项，或先暂停该“一件事”"
    )
    message_en = (
        "Published bundles would get items defining the same group differently, and their merged form"
        " would miss questions: {conflicts}. Publish the items together in one import, or suspend the"
        " bundle first"
    )

    def __init__(self, *, conflicts: list[tuple[str, Any]], **kw: Any) -> None:
        zh = "；".join(f"{code}：{text.zh}" for code, text in conflicts)
        en = "; ".join(f"{code}: {text}" for code, text in conflicts)
        details = {"conflicts": [{"bundle": code, "problem": str(text)} for code, text in conflicts]}
        super().__init__(details=details, conflicts=Text(en, zh), **kw)
