"""The seeded population, its records and its certificates: consistent, complete and deterministic."""

from __future__ import annotations

from datetime import date

import pytest

from integrations.govdata.certificates import STATES, TYPES, CertificateRegistry
from integrations.govdata.codes import ecert_identifier_problem, ecert_type_of, id_check_char
from integrations.govdata.population import TODAY, Population
from integrations.govdata.records import CONDITIONAL, RECORDS, record
from integrations.realname.people import DEMO_PEOPLE

CHILD = ("子", "女")


def members(population):
    return [m for hh in population.households for m in hh.members]


def test_at_least_a_thousand_people_all_in_a_household(population):
    people = members(population)
    assert len(population.people) >= 1000
    # Nobody is lost: every household member is the person the population has under that number.
    assert len(people) == len(population.people)
    assert all(population.people[m.id_number] is m for m in people)
    assert all(m.household is hh for hh in population.households for m in hh.members)


def test_id_numbers_are_valid_unique_and_agree_with_the_person(population):
    numbers = [m.id_number for m in members(population)]
    assert len(numbers) == len(set(numbers))
    for p in population.people.values():
        n = p.id_number
        assert len(n) == 18 and n[:17].isascii() and n[:17].isdigit(), n
        assert id_check_char(n[:17]) == n[17], n
        assert date(int(n[6:10]), int(n[10:12]), int(n[12:14])) == p.birth_date, n
        assert p.gender == ("男" if int(n[16]) % 2 == 1 else "女"), n
        assert p.birth_date <= TODAY
        assert population.get(n.lower()) is p  # lookups ignore the case of a trailing x


def test_spouses_are_reciprocal(population):
    married = [p for p in population.people.values() if p.spouse is not None]
    assert len(married) > 100
    for p in married:
        assert p.spouse.spouse is p
        assert p.spouse is not p and p.spouse.gender != p.gender
        assert p.adult and p.spouse.adult
        assert not p.divorced


def test_household_members_share_the_household_address(population):
    for hh in population.households:
        assert 1 <= len(hh.members) <= 6
        assert hh.head.relationship == "户主"
        registers = [record(m, "hukou.household_register") for m in hh.members]
        assert {r["address"] for r in registers} == {hh.address}
        assert {r["household_number"] for r in registers} == {hh.number}
        assert {r["household_head"] for r in registers} == {hh.head.name}


def test_children_list_both_parents(population):
    children = [p for p in population.people.values() if p.relationship in CHILD]
    assert len(children) > 100
    for child in children:
        assert len(child.parents) == 2
        father, mother = sorted(child.parents, key=lambda x: x.gender != "男")
        assert (father.gender, mother.gender) == ("男", "女")
        assert father.spouse is mother
        for parent in child.parents:
            assert child in parent.children
            assert parent.household is child.household
            assert parent.age - child.age >= 18
    # and the other way round: whoever is listed as a child names that parent
    for p in population.people.values():
        assert all(p in c.parents for c in p.children)


@pytest.mark.parametrize(("index", "demo"), list(enumerate(DEMO_PEOPLE)))
def test_demo_people_head_the_first_households(population, index, demo):
    name, number = demo
    person = population.get(number)
    assert person is not None and person.name == name
    assert population.households[index].head is person


def test_the_same_seed_gives_the_same_population():
    first, second = Population(), Population()
    assert [(p.id_number, p.name) for p in first.people.values()] == [
        (p.id_number, p.name) for p in second.people.values()
    ]
    assert [hh.address for hh in first.households] == [hh.address for hh in second.households]
    assert list(CertificateRegistry(first).by_id) == list(CertificateRegistry(second).by_id)
    other = Population(seed=1)
    assert [p.id_number for p in other.people.values()] != list(first.people)


# --- records -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", [d for d in RECORDS if d != "death.medical_certificate"])
def test_some_people_have_a_record_and_some_do_not(population, dataset):
    have = [p for p in population.people.values() if record(p, dataset) is not None]
    assert have, f"nobody has a {dataset} record"
    if dataset == "hukou.household_register":
        # Every member of the population is registered in a household; "no record" is an outsider.
        assert len(have) == len(population.people)
    else:
        assert len(have) < len(population.people), f"everybody has a {dataset} record"


def test_nobody_has_a_death_record(population):
    assert all(record(p, "death.medical_certificate") is None for p in population.people.values())


def test_conditional_datasets_are_datasets():
    assert CONDITIONAL <= set(RECORDS)
    assert "property.real_estate_register" in CONDITIONAL


def test_marriage_records_of_a_couple_agree(population):
    for p in population.people.values():
        if p.spouse is None:
            continue
        mine, theirs = record(p, "marriage.registration"), record(p.spouse, "marriage.registration")
        assert mine["status"] == theirs["status"] == "已婚"
        assert mine["spouse_id_number"] == p.spouse.id_number and theirs["spouse_id_number"] == p.id_number
        assert mine["certificate_no"] == theirs["certificate_no"]
        assert mine["registered_on"] == theirs["registered_on"]


def test_birth_records_name_both_parents(population):
    parent = next(p for p in population.people.values() if len(p.children) >= 2)
    rec = record(parent, "birth.medical_certificate")
    assert {c["child_name"] for c in rec["children"]} == {c.name for c in parent.children}
    youngest = max(parent.children, key=lambda c: c.birth_date)
    assert rec["latest"]["child_name"] == youngest.name
    for c in rec["children"]:
        kid = next(k for k in parent.children if k.name == c["child_name"])
        assert c["child_birth_date"] == kid.birth_date.isoformat()
        assert {c["father"], c["mother"]} == {x.name for x in kid.parents}


# --- certificates ------------------------------------------------------------------------------


@pytest.mark.parametrize("type_code", list(TYPES))
def test_every_certificate_type_has_a_valid_certificate(registry, type_code):
    assert any(c.type_code == type_code and c.state == "01" for c in registry.by_id.values())


@pytest.mark.parametrize("state", ["02", "03", "04", "05", "07"])
def test_every_non_valid_state_occurs(registry, state):
    assert any(c.state == state for c in registry.by_id.values())
    assert state in STATES


def test_every_identifier_is_well_formed_and_matches_its_certificate(registry):
    assert len(registry.by_id) > 1000
    for identifier, cert in registry.by_id.items():
        assert ecert_identifier_problem(identifier) is None, identifier
        assert ecert_type_of(identifier) == cert.type_code
        assert identifier.split(".")[6] == TYPES[cert.type_code][2]  # the issuer's code
        assert cert.state in STATES


def test_no_certificate_past_its_validity_is_valid(registry):
    expired = [c for c in registry.by_id.values() if c.valid_until is not None and c.valid_until < TODAY]
    assert expired, "the seed has expired certificates (passports)"
    assert all(c.state != "01" for c in expired)


def test_nothing_is_issued_or_registered_after_today(population, registry):
    future = [c for c in registry.by_id.values() if c.issued_on > TODAY]
    assert future == []
    for p in population.people.values():
        marriage = record(p, "marriage.registration")
        assert marriage is None or date.fromisoformat(marriage["registered_on"]) <= TODAY


def test_a_list_holds_only_the_persons_own_and_their_minor_childrens_certificates(population, registry):
    for p in population.people.values():
        for cert in registry.of(p.id_number):
            if cert.holder_id != p.id_number:
                child = population.get(cert.holder_id)
                assert child in p.children and child.age < 18
                assert cert.type_code in ("11100000000014303H001", "11100000000014303H002")
                assert p.id_number in cert.guardians


def test_parents_list_their_minor_childrens_birth_and_vaccination_certificates(population, registry):
    checked = 0
    for child in population.people.values():
        if child.relationship not in CHILD or child.age > 14:
            continue
        for parent in child.parents:
            types = {c.type_code for c in registry.of(parent.id_number) if c.holder_id == child.id_number}
            assert types == {"11100000000014303H001", "11100000000014303H002"}
            checked += 1
    assert checked > 50


def test_a_persons_own_certificates_agree_with_their_records(population, registry):
    for p in population.people.values():
        own = [c for c in registry.of(p.id_number) if c.holder_id == p.id_number]
        assert all(c.holder_name == p.name for c in own)
        types = {c.type_code for c in own}
        assert "11100000000019713D002" in types  # everyone is in a household register
        assert ("11100000000019713D001" in types) == (p.age >= 16)
        business = p.extra.get("business")
        if business:
            licence = next(c for c in own if c.type_code == "11100000000014311C001")
            assert licence.number == business["uscc"]
            assert licence.state in (business["status"], "03")


@pytest.mark.parametrize(
    "seed",
    [
        2,
        25,  # a 29 February issue date once crashed the registry
        34,  # two people's certificates once shared identifiers
    ],
)
def test_another_seed_gives_a_consistent_registry(seed):
    population = Population(seed=seed)
    registry = CertificateRegistry(population)
    for p in population.people.values():
        for cert in registry.of(p.id_number):
            assert p.id_number in (cert.holder_id, *cert.guardians), (p.id_number, cert.identifier)
