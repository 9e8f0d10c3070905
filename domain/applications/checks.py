"""What must hold before a submission, reported all at once with field paths a phone can highlight.

Paths: `data.<field path>` for form fields, `materials.<material id>`, `identity`, `consent`.
Messages are core.errors.Text: English, with the Chinese the error format shows by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from core.errors import Text
from core.text import has_visible_text
from domain.applications.forms import FormSpec, material_name
from domain.catalog.form_schema import MAX_DEPTH, resolve_ref
from domain.identity import levels
from domain.identity.errors import FreshFaceRequired, LevelRequired


@dataclass
class Problems:
    fields: dict[str, list[Text]] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, path: str, message: Text) -> None:
        self.fields.setdefault(path, []).append(message)

    def __len__(self) -> int:
        return sum(len(v) for v in self.fields.values())


def _message(error: ValidationError) -> Text:
    kind, value = error.validator, error.validator_value
    if kind == "required":
        return Text("This field is required", "此项为必填项")
    if kind == "type":
        return Text(f"Must be of type {value}", "填写的格式不正确")
    if kind in ("maxLength", "maxItems"):
        return Text(f"At most {value} characters", f"不能超过 {value} 个字")
    if kind in ("minLength", "minItems"):
        return Text(f"At least {value} characters", f"至少需要 {value} 个字")
    if kind in ("enum", "const"):
        return Text("Choose one of the options", "请从选项中选择")
    if kind in ("minimum", "exclusiveMinimum"):
        return Text(f"Must not be less than {value}", f"不能小于 {value}")
    if kind in ("maximum", "exclusiveMaximum"):
        return Text(f"Must not be more than {value}", f"不能大于 {value}")
    if kind == "additionalProperties":
        return Text("This field is not part of the form", "表单中没有这一项")
    if kind == "format" and value == "date":
        return Text("Enter a date as YYYY-MM-DD", "请填写正确的日期（年-月-日）")
    # A pattern, another format, anything else: jsonschema's own message quotes the regular
    # expression and echoes the value typed (a phone or ID number) back into the error.
    return Text("Not in the expected format", "填写的格式不正确")


def _required_leaves(schema: Any, prefix: list[str], depth: int = 0) -> list[str]:
    """A missing group stands for the required fields inside it, which a phone can highlight."""
    if depth > 6 or not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return [".".join(prefix)]
    out: list[str] = []
    for name in schema.get("required") or []:
        out += _required_leaves(schema["properties"].get(name), [*prefix, name], depth + 1)
    return out or [".".join(prefix)]


def _error_paths(error: ValidationError) -> list[str]:
    base = ["data", *(str(p) for p in error.absolute_path)]
    if error.validator == "required" and isinstance(error.instance, dict):
        props = error.schema.get("properties") or {} if isinstance(error.schema, dict) else {}
        out: list[str] = []
        for name in error.validator_value:
            if name not in error.instance:
                out += _required_leaves(props.get(name), [*base, name])
        return out
    return [".".join(base)]


def check_data(problems: Problems, validator: Draft202012Validator, data: dict[str, Any]) -> None:
    for error in validator.iter_errors(data):
        for path in _error_paths(error):
            if not any(str(m) == str(_message(error)) for m in problems.fields.get(path, [])):
                problems.add(path, _message(error))


def check_visible_text(
    problems: Problems, root: dict[str, Any], data: Any, *, only: set[str] | None = None
) -> None:
    """Text that shows nothing (spaces, ideographic spaces a Chinese keyboard types, zero-width
    characters) is not an answer: the department would get a blank address. A required field
    holding it is missing; an optional one is to hold text or nothing. JSON Schema's
    `minLength` counts those characters, so it cannot tell. `only`: the field paths to judge (a
    resubmission judges only what its supplement let the citizen change: the rest was accepted
    as it was, and the citizen could not clear it)."""

    def walk(schema: Any, value: Any, prefix: str, depth: int) -> None:
        schema = resolve_ref(root, schema)
        if not isinstance(value, dict) or not isinstance(schema, dict) or depth > MAX_DEPTH:
            return
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        for name, item in value.items():
            path = f"{prefix}.{name}"
            if isinstance(item, dict):
                walk(props.get(name), item, path, depth + 1)
            elif (
                isinstance(item, str)
                and not has_visible_text(item)
                and (item or name in required)
                and (only is None or path.removeprefix("data.") in only)
            ):
                if name in required:
                    message = Text("This field is required", "此项为必填项")
                else:
                    message = Text(
                        "Only blank characters: write the answer or clear the field",
                        "只填写了空白字符，请填写有效内容或清空",
                    )
                if not any(str(m) == str(message) for m in problems.fields.get(path, [])):
                    problems.add(path, message)

    walk(root, data, "data", 0)


def check_leaf(problems: Problems, spec: FormSpec, path: str, value: Any) -> None:
    """One patched field against its own schema (types, lengths, formats; not `required`)."""
    for error in spec.leaf_validator(path).iter_errors(value):
        problems.add(f"data.{path}", _message(error))


def check_materials(problems: Problems, spec: FormSpec, satisfied: set[str]) -> None:
    for material_id, material in spec.materials.items():
        if material["requirement"] == "required" and material_id not in satisfied:
            problems.add(
                f"materials.{material_id}",
                Text(f"Add {material_name(material, 'en')}", f"请提供材料：{material['name']}"),
            )


def check_supplement_answered(problems: Problems, supplement: dict[str, Any] | None) -> None:
    """A supplement that named fields or materials and is still unanswered (nothing named was
    changed since it was asked): each named item is a problem, for the phone to show what the
    department asked to change. Sent back unchanged, the case would only be asked again."""
    if not supplement or supplement.get("answered") is not False:
        return
    for path in supplement.get("fields") or []:
        problems.add(
            f"data.{path}",
            Text("Change this as the supplement request asks, then resubmit", "请按补正要求修改此项后再提交"),
        )
    for material_id in supplement.get("materials") or []:
        problems.add(
            f"materials.{material_id}",
            Text(
                "Add or replace this material as the supplement request asks, then resubmit",
                "请按补正要求补充或更换此材料后再提交",
            ),
        )


def certificate_not_valid(problems: Problems, spec: FormSpec, material_id: str) -> None:
    material = spec.materials.get(material_id)
    name = material["name"] if material else material_id
    name_en = material_name(material, "en") if material else material_id
    problems.add(
        f"materials.{material_id}",
        Text(
            f"The e-certificate for {name_en} is no longer valid; upload the material instead",
            f"用于「{name}」的电子证照已不是有效状态（撤销、注销、暂扣或过期），请上传材料",
        ),
    )


def check_identity(
    problems: Problems,
    spec: FormSpec,
    *,
    level: str,
    live_checked_at: float | None,
    now: float,
    offered: list[str],
) -> None:
    try:
        levels.check(spec.requirement, level=level, live_checked_at=live_checked_at, now=now, offered=offered)
    except LevelRequired as exc:
        problems.add(
            "identity",
            Text(
                f"This service needs identity level {spec.requirement.min_level}",
                f"办理该事项需要先完成{'人脸识别' if spec.requirement.min_level == 'L3' else '实名'}认证",
            ),
        )
        problems.details["identity"] = {"code": exc.code, **(exc.details or {})}
    except FreshFaceRequired as exc:
        minutes = spec.requirement.face_within_minutes
        problems.add(
            "identity",
            Text(
                f"A face check within {minutes} minutes is needed", f"需要在 {minutes} 分钟内完成一次人脸识别"
            ),
        )
        problems.details["identity"] = {"code": exc.code, **(exc.details or {})}


def check_consent(problems: Problems, consent: dict[str, Any] | None, text_version: str) -> None:
    if not consent or consent.get("accepted") is not True:
        problems.add(
            "consent",
            Text(
                "Agree to share this application with the handling department",
                "请阅读并同意将申请信息提供给承办部门",
            ),
        )
    elif consent.get("text_version") != text_version:
        problems.add(
            "consent",
            Text("The consent text has changed; read it again", "授权内容已更新，请重新阅读并同意"),
        )
        problems.details["consent_text_version"] = text_version
