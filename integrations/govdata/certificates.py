"""The e-certificates of the seeded population (GB/T 36901 identifiers, states and validity).

A person's list holds what they hold themselves and, for their minor children, the children's
birth medical and vaccination certificates (a parent applies for them). A few certificates are
seeded in every non-valid state, so a test finds a suspended driving licence, a revoked business
licence, an expired passport; the simulator's control API changes any state at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from integrations.govdata.codes import ecert_identifier
from integrations.govdata.population import TODAY, Person, Population
from integrations.govdata.records import record

STATES = {"01": "有效", "02": "暂扣", "03": "撤销", "04": "注销", "05": "失效", "07": "吊销"}

# type code -> (name, issuing authority, issuer USCC used in identifiers)
TYPES: dict[str, tuple[str, str, str]] = {
    "11100000000019713D001": ("居民身份证", "广州市公安局", "11440100007502318X"),
    "11100000000019713D002": ("居民户口簿", "广州市公安局", "11440100007502318X"),
    "11100000000019713D003": ("机动车驾驶证", "广州市公安局交通警察支队", "11440100007502318X"),
    "11100000000019713D004": ("居住证", "广州市公安局", "11440100007502318X"),
    "11100000000014354R001": ("中华人民共和国普通护照", "国家移民管理局", "11100000MB1839443Y"),
    "11100000000014354R002": ("往来港澳通行证", "国家移民管理局", "11100000MB1839443Y"),
    "11100000000014286D001": ("结婚证", "广州市民政局", "11440100006941017M"),
    "11100000000014286D002": ("离婚证", "广州市民政局", "11440100006941017M"),
    "11100000000014303H001": ("出生医学证明", "广州市卫生健康委员会", "114401000076519498"),
    "11100000000014303H002": ("预防接种证", "广州市卫生健康委员会", "114401000076519498"),
    "11100000000014303H003": ("老年人优待证", "广州市卫生健康委员会", "114401000076519498"),
    "11100000000014295B001": ("社会保障卡", "广州市人力资源和社会保障局", "11440100MB2C920708"),
    "11100000000014295B002": ("就业创业证", "广州市人力资源和社会保障局", "11440100MB2C920708"),
    "111000000000143384001": ("医保电子凭证", "广州市医疗保障局", "11440100MB2C7541XQ"),
    "11100000000014311C001": ("营业执照", "广州市市场监督管理局", "11440100007502691H"),
    "11100000000014320A001": ("不动产权证书", "广州市规划和自然资源局", "11440100007502407F"),
    "11100000000014346Y001": ("学生证", "广州市教育局", "11440100007502392K"),
    "13100000000014362E001": ("中华人民共和国残疾人证", "广州市残疾人联合会", "51440100455856386H"),
}


@dataclass
class Certificate:
    identifier: str
    type_code: str
    holder_id: str  # ID number of the person the certificate is about
    holder_name: str
    number: str  # the number printed on the certificate
    issued_on: date
    valid_until: date | None
    state: str
    data: dict[str, Any] = field(default_factory=dict)
    guardians: tuple[str, ...] = ()  # who else may list it (parents of a minor)

    @property
    def type_name(self) -> str:
        return TYPES[self.type_code][0]

    @property
    def issuer(self) -> str:
        return TYPES[self.type_code][1]

    def summary(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "type_code": self.type_code,
            "type_name": self.type_name,
            "issuer": self.issuer,
            "holder_name": self.holder_name,
            "holder_id_number": self.holder_id,
            "number": self.number,
            "issued_on": self.issued_on.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "state": self.state,
            "state_name": STATES[self.state],
        }


class CertificateRegistry:
    """Every certificate of a population, by identifier and by holder (or guardian)."""

    def __init__(self, population: Population) -> None:
        self.by_id: dict[str, Certificate] = {}
        self.by_person: dict[str, list[str]] = {}
        for person in population.people.values():
            for cert in _issue(person):
                self.by_id[cert.identifier] = cert
                for who in (cert.holder_id, *cert.guardians):
                    self.by_person.setdefault(who, []).append(cert.identifier)

    def of(self, id_number: str) -> list[Certificate]:
        return [self.by_id[i] for i in self.by_person.get(id_number.upper(), [])]


def _plus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def _issue(p: Person) -> list[Certificate]:
    out: list[Certificate] = []
    seq = int(p.id_number[6:17]) % 10**9

    def add(
        type_code: str,
        number: str,
        issued: date,
        years: int | None,
        state: str = "01",
        data: dict[str, Any] | None = None,
        guardians: tuple[str, ...] = (),
    ) -> None:
        valid_until = _plus_years(issued, years) if years else None
        if state == "01" and valid_until is not None and valid_until < TODAY:
            state = "05"  # past its validity: 失效
        # The person's whole ID number keeps serials apart between people (the region included).
        serial = f"{issued:%Y}{len(out):02d}{p.id_number[:17]}"
        identifier = ecert_identifier(type_code, TYPES[type_code][2], serial)
        out.append(
            Certificate(
                identifier,
                type_code,
                p.id_number,
                p.name,
                number,
                issued,
                valid_until,
                state,
                data or {},
                guardians,
            )
        )

    def issued(years_ago: int) -> date:
        return max(p.birth_date, TODAY - timedelta(days=365 * years_ago + seq % 300))

    base = {"name": p.name, "gender": p.gender, "birth_date": p.birth_date.isoformat()}
    if p.age >= 16:
        years = 10 if p.age < 26 else 20 if p.age < 46 else None
        add(
            "11100000000019713D001",
            p.id_number,
            issued(seq % 9),
            years,
            data=base | {"ethnicity": p.ethnicity, "address": p.household.address},
        )
    hukou = record(p, "hukou.household_register")
    add(
        "11100000000019713D002",
        p.household.number,
        issued(6),
        None,
        data={k: hukou[k] for k in ("household_number", "address", "household_head", "relationship")},
    )
    if not p.household.local and p.adult:
        add(
            "11100000000019713D004",
            f"4401{p.id_number[-8:]}",
            issued(1),
            2,
            data=base | {"address": p.household.residence},
        )
    if "driving" in p.extra:
        add("11100000000019713D003", p.id_number, issued(4), 6, p.extra["driving"], base | {"class": "C1"})
    if "passport" in p.extra:
        add(
            "11100000000014354R001",
            f"E{seq % 10**8:08d}",
            issued(3 if p.extra["passport"] == "01" else 12),
            10,
        )
    if p.adult and ("passport" in p.extra or seq % 4 == 0):
        add("11100000000014354R002", f"C{seq % 10**8:08d}", issued(2 + seq % 7), 10)
    if 18 <= p.age < 60 and "employer" not in p.extra:
        add("11100000000014295B002", f"4401{p.id_number[-10:]}", issued(1 + seq % 3), None)  # job seeker
    marriage = record(p, "marriage.registration")
    if marriage and marriage["status"] == "已婚":
        add(
            "11100000000014286D001",
            marriage["certificate_no"],
            date.fromisoformat(marriage["registered_on"]),
            None,
            data={k: marriage[k] for k in ("spouse_name", "registered_on", "registry")},
        )
    elif marriage:
        add(
            "11100000000014286D002",
            marriage["certificate_no"],
            date.fromisoformat(marriage["registered_on"]),
            None,
        )
    if p.birth_date.year >= 1996:
        guardians = tuple(x.id_number for x in p.parents) if p.age < 18 else ()
        add(
            "11100000000014303H001",
            f"Q44{p.id_number[-9:-1]}",
            p.birth_date,
            None,
            data=base | {"mother": next((x.name for x in p.parents if x.gender == "女"), None)},
            guardians=guardians,
        )
        if p.age <= 14:
            add("11100000000014303H002", f"YM{p.id_number[-10:]}", p.birth_date, None, guardians=guardians)
    if p.age >= 60:
        add("11100000000014303H003", f"YD{p.id_number[-10:]}", issued(1), None)
    if "insured_since" in p.extra:
        add("11100000000014295B001", f"44{p.id_number[-7:]}", issued(seq % 9), 10)  # reissued every 10 years
        add("111000000000143384001", f"44{p.id_number[:16]}", p.extra["insured_since"], None)
    if "business" in p.extra:
        b = p.extra["business"]
        add(
            "11100000000014311C001",
            b["uscc"],
            issued(5),
            None,
            b["status"],
            {"name": b["name"], "uscc": b["uscc"]},
        )
    if "property" in p.extra:
        pr = p.extra["property"]
        add("11100000000014320A001", pr["certificate_no"], issued(7), None, data=dict(pr))
    if "school" in p.extra:
        add("11100000000014346Y001", p.extra["student_no"], issued(1), 4, data={"school": p.extra["school"]})
    if "disability" in p.extra:
        add(
            "13100000000014362E001",
            f"{p.id_number}4{2 if '肢体' in p.extra['disability'] else 1}",
            issued(2),
            10,
        )
    if out and seq % 97 == 0:
        out[-1].state = "03"  # a few certificates were revoked after issue (撤销)
    return out
