"""A seeded test population for the shared-data and e-certificate simulators.

Generated, not stored: the same seed gives the same people on every machine. Households of one
to six people share a household register (户口簿) and address; couples are married to each
other (both sides of the record agree); children have birth medical certificates naming their
parents; adults have jobs (social and medical insurance, sometimes a housing fund), some own a
home (a conditional record), a business (a valid USCC), a car licence, a passport. ID numbers
are valid GB 11643 numbers whose birth date and sex agree with the person. The demo identities
every real-name simulator knows (integrations/realname/people.py) head the first households, so a
citizen verified in `make run` finds their own records and certificates.

Records and certificates are fictitious, but shaped like the real thing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property
from typing import Any

from integrations.govdata.codes import id_check_char, uscc_check_char
from integrations.realname.people import DEMO_PEOPLE

DEFAULT_SIZE = 1200
DEFAULT_SEED = 20261204
TODAY = date(2026, 12, 1)  # the population's "now": ages and validity are computed against it

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷黎史龙陶贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍申尤毕聂柴焦向柳邢岳齐梅莫庄辛管祝左涂谷祁时舒耿牟卜路詹关苗凌费纪靳盛童欧甄项曲成游阳裴席卫查屈鲍位覃霍翁隋植甘景薄单包司柏宁柯阮桂闵解强"  # noqa: E501
MALE_CHARS = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林欢阳建国志成文博子轩宏"
FEMALE_CHARS = "芳娜敏静丽艳娟霞秀燕玲桂丹萍红玉兰凤洁梅琳素云莲真雪荣爱妹香月莹慧巧美娇婷欣怡悦诗雨"
ETHNICITIES = ("汉族",) * 18 + ("壮族", "回族", "满族", "土家族", "瑶族", "畲族")
DISTRICTS = {
    "440103": "荔湾区",
    "440104": "越秀区",
    "440105": "海珠区",
    "440106": "天河区",
    "440111": "白云区",
    "440112": "黄埔区",
    "440113": "番禺区",
    "440114": "花都区",
}
OTHER_REGIONS = {
    "430102": "湖南省长沙市芙蓉区",
    "360102": "江西省南昌市东湖区",
    "450103": "广西壮族自治区南宁市青秀区",
    "510104": "四川省成都市锦江区",
    "411302": "河南省南阳市宛城区",
    "350102": "福建省福州市鼓楼区",
    "110101": "北京市东城区",
    "310104": "上海市徐汇区",
    "650102": "新疆维吾尔自治区乌鲁木齐市天山区",
}
STREETS = (
    "中山大道",
    "天河路",
    "环市东路",
    "江南大道",
    "解放北路",
    "广州大道",
    "东风路",
    "工业大道",
    "黄埔大道",
    "新港西路",
    "沙河大街",
    "白云大道",
    "迎宾路",
    "龙口西路",
    "康王路",
)
HOSPITALS = (
    "广州市妇女儿童医疗中心",
    "广东省妇幼保健院",
    "中山大学附属第三医院",
    "广州医科大学附属第三医院",
    "南方医科大学南方医院",
    "广州市番禺区何贤纪念医院",
)
EMPLOYERS = (
    "广州市城市建设有限公司",
    "广州地铁集团有限公司",
    "广东南方数码科技有限公司",
    "广州白云山医药集团",
    "中国移动通信集团广东有限公司",
    "广州市天河区教育局",
    "广州农商银行",
    "广汽集团有限公司",
    "唯品会（中国）有限公司",
    "广州酒家集团股份有限公司",
)
SCHOOLS = {
    "primary": ("广州市天河区华阳小学", "广州市越秀区东风西路小学", "广州市海珠区实验小学"),
    "middle": ("广州市第二中学", "广东实验中学", "广州市执信中学"),
    "college": ("中山大学", "华南理工大学", "广州大学"),
}
BUSINESS_WORDS = (
    "便利店",
    "餐饮店",
    "五金商行",
    "文化传播有限公司",
    "科技有限公司",
    "服装店",
    "美发店",
    "贸易有限公司",
)


@dataclass
class Person:
    id_number: str
    name: str
    gender: str  # 男 / 女
    birth_date: date
    ethnicity: str
    household: Household
    relationship: str  # 户主, 配偶, 子, 女, 父亲, 母亲
    spouse: Person | None = None
    parents: list[Person] = field(default_factory=list)
    children: list[Person] = field(default_factory=list)
    divorced: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # employment, property, business, ...

    @property
    def age(self) -> int:
        b = self.birth_date
        return TODAY.year - b.year - ((TODAY.month, TODAY.day) < (b.month, b.day))

    @property
    def adult(self) -> bool:
        return self.age >= 18


@dataclass
class Household:
    number: str  # 户号
    region: str  # GB/T 2260 code of the registering police station's district
    address: str
    local: bool  # registered in Guangzhou (else the members live here on a residence permit)
    residence: str  # where the household lives
    members: list[Person] = field(default_factory=list)

    @property
    def head(self) -> Person:
        return self.members[0]


class Population:
    """`people` by ID number; `households` in order. Deterministic for a given seed and size."""

    def __init__(self, size: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED) -> None:
        self.rng = random.Random(seed)
        self.people: dict[str, Person] = {}
        self.households: list[Household] = []
        self._serial = 0
        demo = list(DEMO_PEOPLE)
        while len(self.people) < size:
            self._household(demo.pop(0) if demo else None)

    # --- generation ---------------------------------------------------------------------------

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _id_number(self, region: str, birth: date, male: bool) -> str:
        while True:
            seq = self.rng.randrange(0, 100) * 10 + self.rng.choice(
                (1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8)
            )
            first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
            number = first17 + id_check_char(first17)
            if number not in self.people:
                return number

    def _name(self, male: bool, surname: str | None = None) -> str:
        chars = MALE_CHARS if male else FEMALE_CHARS
        given = self.rng.choice(chars) + (self.rng.choice(chars) if self.rng.random() < 0.7 else "")
        return (surname or self.rng.choice(SURNAMES)) + given

    def _birth(self, low: int, high: int) -> date:
        return TODAY - timedelta(days=self.rng.randrange(low * 365, high * 365 + 1))

    def _person(
        self,
        hh: Household,
        relationship: str,
        *,
        male: bool,
        birth: date,
        name: str | None = None,
        id_number: str | None = None,
        region: str | None = None,
    ) -> Person:
        number = id_number or self._id_number(region or hh.region, birth, male)
        person = Person(
            id_number=number,
            name=name or self._name(male),
            gender="男" if male else "女",
            birth_date=birth,
            ethnicity=self.rng.choice(ETHNICITIES),
            household=hh,
            relationship=relationship,
        )
        hh.members.append(person)
        self.people[number] = person
        return person

    def _address(self, district: str) -> str:
        return f"广东省广州市{district}{self.rng.choice(STREETS)}{self.rng.randrange(1, 999)}号{self.rng.randrange(1, 30)}0{self.rng.randrange(1, 9)}房"  # noqa: E501

    def _household(self, demo: tuple[str, str] | None) -> None:
        rng = self.rng
        district_code = rng.choice(list(DISTRICTS))
        if demo is not None:
            region = demo[1][:6]
        else:
            region = district_code if rng.random() < 0.75 else rng.choice(list(OTHER_REGIONS))
        local = region.startswith("4401")
        residence = self._address(DISTRICTS[district_code])
        hukou = (
            residence
            if local
            else f"{OTHER_REGIONS.get(region, '外省')}{rng.choice(STREETS)}{rng.randrange(1, 300)}号"
        )
        hh = Household(
            number=f"{region}{self._next_serial():07d}",
            region=region,
            address=hukou,
            local=local,
            residence=residence,
        )
        self.households.append(hh)
        if demo is not None:
            name, number = demo
            birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
            head = self._person(
                hh, "户主", male=int(number[16]) % 2 == 1, birth=birth, name=name, id_number=number
            )
        else:
            head = self._person(hh, "户主", male=rng.random() < 0.55, birth=self._birth(22, 80))
        self._family(hh, head)
        self._extras(hh)

    def _family(self, hh: Household, head: Person) -> None:
        rng = self.rng
        if head.age >= 23 and rng.random() < 0.78:
            male = head.gender == "女"
            spouse_birth = head.birth_date + timedelta(days=rng.randrange(-5 * 365, 5 * 365))
            spouse = self._person(
                hh,
                "配偶",
                male=male,
                birth=min(spouse_birth, TODAY - timedelta(days=22 * 365)),
                region=hh.region if rng.random() < 0.6 else rng.choice(list(DISTRICTS)),
            )
            head.spouse, spouse.spouse = spouse, head
            youngest_parent = min(head.age, spouse.age)
            father = head if head.gender == "男" else spouse
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3)) if youngest_parent >= 24 else 0):
                max_age = min(youngest_parent - 22, 30)
                if max_age < 0:
                    break
                male = rng.random() < 0.52
                child = self._person(
                    hh,
                    "子" if male else "女",
                    male=male,
                    birth=self._birth(0, max_age),
                    name=self._name(male, father.name[0]),
                )
                child.parents = [head, spouse]
                head.children.append(child)
                spouse.children.append(child)
        elif head.age >= 30 and rng.random() < 0.3:
            head.divorced = True
        if head.age < 45 and rng.random() < 0.15:  # a widowed parent living with the family
            male = rng.random() < 0.4
            self._person(
                hh, "父亲" if male else "母亲", male=male, birth=self._birth(head.age + 22, head.age + 35)
            )

    def _extras(self, hh: Household) -> None:
        rng = self.rng
        for p in hh.members:
            if 18 <= p.age < 62 and rng.random() < 0.85:
                p.extra["employer"] = rng.choice(EMPLOYERS)
                p.extra["insured_since"] = TODAY.replace(
                    year=TODAY.year - rng.randrange(1, min(p.age - 17, 35) + 1)
                )
                if rng.random() < 0.6:
                    p.extra["housing_fund"] = f"{rng.randrange(10**11, 10**12)}"
            elif p.age >= 62 and rng.random() < 0.8:
                p.extra["retired"] = True
                p.extra["insured_since"] = date(1998, 7, 1)
            if 6 <= p.age <= 22:
                level = "primary" if p.age <= 12 else "middle" if p.age <= 18 else "college"
                p.extra["school"] = rng.choice(SCHOOLS[level])
                p.extra["student_no"] = f"G{p.id_number[:6]}{rng.randrange(10**7, 10**8)}"
            if p.adult and rng.random() < 0.55:
                p.extra["driving"] = rng.choices(("01", "02", "07"), (0.92, 0.05, 0.03))[0]
            if p.adult and rng.random() < 0.3:
                p.extra["passport"] = rng.choices(("01", "05"), (0.8, 0.2))[0]
            if p.adult and rng.random() < 0.1:
                status = rng.choices(("01", "07", "04"), (0.85, 0.1, 0.05))[0]
                first17 = f"92440{rng.choice(list(DISTRICTS))[3:]}MA{rng.randrange(10**7, 10**8)}"
                first17 = first17[:17].replace("I", "1").replace("O", "0")
                p.extra["business"] = {
                    "uscc": first17 + uscc_check_char(first17),
                    "status": status,
                    "name": f"广州市{DISTRICTS[rng.choice(list(DISTRICTS))][:2]}区{p.name}{rng.choice(BUSINESS_WORDS)}",  # noqa: E501
                }
            if p.age >= 16 and rng.random() < 0.02:
                p.extra["disability"] = rng.choice(("视力残疾", "肢体残疾", "听力残疾"))
            if p.adult and rng.random() < 0.03:
                p.extra["subsistence"] = True
        head = hh.head
        if hh.local and rng.random() < 0.45:
            head.extra["property"] = {
                "certificate_no": f"粤（{rng.randrange(2008, 2026)}）广州市不动产权第{rng.randrange(10**6, 10**7)}号",  # noqa: E501
                "address": hh.residence,
                "area": f"{rng.randrange(45, 160)}.{rng.randrange(10, 99)}",
            }
        if rng.random() < 0.1:
            head.extra["housing_contract"] = f"HT{TODAY.year}{rng.randrange(10**7, 10**8)}"

    # --- lookups ------------------------------------------------------------------------------

    def get(self, id_number: str) -> Person | None:
        return self.people.get((id_number or "").upper())

    @cached_property
    def ids(self) -> list[str]:
        return list(self.people)
