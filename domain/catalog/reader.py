"""Typed reads from an imported JSON object that record a problem instead of raising."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from core.errors import Text
from domain.catalog.problems import Problems, join

_MISSING = object()


def has_control_chars(text: str) -> bool:
    """Control characters other than a line break or a tab (which multi-line text may hold)."""
    return any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text)


class Reader:
    """Reads the fields of one JSON object at `path`; unknown fields are problems too."""

    def __init__(self, problems: Problems, path: str, obj: Any, allowed: set[str]) -> None:
        self.problems = problems
        self.path = path
        self.ok = isinstance(obj, dict)
        self.obj: dict[str, Any] = obj if self.ok else {}
        if not self.ok:
            problems.add(path or "$", "invalid", Text("must be a JSON object", "须为 JSON 对象"))
            return
        for key in obj:
            if key not in allowed:
                problems.add(
                    join(path, key),
                    "unknown_field",
                    Text(f"'{key}' is not part of the format", f"'{key}' 不是导入格式中的字段"),
                )

    def at(self, key: str) -> str:
        return join(self.path, key)

    def raw(self, key: str, *, required: bool = True) -> Any:
        value = self.obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required and self.ok:
                self.problems.add(
                    self.at(key), "required", Text(f"'{key}' is required", f"缺少必填字段 '{key}'")
                )
            return None
        return value

    def string(
        self,
        key: str,
        *,
        required: bool = True,
        max_len: int = 200,
        pattern: str | None = None,
        multiline: bool = False,
        default: str | None = None,
    ) -> str | None:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if not isinstance(value, str):
            self.problems.add(self.at(key), "invalid", Text("must be a string", "须为字符串"))
            return default
        value = value.strip()
        if not value and not required:
            return default
        if not value:
            self.problems.add(
                self.at(key), "required", Text(f"'{key}' must not be empty", f"'{key}' 不能为空")
            )
            return default
        if len(value) > max_len:
            self.problems.add(
                self.at(key), "invalid", Text(f"at most {max_len} characters", f"最多 {max_len} 个字符")
            )
            return default
        if has_control_chars(value) or (not multiline and "\n" in value):
            self.problems.add(
                self.at(key),
                "invalid",
                Text("contains control characters or line breaks", "含有控制字符或换行"),
            )
            return default
        if pattern and not re.fullmatch(pattern, value):
            self.problems.add(self.at(key), "invalid", Text(f"must match {pattern}", f"须符合格式 {pattern}"))
            return default
        return value

    def mapping(self, key: str, keyed_by: str) -> dict[str, Any]:
        """An optional JSON object (empty when absent or not an object, the latter a problem)."""
        value = self.raw(key, required=False)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problems.add(
                self.at(key),
                "invalid",
                Text(
                    f"must be an object keyed by {keyed_by}",
                    f"须为以{getattr(keyed_by, 'zh', keyed_by)}为键的对象",
                ),
            )
            return {}
        return value

    def integer(
        self, key: str, *, required: bool = True, low: int = 0, high: int = 10**6, default: int | None = None
    ) -> int | None:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.add(self.at(key), "invalid", Text("must be an integer", "须为整数"))
            return default
        if not low <= value <= high:
            self.problems.add(
                self.at(key),
                "invalid",
                Text(f"must be between {low} and {high}", f"须在 {low} 到 {high} 之间"),
            )
            return default
        return value

    def boolean(self, key: str, *, default: bool = False) -> bool:
        value = self.raw(key, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problems.add(self.at(key), "invalid", Text("must be true or false", "须为 true 或 false"))
            return default
        return value

    def choice(
        self, key: str, options: tuple[Any, ...], *, required: bool = True, default: Any = None
    ) -> Any:
        value = self.raw(key, required=required)
        if value is None:
            return default
        if isinstance(value, bool) or value not in options:
            listed = ", ".join(map(str, options))
            self.problems.add(
                self.at(key), "invalid", Text(f"must be one of {listed}", f"须为以下之一：{listed}")
            )
            return default
        return value

    def array(
        self, key: str, *, required: bool = True, max_items: int = 200, min_items: int = 0
    ) -> list[Any]:
        value = self.raw(key, required=required)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.add(self.at(key), "invalid", Text("must be a list", "须为列表"))
            return []
        if not min_items <= len(value) <= max_items:
            self.problems.add(
                self.at(key),
                "invalid",
                Text(f"must have {min_items} to {max_items} entries", f"须有 {min_items} 到 {max_items} 项"),
            )
            return value[:max_items]
        return value

    def strings(
        self,
        key: str,
        *,
        required: bool = False,
        max_items: int = 50,
        max_len: int = 200,
        options: tuple[str, ...] | None = None,
        min_items: int = 0,
        multiline: bool = False,
    ) -> list[str]:
        out: list[str] = []
        for i, value in enumerate(
            self.array(key, required=required, max_items=max_items, min_items=min_items)
        ):
            path = join(self.at(key), i)
            if not isinstance(value, str) or not value.strip():
                self.problems.add(path, "invalid", Text("must be a non-empty string", "须为非空字符串"))
            elif len(value) > max_len or has_control_chars(value) or (not multiline and "\n" in value):
                self.problems.add(
                    path,
                    "invalid",
                    Text(
                        f"at most {max_len} characters, no control characters",
                        f"最多 {max_len} 个字符，不含控制字符",
                    ),
                )
            elif options is not None and value not in options:
                listed = ", ".join(options)
                self.problems.add(
                    path, "invalid", Text(f"must be one of {listed}", f"须为以下之一：{listed}")
                )
            elif value.strip() in out:
                self.problems.add(
                    path, "duplicate", Text(f"'{value}' is listed twice", f"'{value}' 重复列出")
                )
            else:
                out.append(value.strip())
        return out
