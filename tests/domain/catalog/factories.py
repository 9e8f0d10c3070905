"""Small valid catalog documents for tests; each test breaks what it checks."""

from __future__ import annotations

import copy
from typing import Any

from domain.catalog.codes import uscc_check_char

DIALECT = "https://json-schema.org/draft/2020-12/schema"
GAJ_USCC = "11440100MB2C99999" + uscc_check_char("11440100MB2C99999")  # a city public-security bureau
MZJ_USCC = "114401000069487" + "00"
MZJ_USCC = MZJ_USCC[:17] + uscc_check_char(MZJ_USCC[:17])
ID_CARD = "11100000000019713D001"  # 公安部 + 001: 居民身份证
HUKOU = "11100000000019713D002"
MARRIAGE = "11100000000013127D001"

APPLICANT = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 30},
        "id_number": {"type": "string", "pattern": "^\\d{17}[\\dX]$"},
        "phone": {"type": "string", "pattern": "^1[3-9]\\d{9}$"},
    },
    "required": ["name", "id_number", "phone"],
}


def reference() -> dict[str, Any]:
    return {
        "departments": [
            {"code": "public_security", "name": "公安", "name_en": "Public security"},
            {"code": "civil_affairs", "name": "民政", "name_en": "Civil affairs"},
        ],
        "categories": [
            {"code": "hukou_id", "name": "户籍身份", "name_en": "Residence and ID", "sort": 1},
            {"code": "marriage", "name": "婚姻登记", "name_en": "Marriage", "sort": 2},
        ],
        "ecert_types": [
            {"code": ID_CARD, "name": "居民身份证", "issuer": "公安部"},
            {"code": HUKOU, "name": "居民户口簿", "issuer": "公安部"},
            {"code": MARRIAGE, "name": "结婚证", "issuer": "民政部"},
        ],
    }


def item(
    basic: str = "000105004000",
    name: str = "居民身份证换领",
    *,
    uscc: str = GAJ_USCC,
    level: int = 3,
    **over: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": f"{uscc}{level}{basic.ljust(12, '0')}",
        "basic_code": basic,
        "name": name,
        "name_en": "Renewal of resident ID card",
        "type": "20",
        "implementing_body": {"name": "广州市公安局", "uscc": uscc},
        "level": level,
        "region": "440100",
        "department": "public_security",
        "categories": ["hukou_id"],
        "handling_forms": ["window", "mobile"],
        "case_type": "promised",
        "time_limits": {"legal": {"value": 60, "unit": "working_day"}, "promised": {"value": 15}},
        "fee": {"charged": True, "amount": "20", "basis": "《居民身份证法》"},
        "acceptance_conditions": ["居民身份证有效期满前三个月内"],
        "process": [{"step": "申请", "description": "在线提交申请并预约"}, {"step": "领证"}],
        "visits": 1,
        "online_depth": 3,
        "channels": ["miniprogram", "app", "hall"],
        "scope": "province",
        "appointment": True,
        "online_payment": True,
        "delivery_by_post": True,
        "identity": {"min_level": "L2"},
        "keywords": ["换身份证", "身份证到期"],
        "outcome": {"name": "居民身份证", "ecert_type": ID_CARD},
        "contact": {"phone": "020-12345678", "address": "广州市越秀区", "hours": "工作日 9:00-17:00"},
        "materials": [
            {
                "id": "old_card",
                "name": "原居民身份证",
                "requirement": "required",
                "originals": 1,
                "medium": "either",
                "ecert_types": [ID_CARD],
            },
            {
                "id": "hukou",
                "name": "居民户口簿",
                "requirement": "conditional",
                "condition": "户籍信息变更时",
                "originals": 1,
                "medium": "paper",
                "shared_data": ["hukou.household_register"],
            },
            {"id": "photo", "name": "标准照片回执", "requirement": "required", "medium": "electronic"},
        ],
        "form": {
            "schema": {
                "$schema": DIALECT,
                "type": "object",
                "properties": {
                    "applicant": APPLICANT,
                    "reason": {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string", "enum": ["expired", "damaged"]},
                            "pickup": {"type": "string", "enum": ["hall", "post"]},
                        },
                        "required": ["kind"],
                    },
                },
                "required": ["applicant", "reason"],
            },
            "ui": {
                "order": ["applicant.name", "applicant.id_number", "applicant.phone", "reason.kind"],
                "fields": {
                    "applicant.name": {"widget": "text", "label": {"zh": "姓名", "en": "Name"}},
                    "reason.kind": {
                        "widget": "radio",
                        "label": {"zh": "换领原因", "en": "Reason"},
                        "enum_labels": {
                            "expired": {"zh": "有效期满", "en": "Expired"},
                            "damaged": {"zh": "证件损坏", "en": "Damaged"},
                        },
                    },
                },
            },
            "prefill": {
                "applicant.name": "identity.name",
                "applicant.id_number": "identity.id_number",
                "applicant.phone": "account.phone",
            },
        },
    }
    doc.update(over)
    return doc


def marriage_item(**over: Any) -> dict[str, Any]:
    doc = item(
        "000105001000",
        "结婚登记预约",
        uscc=MZJ_USCC,
        department="civil_affairs",
        categories=["marriage"],
        keywords=["结婚", "领证"],
        visits=1,
        fee={"charged": False},
        implementing_body={"name": "广州市民政局", "uscc": MZJ_USCC},
        outcome={"name": "结婚证"},
    )
    doc["materials"] = [
        {
            "id": "id_card",
            "name": "双方居民身份证",
            "requirement": "required",
            "originals": 2,
            "ecert_types": [ID_CARD],
        },
        {
            "id": "hukou",
            "name": "双方户口簿",
            "requirement": "required",
            "originals": 2,
            "shared_data": ["hukou.household_register"],
        },
    ]
    doc["form"] = copy.deepcopy(doc["form"])
    del doc["form"]["schema"]["properties"]["reason"]
    doc["form"]["schema"]["properties"]["appointment"] = {
        "type": "object",
        "properties": {"date": {"type": "string", "format": "date"}},
        "required": ["date"],
    }
    doc["form"]["schema"]["required"] = ["applicant", "appointment"]
    doc["form"]["ui"] = {"order": ["applicant.name", "appointment.date"]}
    return doc


def bundle(items: list[str], **over: Any) -> dict[str, Any]:
    doc = {
        "code": "YJS-TEST",
        "name": "结婚换证一件事",
        "region": "440100",
        "categories": ["marriage"],
        "keywords": ["结婚"],
        "items": items,
        "outcomes": ["结婚证", "居民身份证"],
    }
    doc.update(over)
    return doc


def document(
    *items: dict[str, Any], bundles: list[dict[str, Any]] | None = None, publish: bool = False
) -> dict:
    return {"reference": reference(), "items": list(items), "bundles": bundles or [], "publish": publish}
