"""Server-driven forms: JSON Schema 2020-12 for the data, UI hints, and prefill bindings.

The phone renders what the server sends, so everything here is checked when the item is
imported: the schema itself (meta-schema), that it only references its own `$defs`, and that
every UI hint and prefill binding names a field that exists. Later, applications are validated
against the same schema with `validate_data`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError

from core.errors import Text
from domain.catalog.form_validator import FormValidator, python_only_syntax
from domain.catalog.problems import Problems, join
from domain.catalog.reader import Reader, has_control_chars
from domain.catalog.sources import PREFILL_SOURCES

DIALECT = "https://json-schema.org/draft/2020-12/schema"
WIDGETS = (
    "text",
    "textarea",
    "number",
    "date",
    "select",
    "radio",
    "checkbox",
    "phone",
    "id_number",
    "address",
    "region",
    "switch",
)
MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 6
# A property name is one step of a dotted field path ("applicant.address.city"), which the
# ui hints, prefill bindings, provenance records and validation errors all carry.
MAX_NAME_LEN = 64
MAX_TEXT_PROBLEMS = 20  # per schema: enough to show what is wrong without flooding the report
_FORMATS = FormatChecker()


def resolve_ref(root: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s ("#/$defs/x"); anything else is returned as it is."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                return None
            target = target[part]
        node = target
        seen += 1
        if seen > 10:
            return None
    return node


def leaf_fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Dotted path -> schema of every field a citizen fills (objects with properties are groups)."""
    out: dict[str, dict[str, Any]] = {}

    def walk(node: Any, prefix: str, depth: int) -> None:
        node = resolve_ref(schema, node)
        if not isinstance(node, dict) or depth > MAX_DEPTH:
            return
        props = node.get("properties")
        if isinstance(props, dict) and props:
            for name, sub in props.items():
                walk(sub, f"{prefix}.{name}" if prefix else name, depth + 1)
        elif prefix:
            out[prefix] = node

    walk(schema, "", 0)
    return out


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _shown(key: str) -> str:
    """A key as a problem's path shows it: control characters escaped, a long one cut short."""
    text = "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) == "Cc" else c for c in key[:MAX_NAME_LEN])
    return text + "…" if len(key) > MAX_NAME_LEN else text


def _name_problem(name: str) -> Text | None:
    if not name.strip():
        return Text("a property name must not be empty", "属性名不能为空")
    if len(name) > MAX_NAME_LEN:
        return Text(
            f"a property name has at most {MAX_NAME_LEN} characters", f"属性名最多 {MAX_NAME_LEN} 个字符"
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        return Text(
            "a property name must not contain control characters, line breaks or tabs",
            "属性名不能含控制字符、换行或制表符",
        )
    if "." in name:  # "a.b" would read as property b of a in every field path
        return Text(
            "a property name must not contain '.': it separates the steps of a field path",
            "属性名不能含 '.'：它用于分隔字段路径的各级",
        )
    return None


def _text_problem(text: str, *, multiline: bool) -> Text | None:
    if has_control_chars(text) or (not multiline and "\n" in text):
        if multiline:
            return Text("must not contain control characters", "不能含控制字符")
        return Text("must not contain control characters or line breaks", "不能含控制字符或换行")
    return None


def _check_text(problems: Problems, path: str, schema: dict[str, Any]) -> bool:
    """Every key and every string of the schema, as the reader checks the catalog's own text: no
    control characters (a line break only in a `description`, a tab as in any text). Property
    names (keys of `properties`, entries of `required`) are 1 to MAX_NAME_LEN characters with no
    control character at all: the phone shows them and field paths are made of them."""
    found = 0

    def add(where: str, detail: str) -> None:
        nonlocal found
        found += 1
        if found <= MAX_TEXT_PROBLEMS:
            problems.add(where, "invalid_form_schema", detail)

    # (path, value, key holding it), walked without recursion: the nesting is as deep as the JSON
    # parser allowed, and in document order so the report reads top to bottom.
    stack: list[tuple[str, Any, str | None]] = [(path, schema, None)]
    while stack:
        where, node, holder = stack.pop()
        children: list[tuple[str, Any, str | None]] = []
        if isinstance(node, dict):
            for key, value in node.items():
                at = join(where, _shown(key))
                detail = _name_problem(key) if holder == "properties" else _text_problem(key, multiline=False)
                if detail:
                    add(at, detail)
                children.append((at, value, key))
        elif isinstance(node, list):
            children = [(join(where, i), value, holder) for i, value in enumerate(node)]
        elif isinstance(node, str):
            if holder == "required":
                detail = _name_problem(node)
            else:
                detail = _text_problem(node, multiline=holder == "description")
            if detail:
                add(where, detail)
        stack.extend(reversed(children))
    if found > MAX_TEXT_PROBLEMS:
        problems.add(
            path,
            "invalid_form_schema",
            Text(
                f"{found - MAX_TEXT_PROBLEMS} more problems of the same kind",
                f"另有 {found - MAX_TEXT_PROBLEMS} 处同类问题",
            ),
        )
    return not found


def _check_schema(problems: Problems, path: str, schema: Any) -> bool:
    if not isinstance(schema, dict):
        problems.add(path, "invalid_form_schema", Text("must be a JSON object", "须为 JSON 对象"))
        return False
    if len(json.dumps(schema, ensure_ascii=False).encode()) > MAX_SCHEMA_BYTES:
        problems.add(
            path,
            "invalid_form_schema",
            Text(f"larger than {MAX_SCHEMA_BYTES} bytes", f"超过 {MAX_SCHEMA_BYTES} 字节"),
        )
        return False
    if not _check_text(problems, path, schema):
        return False
    if schema.get("$schema", DIALECT) != DIALECT:
        problems.add(
            join(path, "$schema"), "invalid_form_schema", Text(f"must be {DIALECT}", f"须为 {DIALECT}")
        )
        return False
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        # The library's message is English: the Chinese detail names the rule it broke and
        # quotes the message as the technical detail (an editor in Chinese still sees where and why).
        message, rule = exc.message[:300], str(exc.validator)[:40]
        zh = f"不是有效的 JSON Schema 2020-12：此处违反元模式的“{rule}”规则（{message}）"
        problems.add(where, "invalid_form_schema", Text(message, zh))
        return False
    if not _check_patterns(problems, path, schema):
        return False
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        problems.add(
            path,
            "invalid_form_schema",
            Text("the root must be an object with properties", "根须为带 properties 的对象"),
        )
        return False
    _check_required(problems, path, schema)
    # A bad reference is reported, but the hints and bindings are still checked: one report
    # should list every problem of the item.
    for ref in _refs(schema):
        if not ref.startswith("#/") or resolve_ref(schema, {"$ref": ref}) is None:
            problems.add(
                path,
                "invalid_form_schema",
                Text(
                    f"reference {ref!r} is not a local $defs entry", f"引用 {ref!r} 不是本表单 $defs 中的条目"
                ),
            )
    return True


def _check_required(problems: Problems, path: str, schema: dict[str, Any]) -> None:
    """Every name a `required` lists is one of the `properties` beside it: a typo ("reasons" for
    the group "reason") imported cleanly, and then every submission was refused for a field the
    phone never shows and a PATCH may not set. (A `required` without `properties` beside it, as
    in `then` of a condition, names the fields of the object it applies to, not checked here.)"""
    stack: list[tuple[str, dict[str, Any]]] = [(path, schema)]
    while stack:
        where, node = stack.pop()
        names, props = node.get("required"), node.get("properties")
        if isinstance(names, list) and isinstance(props, dict):
            for i, name in enumerate(names):
                if isinstance(name, str) and name not in props:
                    problems.add(
                        f"{join(where, 'required')}[{i}]",
                        "invalid_form_schema",
                        Text(f"{name!r} is not one of the properties", f"{name!r} 不在 properties 中"),
                    )
        for key, value in node.items():
            at = join(where, _shown(key))
            if key in _NAMED_SCHEMAS and isinstance(value, dict):
                stack.extend((join(at, _shown(k)), v) for k, v in value.items() if isinstance(v, dict))
            elif key in _NOT_SCHEMAS:
                continue  # data (const, default, enum, examples), not schemas
            elif isinstance(value, dict):
                stack.append((at, value))
            elif isinstance(value, list):
                stack.extend((f"{at}[{i}]", v) for i, v in enumerate(value) if isinstance(v, dict))


# Keywords whose values are data, or names of fields, not schemas: a "pattern" key there is no regex.
_NOT_SCHEMAS = frozenset({"const", "default", "enum", "examples", "properties", "$defs", "dependentSchemas"})
_NAMED_SCHEMAS = frozenset({"properties", "$defs", "dependentSchemas", "patternProperties"})


def _check_patterns(problems: Problems, path: str, schema: dict[str, Any]) -> bool:
    """Every `pattern` reads the same on the phone (ECMA-262) as here: Python-only syntax, which
    the meta-schema's regex check lets through, is refused with the construct named."""
    ok = True
    stack: list[tuple[str, Any]] = [(path, schema)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, list):
            stack.extend((join(where, i), v) for i, v in reversed(list(enumerate(node))))
            continue
        if not isinstance(node, dict):
            continue
        pattern = node.get("pattern")
        construct = python_only_syntax(pattern) if isinstance(pattern, str) else None
        if construct:
            ok = False
            problems.add(
                join(where, "pattern"),
                "invalid_form_schema",
                Text(
                    f"the pattern uses {construct!r}, which phones (ECMA-262 regular expressions) "
                    "refuse or read otherwise",
                    f"正则表达式使用了“{construct}”，手机端（ECMA-262 正则）不支持或理解不同",
                ),
            )
        for key, value in reversed(list(node.items())):
            if key in _NAMED_SCHEMAS and isinstance(value, dict):
                stack.extend((join(join(where, key), _shown(k)), v) for k, v in reversed(list(value.items())))
            elif key not in _NOT_SCHEMAS:
                stack.append((join(where, key), value))
    return ok


def _bilingual(problems: Problems, path: str, value: Any, *, required: bool) -> dict[str, str] | None:
    if value is None:
        if required:
            problems.add(path, "required", Text("needs {zh, en}", "须有 {zh, en}"))
        return None
    reader = Reader(problems, path, value, {"zh", "en"})
    zh = reader.string("zh", max_len=500, multiline=True)
    en = reader.string("en", required=False, max_len=1000, multiline=True)
    return {"zh": zh, "en": en or ""} if zh else None


def normalize_form(problems: Problems, path: str, form: Any) -> dict[str, Any] | None:
    """Check a form block and return it normalised (None when it cannot be used)."""
    reader = Reader(problems, path, form, {"schema", "ui", "prefill"})
    if not reader.ok:
        return None
    schema = reader.raw("schema")
    if schema is None or not _check_schema(problems, reader.at("schema"), schema):
        return None
    leaves = leaf_fields(schema)
    if not leaves:
        problems.add(
            reader.at("schema"), "invalid_form_schema", Text("the form has no fields", "表单没有任何字段")
        )
        return None

    ui_reader = Reader(problems, reader.at("ui"), reader.raw("ui", required=False) or {}, {"order", "fields"})
    order = ui_reader.strings("order", max_items=500, max_len=200)
    for i, name in enumerate(order):
        if name not in leaves:
            problems.add(
                join(ui_reader.at("order"), i),
                "unknown_form_field",
                Text(f"'{name}' is not a field", f"'{name}' 不是表单中的字段"),
            )
    # Fields the operator did not order come after the ordered ones, in schema order.
    order = [name for name in order if name in leaves] + [name for name in leaves if name not in order]

    fields_out: dict[str, Any] = {}
    for name, hint in ui_reader.mapping("fields", Text("field path", "字段路径")).items():
        hpath = join(ui_reader.at("fields"), name)
        if name not in leaves:
            problems.add(
                hpath, "unknown_form_field", Text(f"'{name}' is not a field", f"'{name}' 不是表单中的字段")
            )
            continue
        h = Reader(problems, hpath, hint, {"widget", "label", "help", "placeholder", "enum_labels"})
        out: dict[str, Any] = {"widget": h.choice("widget", WIDGETS, required=False, default="text")}
        out["label"] = _bilingual(problems, h.at("label"), h.raw("label", required=False), required=False)
        out["help"] = _bilingual(problems, h.at("help"), h.raw("help", required=False), required=False)
        out["placeholder"] = _bilingual(
            problems, h.at("placeholder"), h.raw("placeholder", required=False), required=False
        )
        if "enum_labels" in h.obj:
            # The key a phone looks a value up by: a string as itself, any other value as its
            # JSON text (true, 1, null), as JavaScript's JSON.stringify writes it.
            enum = [v if isinstance(v, str) else json.dumps(v) for v in (leaves[name].get("enum") or [])]
            out["enum_labels"] = {}
            for value, label in h.mapping("enum_labels", Text("enum value", "枚举值")).items():
                lpath = join(h.at("enum_labels"), value)
                if value not in enum:
                    problems.add(
                        lpath,
                        "unknown_form_field",
                        Text(f"'{value}' is not in the field's enum", f"'{value}' 不在该字段的可选值中"),
                    )
                else:
                    out["enum_labels"][value] = _bilingual(problems, lpath, label, required=True)
        fields_out[name] = {k: v for k, v in out.items() if v is not None}

    prefill_out: dict[str, str] = {}
    for name, source in reader.mapping(
        "prefill", Text("field path (value: a prefill source)", "字段路径（值为预填来源）")
    ).items():
        ppath = join(reader.at("prefill"), name)
        if name not in leaves:
            problems.add(
                ppath, "unknown_form_field", Text(f"'{name}' is not a field", f"'{name}' 不是表单中的字段")
            )
        elif not isinstance(source, str) or source not in PREFILL_SOURCES:  # a list is not hashable
            problems.add(
                ppath,
                "unknown_source",
                Text(f"'{source}' is not a known prefill source", f"'{source}' 不是已知的预填来源"),
            )
        else:
            prefill_out[name] = source
    return {"schema": schema, "ui": {"order": order, "fields": fields_out}, "prefill": prefill_out}


def validate_data(schema: dict[str, Any], data: Any) -> list[dict[str, str]]:
    """Problems of submitted form data: [{path, message}], empty when the data is valid."""
    validator = FormValidator(schema, format_checker=_FORMATS)
    out = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        path = ".".join(str(p) for p in error.absolute_path)
        out.append({"path": path or "$", "message": error.message[:300]})
    return out
