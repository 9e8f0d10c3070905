"""Which shared dataset answers a form field, and which field of its record holds the value.

Source ids are the catalog's (domain/catalog/sources.py, `shared.*`); dataset ids are the
exchange's data items (SHARED_DATASETS). A path with dots walks into the record.
"""

from __future__ import annotations

from typing import Any

FIELD_SOURCES: dict[str, tuple[str, str]] = {
    "shared.hukou.address": ("hukou.household_register", "address"),
    "shared.hukou.household_head": ("hukou.household_register", "household_head"),
    "shared.hukou.relationship": ("hukou.household_register", "relationship"),
    "shared.hukou.ethnicity": ("hukou.household_register", "ethnicity"),
    "shared.residence.address": ("hukou.residence_permit", "address"),
    "shared.marriage.status": ("marriage.registration", "status"),
    "shared.marriage.spouse_name": ("marriage.registration", "spouse_name"),
    "shared.marriage.spouse_id_number": ("marriage.registration", "spouse_id_number"),
    "shared.marriage.registered_on": ("marriage.registration", "registered_on"),
    "shared.marriage.certificate_no": ("marriage.registration", "certificate_no"),
    "shared.marriage.registry_name": ("marriage.registration", "registry"),
    "shared.birth.child_name": ("birth.medical_certificate", "latest.child_name"),
    "shared.birth.child_birth_date": ("birth.medical_certificate", "latest.child_birth_date"),
    "shared.birth.certificate_no": ("birth.medical_certificate", "latest.certificate_no"),
    "shared.birth.hospital": ("birth.medical_certificate", "latest.hospital"),
    "shared.birth.child_gender": ("birth.medical_certificate", "latest.child_gender_code"),
    "shared.birth.child_id_number": ("birth.medical_certificate", "latest.child_id_number"),
    "shared.birth.mother_name": ("birth.medical_certificate", "latest.mother"),
    "shared.birth.mother_id_number": ("birth.medical_certificate", "latest.mother_id_number"),
    "shared.birth.father_name": ("birth.medical_certificate", "latest.father"),
    "shared.birth.father_id_number": ("birth.medical_certificate", "latest.father_id_number"),
    "shared.social_security.card_no": ("social_security.insurance_record", "card_no"),
    "shared.social_security.insured_city": ("social_security.insurance_record", "insured_city"),
    "shared.social_security.employer": ("social_security.insurance_record", "employer"),
    "shared.social_security.bank": ("social_security.insurance_record", "bank_code"),
    "shared.social_security.bank_account_no": ("social_security.insurance_record", "bank_account_no"),
    "shared.housing_fund.account_no": ("housing_fund.account", "account_no"),
    "shared.housing_fund.employer": ("housing_fund.account", "employer"),
    "shared.property.certificate_no": ("property.real_estate_register", "certificate_no"),
    "shared.education.school": ("education.student_status", "school"),
    "shared.business.name": ("market.business_registration", "name"),
    "shared.business.uscc": ("market.business_registration", "uscc"),
    "shared.business.address": ("market.business_registration", "address"),
}

# Values that must not be shown in full in responses (masked like the identity fields): source -> kind.
# Other people's names and ID numbers (the citizen's child, spouse, parents, household head) and
# account or card numbers: the view, its cache and any app reading the application get them masked.
SENSITIVE_SOURCES = {
    "shared.hukou.household_head": "name",
    "shared.marriage.spouse_id_number": "id_number",
    "shared.marriage.spouse_name": "name",
    "shared.birth.child_name": "name",
    "shared.birth.child_id_number": "id_number",
    "shared.birth.mother_name": "name",
    "shared.birth.mother_id_number": "id_number",
    "shared.birth.father_name": "name",
    "shared.birth.father_id_number": "id_number",
    "shared.social_security.card_no": "account",
    "shared.social_security.bank_account_no": "account",
    "shared.housing_fund.account_no": "account",
}

# Verified, but the citizen may choose otherwise (benefits paid to another card of their own).
EDITABLE_SOURCES = frozenset({"shared.social_security.bank", "shared.social_security.bank_account_no"})


def value_at(record: dict[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
