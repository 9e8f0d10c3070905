"""Where data can come from instead of the citizen: prefill sources and shared-data datasets.

A form field bound to a prefill source is filled from the verified identity, the account or a
shared-data exchange (issue: shared government data); a material listing a shared-data dataset
or an e-certificate type needs no upload. Imports refuse anything not listed here, so a typo
cannot silently turn a prefilled field into one the citizen has to type.
"""

from __future__ import annotations

# source id -> (zh, en). identity.* come from real-name verification, account.* from the
# account, shared.* from the government data-sharing exchange.
PREFILL_SOURCES: dict[str, tuple[str, str]] = {
    "identity.name": ("姓名（实名认证）", "Name (verified identity)"),
    "identity.id_number": ("身份证号（实名认证）", "ID number (verified identity)"),
    "identity.gender": ("性别（实名认证）", "Gender (verified identity)"),
    "identity.birth_date": ("出生日期（实名认证）", "Date of birth (verified identity)"),
    "account.phone": ("手机号码", "Mobile phone"),
    "shared.hukou.address": ("户籍地址", "Household registration address"),
    "shared.hukou.household_head": ("户主姓名", "Head of household"),
    "shared.hukou.relationship": ("与户主关系", "Relationship to head of household"),
    "shared.hukou.ethnicity": ("民族", "Ethnicity"),
    "shared.residence.address": ("居住地址", "Residential address"),
    "shared.marriage.status": ("婚姻状况", "Marital status"),
    "shared.marriage.spouse_name": ("配偶姓名", "Spouse's name"),
    "shared.marriage.spouse_id_number": ("配偶身份证号", "Spouse's ID number"),
    "shared.marriage.registered_on": ("结婚登记日期", "Date the marriage was registered"),
    "shared.marriage.certificate_no": ("结婚证字号", "Marriage certificate number"),
    "shared.marriage.registry_name": ("婚姻登记机关", "Marriage registry"),
    "shared.birth.child_name": ("新生儿姓名", "Newborn's name"),
    "shared.birth.child_birth_date": ("新生儿出生日期", "Newborn's date of birth"),
    "shared.birth.certificate_no": ("出生医学证明编号", "Birth certificate number"),
    "shared.birth.hospital": ("出生医院", "Hospital of birth"),
    "shared.birth.child_gender": ("新生儿性别（GB/T 2261.1 代码）", "Newborn's sex (GB/T 2261.1 code)"),
    "shared.birth.child_id_number": ("子女公民身份号码", "Child's ID number"),
    "shared.birth.mother_name": ("母亲姓名", "Mother's name"),
    "shared.birth.mother_id_number": ("母亲公民身份号码", "Mother's ID number"),
    "shared.birth.father_name": ("父亲姓名", "Father's name"),
    "shared.birth.father_id_number": ("父亲公民身份号码", "Father's ID number"),
    "shared.social_security.card_no": ("社会保障卡号", "Social security card number"),
    "shared.social_security.insured_city": ("参保地", "Insured city"),
    "shared.social_security.employer": ("参保单位", "Insuring employer"),
    "shared.social_security.bank": ("社保卡开户银行", "Bank of the social security card"),
    "shared.social_security.bank_account_no": ("社保卡金融账号", "Social security card's bank account"),
    "shared.housing_fund.account_no": ("住房公积金账号", "Housing fund account"),
    "shared.housing_fund.employer": ("公积金缴存单位", "Housing fund employer"),
    "shared.property.certificate_no": ("不动产权证书号", "Real estate certificate number"),
    "shared.education.school": ("就读学校", "School"),
    "shared.business.name": ("市场主体名称", "Business name"),
    "shared.business.uscc": ("统一社会信用代码", "Unified social credit code"),
    "shared.business.address": ("经营场所", "Business premises"),
}

# dataset id -> (zh, en): shared data that can stand in for a material.
SHARED_DATASETS: dict[str, tuple[str, str]] = {
    "hukou.household_register": ("户籍信息", "Household registration record"),
    "hukou.residence_permit": ("居住登记信息", "Residence registration record"),
    "marriage.registration": ("婚姻登记信息", "Marriage registration record"),
    "birth.medical_certificate": ("出生医学证明信息", "Birth medical certificate record"),
    "family_planning.birth_registration": ("生育登记信息", "Birth registration record"),
    "social_security.insurance_record": ("社会保险参保信息", "Social insurance record"),
    "medical_insurance.record": ("医疗保险参保信息", "Medical insurance record"),
    "housing_fund.account": ("住房公积金缴存信息", "Housing fund account record"),
    "property.real_estate_register": ("不动产登记信息", "Real estate register"),
    "property.housing_contract": ("商品房网签备案信息", "Housing sale contract filing"),
    "tax.individual_income": ("个人所得税纳税信息", "Individual income tax record"),
    "education.student_status": ("学籍信息", "Student status record"),
    "market.business_registration": ("市场主体登记信息", "Business registration record"),
    "civil_affairs.subsistence": ("低保救助信息", "Subsistence allowance record"),
    "health.vaccination": ("预防接种信息", "Vaccination record"),
    "death.medical_certificate": ("死亡医学证明信息", "Death medical certificate record"),
}
