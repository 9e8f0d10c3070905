"""What the data-sharing exchange answers for each data item, from the seeded population.

`record(population, person, dataset)` returns the record (a dict of fields) or None for "no
record". Field names are the exchange's; yiwang maps them onto its prefill sources.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from integrations.govdata.population import HOSPITALS, TODAY, Person

# Records the owning department must approve first ("有条件共享": 3 working days to review,
# 10 to approve). The simulator answers "pending" with a ticket, then the record or a refusal.
CONDITIONAL = frozenset(
    {"property.real_estate_register", "tax.individual_income", "civil_affairs.subsistence"}
)


def _hukou(p: Person) -> dict[str, Any]:
    hh = p.household
    return {
        "household_number": hh.number,
        "address": hh.address,
        "household_head": hh.head.name,
        "relationship": p.relationship,
        "name": p.name,
        "gender": p.gender,
        "ethnicity": p.ethnicity,
        "birth_date": p.birth_date.isoformat(),
        "registered_region": hh.region,
        "members": [{"name": m.name, "relationship": m.relationship} for m in hh.members],
    }


def _residence(p: Person) -> dict[str, Any] | None:
    if p.household.local:
        return None
    return {
        "permit_no": f"4401{p.id_number[-8:]}",
        "address": p.household.residence,
        "valid_until": (TODAY + timedelta(days=365 * 2)).isoformat(),
    }


def _marriage(p: Person) -> dict[str, Any] | None:
    if p.spouse is not None:
        s = p.spouse
        # Registered at 24 or so, and never after the population's "now".
        year = min(max(p.birth_date.year, s.birth_date.year) + 24, TODAY.year - 1)
        return {
            "status": "已婚",
            "spouse_name": s.name,
            "spouse_id_number": s.id_number,
            "certificate_no": f"J4401{year}{p.household.number[-6:]}",
            "registered_on": f"{year}-05-20",
            "registry": "广州市婚姻登记处",
        }
    if p.divorced:
        return {
            "status": "离婚",
            "certificate_no": f"L4401{p.household.number[-8:]}",
            "registered_on": "2019-03-12",
            "registry": "广州市婚姻登记处",
        }
    return None  # never married: no marriage registration record


def _birth(p: Person) -> dict[str, Any] | None:
    if not p.children:
        return None
    kids = sorted(p.children, key=lambda c: c.birth_date, reverse=True)

    def one(c: Person) -> dict[str, Any]:
        mother = next((x for x in c.parents if x.gender == "女"), None)
        father = next((x for x in c.parents if x.gender == "男"), None)
        return {
            "child_name": c.name,
            "child_gender": c.gender,
            "child_gender_code": "1" if c.gender == "男" else "2",  # GB/T 2261.1
            "child_id_number": c.id_number,
            "child_birth_date": c.birth_date.isoformat(),
            "certificate_no": f"Q44{c.id_number[-9:-1]}",
            "hospital": HOSPITALS[int(c.id_number[-4:-1]) % len(HOSPITALS)],
            "mother": mother.name if mother else None,
            "mother_id_number": mother.id_number if mother else None,
            "father": father.name if father else None,
            "father_id_number": father.id_number if father else None,
        }

    return {"latest": one(kids[0]), "children": [one(c) for c in kids]}


SS_CARD_BANKS = ("icbc", "abc", "boc", "ccb", "gzrcb", "gzcb")  # the banks issuing Guangzhou's cards


def _social(p: Person) -> dict[str, Any] | None:
    if "insured_since" not in p.extra:
        return None
    return {
        "card_no": f"44{p.id_number[-7:]}",
        "insured_city": "广州市",
        "since": p.extra["insured_since"].isoformat(),
        "status": "退休" if p.extra.get("retired") else "参保缴费",
        "employer": p.extra.get("employer"),
        # The card's financial account (社保卡金融账户), where benefits are paid by default.
        "bank_code": SS_CARD_BANKS[int(p.id_number[-5:-1]) % len(SS_CARD_BANKS)],
        "bank_account_no": f"6217{int(p.id_number[6:17]) % 10**15:015d}",
    }


def _medical(p: Person) -> dict[str, Any] | None:
    base = _social(p)
    if base is None and p.age >= 18:
        return None
    return {
        "insured_city": "广州市",
        "type": "城乡居民" if base is None or p.age < 18 else "职工",
        "status": "正常参保",
    }


def _housing_fund(p: Person) -> dict[str, Any] | None:
    if "housing_fund" not in p.extra:
        return None
    return {
        "account_no": p.extra["housing_fund"],
        "employer": p.extra["employer"],
        "status": "正常缴存",
        "monthly_amount": f"{1200 + int(p.id_number[-4:-1]) * 3}.00",
    }


def _property(p: Person) -> dict[str, Any] | None:
    prop = p.extra.get("property") or (p.spouse.extra.get("property") if p.spouse else None)
    return dict(prop, owner=p.household.head.name) if prop else None


def _contract(p: Person) -> dict[str, Any] | None:
    no = p.household.head.extra.get("housing_contract")
    return {"contract_no": no, "buyer": p.household.head.name, "filed_on": "2025-08-16"} if no else None


def _tax(p: Person) -> dict[str, Any] | None:
    if "employer" not in p.extra:
        return None
    return {
        "year": TODAY.year - 1,
        "withholder": p.extra["employer"],
        "taxable_income": f"{60000 + int(p.id_number[-5:-1]) * 7}.00",
    }


def _minor_child(p: Person, test: Callable[[Person], bool]) -> Person | None:
    """A parent asks for their child's record (school, vaccination): the youngest that has one."""
    kids = sorted((c for c in p.children if c.age < 18 and test(c)), key=lambda c: c.birth_date, reverse=True)
    return kids[0] if kids else None


def _education(p: Person) -> dict[str, Any] | None:
    who = p if "school" in p.extra else _minor_child(p, lambda c: "school" in c.extra)
    if who is None:
        return None
    return {
        "student_name": who.name,
        "school": who.extra["school"],
        "student_no": who.extra["student_no"],
        "status": "在读",
    }


def _business(p: Person) -> dict[str, Any] | None:
    b = p.extra.get("business")
    if not b:
        return None
    status = {"01": "存续", "07": "吊销", "04": "注销"}[b["status"]]
    return {
        "name": b["name"],
        "uscc": b["uscc"],
        "legal_representative": p.name,
        "status": status,
        "registered_on": "2021-06-18",
        "address": p.household.residence,
    }


def _subsistence(p: Person) -> dict[str, Any] | None:
    return (
        {"status": "在保", "since": "2024-01-01", "monthly_amount": "1210.00"}
        if p.extra.get("subsistence")
        else None
    )


def _vaccination(p: Person) -> dict[str, Any] | None:
    who = p if p.age <= 14 else _minor_child(p, lambda c: c.age <= 14)
    if who is None:
        return None
    return {
        "name": who.name,
        "vaccination_card_no": f"YM{who.id_number[-10:]}",
        "doses": min(24, 8 + who.age * 2),
        "up_to_date": True,
    }


def _death(p: Person) -> dict[str, Any] | None:
    return None  # every member of the test population is alive


RECORDS: dict[str, Callable[[Person], dict[str, Any] | None]] = {
    "hukou.household_register": _hukou,
    "hukou.residence_permit": _residence,
    "marriage.registration": _marriage,
    "birth.medical_certificate": _birth,
    "family_planning.birth_registration": _birth,
    "social_security.insurance_record": _social,
    "medical_insurance.record": _medical,
    "housing_fund.account": _housing_fund,
    "property.real_estate_register": _property,
    "property.housing_contract": _contract,
    "tax.individual_income": _tax,
    "education.student_status": _education,
    "market.business_registration": _business,
    "civil_affairs.subsistence": _subsistence,
    "health.vaccination": _vaccination,
    "death.medical_certificate": _death,
}


def record(person: Person, dataset: str) -> dict[str, Any] | None:
    return RECORDS[dataset](person)
