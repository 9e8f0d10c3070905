"""Validation and normalisation of one imported service item (format: docs/catalog-format.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.errors import Text
from domain.calendar import service as calendar_limits
from domain.catalog import codes
from domain.catalog.form_schema import normalize_form
from domain.catalog.problems import Problems, join
from domain.catalog.reader import Reader
from domain.catalog.sources import SHARED_DATASETS

ITEM_TYPES = ("01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "20")
LEVELS = (1, 2, 3, 4, 5, 6)
HANDLING_FORMS = ("window", "pc", "mobile", "post")
CASE_TYPES = ("instant", "promised")
UNITS = ("working_day", "natural_day", "month")
LIMIT_MAX = {unit: min(1000, most) for unit, most in calendar_limits.MAX_VALUE.items()}
CHANNELS = ("miniprogram", "app", "pc", "hall")
SCOPES = ("city", "province", "cross_province")
IDENTITY_LEVELS = ("L1", "L2", "L3")
REQUIREMENTS = ("required", "conditional")
MEDIA = ("paper", "electronic", "either")
SLUG = r"[a-z][a-z0-9_]{0,31}"
_URL = r"https://[^\s]{3,490}"

ITEM_FIELDS = {
    "code",
    "basic_code",
    "name",
    "name_en",
    "type",
    "implementing_body",
    "level",
    "region",
    "department",
    "categories",
    "handling_forms",
    "case_type",
    "time_limits",
    "fee",
    "acceptance_conditions",
    "process",
    "visits",
    "online_depth",
    "channels",
    "scope",
    "appointment",
    "online_payment",
    "delivery_by_post",
    "identity",
    "keywords",
    "outcome",
    "contact",
    "materials",
    "form",
}


@dataclass(frozen=True)
class References:
    """What an item may refer to: reference lists as they will be after the import."""

    departments: frozenset[str]
    categories: frozenset[str]
    ecert_types: frozenset[str]


_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")  # yuan, at most 2 decimals


def _time_limit(problems: Problems, path: str, value: Any, *, required: bool) -> dict[str, Any] | None:
    if value is None:
        if required:
            problems.add(path, "required", Text("needs {value, unit}", "须有 {value, unit}"))
        return None
    r = Reader(problems, path, value, {"value", "unit"})
    unit = r.choice("unit", UNITS, required=False, default="working_day")
    # At most 1000, and no further than the working-day calendar counts in that unit (120 months):
    # a longer limit would make every acceptance of the item fail.
    amount = r.integer("value", high=LIMIT_MAX.get(unit or "working_day", 1000))
    return None if amount is None else {"value": amount, "unit": unit}


def _fee(problems: Problems, path: str, value: Any) -> dict[str, Any]:
    r = Reader(problems, path, value, {"charged", "amount", "basis"})
    if not r.ok:
        return {"charged": False}
    if not r.boolean("charged"):
        if r.raw("amount", required=False) is not None:
            problems.add(
                r.at("amount"), "invalid", Text("a free item has no amount", "不收费的事项不应有金额")
            )
        return {"charged": False}
    raw = r.string("amount", max_len=12)
    basis = r.string("basis", max_len=500)
    # Plain digits only: Decimal also reads "NaN", "Infinity" and "1e99999999" (a 100 MB string
    # once formatted), none of them a fee.
    amount = Decimal(raw) if raw is not None and _AMOUNT.fullmatch(raw) else None
    if raw is not None and (amount is None or amount <= 0):
        problems.add(
            r.at("amount"),
            "invalid",
            Text("a positive amount in yuan with at most 2 decimals", "须为正的金额（元），最多 2 位小数"),
        )
        amount = None
    return {"charged": True, "amount": f"{amount:.2f}" if amount else None, "basis": basis}


SHARED_PROOFS = ("record", "no_record")


def _material(problems: Problems, path: str, value: Any, refs: References) -> dict[str, Any] | None:
    r = Reader(
        problems,
        path,
        value,
        {
            "id",
            "name",
            "name_en",
            "requirement",
            "condition",
            "originals",
            "copies",
            "medium",
            "ecert_types",
            "shared_data",
            "shared_proof",
            "template_url",
            "sample_url",
            "notes",
        },
    )
    if not r.ok:
        return None
    out: dict[str, Any] = {
        "id": r.string("id", max_len=32, pattern=SLUG),
        "name": r.string("name", max_len=200),
        "requirement": r.choice("requirement", REQUIREMENTS),
        "condition": r.string("condition", required=False, max_len=500, multiline=True),
        "originals": r.integer("originals", required=False, high=20, default=0),
        "copies": r.integer("copies", required=False, high=20, default=0),
        "medium": r.choice("medium", MEDIA, required=False, default="either"),
        "ecert_types": r.strings("ecert_types", max_items=10, max_len=21),
        "shared_data": r.strings("shared_data", max_items=10, max_len=64),
        # What the shared data proves: that a record exists (a marriage, a home), or that none does
        # (本市无自有住房证明: the real-estate register has nothing for the citizen).
        "shared_proof": r.choice("shared_proof", SHARED_PROOFS, required=False, default="record"),
        "template_url": r.string("template_url", required=False, max_len=500, pattern=_URL),
        "sample_url": r.string("sample_url", required=False, max_len=500, pattern=_URL),
        "notes": r.string("notes", required=False, max_len=1000, multiline=True),
    }
    # Kept only when given: a catalog without English names keeps its content hash (an unchanged
    # import creates no new versions).
    name_en = r.string("name_en", required=False, max_len=200, default="")
    if name_en:
        out["name_en"] = name_en
    if out["requirement"] == "conditional" and not out["condition"]:
        problems.add(
            r.at("condition"),
            "required",
            Text("a conditional material says when it is needed", "按条件提交的材料须说明何时需要"),
        )
    for i, code in enumerate(out["ecert_types"]):
        problem = codes.ecert_type_problem(code)
        if problem:
            problems.add(join(r.at("ecert_types"), i), "invalid_code", problem)
        elif code not in refs.ecert_types:
            problems.add(
                join(r.at("ecert_types"), i),
                "unknown_ecert_type",
                Text(f"'{code}' is not a known type", f"'{code}' 不是已知的电子证照类型"),
            )
    for i, source in enumerate(out["shared_data"]):
        if source not in SHARED_DATASETS:
            problems.add(
                join(r.at("shared_data"), i),
                "unknown_source",
                Text(f"'{source}' is not a shared dataset", f"'{source}' 不是共享数据集"),
            )
    return out


def normalize_item(problems: Problems, path: str, value: Any, refs: References) -> dict[str, Any] | None:
    """Validate one item; problems go to `problems`, the normalised document is returned."""
    r = Reader(problems, path, value, ITEM_FIELDS)
    if not r.ok:
        return None
    problems.subject = value.get("code") if isinstance(value.get("code"), str) else None
    start = len(problems)
    doc: dict[str, Any] = {
        "code": r.string("code", max_len=31),
        "basic_code": r.string("basic_code", max_len=12),
        "name": r.string("name", max_len=100),
        "name_en": r.string("name_en", required=False, max_len=200, default=""),
        "type": r.choice("type", ITEM_TYPES),
        "level": r.choice("level", LEVELS),
        "region": r.string("region", max_len=6),
        "department": r.string("department", max_len=32),
    }
    body = Reader(problems, r.at("implementing_body"), r.raw("implementing_body"), {"name", "uscc"})
    doc["implementing_body"] = {
        "name": body.string("name", max_len=100),
        "uscc": body.string("uscc", max_len=18),
    }
    uscc = doc["implementing_body"]["uscc"]
    if uscc and (problem := codes.uscc_problem(uscc)):
        problems.add(body.at("uscc"), "invalid_code", problem)
    if doc["basic_code"] and (problem := codes.basic_code_problem(doc["basic_code"])):
        problems.add(r.at("basic_code"), "invalid_code", problem)
    if doc["code"] and uscc and doc["level"] and doc["basic_code"]:
        problem = codes.implementation_code_problem(
            doc["code"], uscc=uscc, level=doc["level"], basic_code=doc["basic_code"]
        )
        if problem:
            problems.add(r.at("code"), "invalid_code", problem)
    if doc["region"] and (problem := codes.region_problem(doc["region"])):
        problems.add(r.at("region"), "invalid_code", problem)
    if doc["department"] and doc["department"] not in refs.departments:
        problems.add(
            r.at("department"),
            "unknown_department",
            Text(f"'{doc['department']}' is not a department", f"'{doc['department']}' 不是已知部门"),
        )
    doc["categories"] = r.strings("categories", required=True, min_items=1, max_items=5, max_len=32)
    for i, cat in enumerate(doc["categories"]):
        if cat not in refs.categories:
            problems.add(
                join(r.at("categories"), i),
                "unknown_category",
                Text(f"'{cat}' is not a category", f"'{cat}' 不是已知分类"),
            )

    doc["handling_forms"] = r.strings("handling_forms", required=True, min_items=1, options=HANDLING_FORMS)
    doc["case_type"] = r.choice("case_type", CASE_TYPES)
    limits = Reader(problems, r.at("time_limits"), r.raw("time_limits"), {"legal", "promised"})
    doc["time_limits"] = {
        "legal": _time_limit(
            problems, limits.at("legal"), limits.raw("legal", required=False), required=False
        ),
        "promised": _time_limit(
            problems, limits.at("promised"), limits.raw("promised", required=False), required=True
        ),
    }
    promised, legal = doc["time_limits"]["promised"], doc["time_limits"]["legal"]
    if promised and doc["case_type"] == "promised" and promised["value"] == 0:
        problems.add(
            join(limits.at("promised"), "value"),
            "invalid",
            Text("a promised item needs a time limit", "承诺件须有承诺时限"),
        )
    if promised and legal and promised["unit"] == legal["unit"] and promised["value"] > legal["value"]:
        problems.add(
            limits.at("promised"),
            "invalid",
            Text("the promised limit cannot exceed the legal limit", "承诺时限不能超过法定时限"),
        )
    doc["fee"] = _fee(problems, r.at("fee"), r.raw("fee"))
    doc["acceptance_conditions"] = r.strings(
        "acceptance_conditions", max_items=30, max_len=500, multiline=True
    )
    doc["process"] = []
    for i, step in enumerate(r.array("process", required=False, max_items=30)):
        s = Reader(problems, join(r.at("process"), i), step, {"step", "description"})
        if s.ok:
            doc["process"].append(
                {
                    "step": s.string("step", max_len=50),
                    "description": s.string(
                        "description", required=False, max_len=1000, multiline=True, default=""
                    ),
                }
            )
    doc["visits"] = r.integer("visits", high=10)
    doc["online_depth"] = r.choice("online_depth", (1, 2, 3, 4))
    doc["channels"] = r.strings("channels", required=True, min_items=1, options=CHANNELS)
    doc["scope"] = r.choice("scope", SCOPES, required=False, default="city")
    doc["appointment"] = r.boolean("appointment")
    doc["online_payment"] = r.boolean("online_payment")
    doc["delivery_by_post"] = r.boolean("delivery_by_post")
    ident = Reader(problems, r.at("identity"), r.raw("identity"), {"min_level", "face_within_minutes"})
    doc["identity"] = {
        "min_level": ident.choice("min_level", IDENTITY_LEVELS),
        "face_within_minutes": ident.integer("face_within_minutes", required=False, low=1, high=1440),
    }
    if doc["identity"]["face_within_minutes"] and doc["identity"]["min_level"] != "L3":
        problems.add(
            ident.at("face_within_minutes"),
            "invalid",
            Text("face freshness needs min_level L3", "要求近期人脸核验时 min_level 须为 L3"),
        )
    doc["keywords"] = r.strings("keywords", max_items=40, max_len=20)
    outcome = Reader(
        problems, r.at("outcome"), r.raw("outcome", required=False) or {}, {"name", "ecert_type"}
    )
    doc["outcome"] = {
        "name": outcome.string("name", required=False, max_len=100, default=""),
        "ecert_type": outcome.string("ecert_type", required=False, max_len=21),
    }
    if doc["outcome"]["ecert_type"] and doc["outcome"]["ecert_type"] not in refs.ecert_types:
        problems.add(
            outcome.at("ecert_type"),
            "unknown_ecert_type",
            Text("not a known e-certificate type", "不是已知的电子证照类型"),
        )
    contact = Reader(
        problems, r.at("contact"), r.raw("contact", required=False) or {}, {"phone", "address", "hours"}
    )
    doc["contact"] = {
        "phone": contact.string(
            "phone", required=False, max_len=40, pattern=r"[0-9+\-() ]{3,40}", default=""
        ),
        "address": contact.string("address", required=False, max_len=200, default=""),
        "hours": contact.string("hours", required=False, max_len=200, default=""),
    }

    doc["materials"] = []
    seen: set[str] = set()
    for i, value_m in enumerate(r.array("materials", required=False, max_items=60)):
        material = _material(problems, join(r.at("materials"), i), value_m, refs)
        if material is None:
            continue
        if material["id"] in seen:
            problems.add(
                join(join(r.at("materials"), i), "id"),
                "duplicate",
                Text(f"'{material['id']}' used twice", f"'{material['id']}' 重复使用"),
            )
        seen.add(material["id"] or "")
        doc["materials"].append(material)
    doc["form"] = normalize_form(problems, r.at("form"), r.raw("form"))
    if doc["online_depth"] == 4 and doc["visits"]:
        problems.add(
            r.at("visits"),
            "invalid",
            Text("全程网办 (online_depth 4) means 0 visits", "全程网办（online_depth 4）须为 0 次跑动"),
        )
    return doc if len(problems) == start else None


def is_fully_online(doc: dict[str, Any]) -> bool:
    """全程网办: no visit to a hall at all."""
    return doc["visits"] == 0


def is_at_most_one_visit(doc: dict[str, Any]) -> bool:
    """最多跑一次."""
    return doc["visits"] <= 1


_CODE_RE = re.compile(r"^[0-9A-Z]{31}$")


def looks_like_item_code(code: str) -> bool:
    return bool(_CODE_RE.match(code))
