"""Collecting every problem of an import, each with where it is and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.errors import Text

# code -> (zh, en): what kind of problem; `detail` on the problem says the specifics.
PROBLEM_TEXT: dict[str, tuple[str, str]] = {
    "required": ("缺少必填字段", "Required field is missing"),
    "unknown_field": ("不认识的字段", "Unknown field"),
    "invalid": ("取值不符合要求", "Invalid value"),
    "invalid_code": ("编码不符合国家标准", "Code does not follow the national standard"),
    "duplicate": ("重复", "Duplicate"),
    "unknown_department": ("部门不存在", "No such department"),
    "unknown_category": ("分类不存在", "No such category"),
    "unknown_ecert_type": ("电子证照类型不存在", "No such e-certificate type"),
    "unknown_source": ("数据来源不存在", "No such data source"),
    "unknown_item": ("事项不存在", "No such service item"),
    "item_suspended": ("事项已暂停办理", "The item is suspended"),
    "invalid_form_schema": ("表单 JSON Schema 无效", "Invalid form JSON Schema"),
    "unknown_form_field": ("表单中没有该字段", "No such field in the form"),
    "form_conflict": (
        "一件事中多个事项对同一组字段的定义不一致",
        "Items of the bundle define a shared group differently",
    ),
}


@dataclass(frozen=True)
class Problem:
    path: str  # e.g. items[3].materials[1].ecert_types[0]
    code: str
    detail: str  # a core.errors.Text carries its Chinese; a plain str (a library's message) is English
    subject: str | None = None  # the item or bundle code, when known

    def as_dict(self, lang: str = "zh") -> dict[str, Any]:
        zh, en = PROBLEM_TEXT.get(self.code, ("有误", "Invalid"))
        return {
            "path": self.path,
            "subject": self.subject,
            "code": f"catalog.{self.code}",
            "message": en if lang == "en" else zh,
            "detail": self.detail if lang == "en" else getattr(self.detail, "zh", self.detail),
        }


@dataclass
class Problems:
    found: list[Problem] = field(default_factory=list)
    subject: str | None = None

    def add(self, path: str, code: str, detail: str | Text) -> None:
        self.found.append(Problem(path=path, code=code, detail=detail, subject=self.subject))

    def __bool__(self) -> bool:
        return bool(self.found)

    def __len__(self) -> int:
        return len(self.found)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key
