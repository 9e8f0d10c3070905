"""Check characters: ISO 7064 MOD 37,36 (e-certificate identifiers), GB 11643 (ID), GB 32100 (USCC)."""

from __future__ import annotations

import random
import string

import pytest

from integrations.govdata.certificates import TYPES
from integrations.govdata.codes import (
    ecert_identifier,
    ecert_identifier_problem,
    ecert_type_of,
    id_check_char,
    mod37_36_check_char,
    mod37_36_valid,
    uscc_check_char,
)
from integrations.realname.people import DEMO_PEOPLE

ALNUM = string.digits + string.ascii_uppercase
IDENTIFIERS = [
    ecert_identifier("11100000000019713D001", "11440100007502318X", "2021000123456789"),
    ecert_identifier("11100000000014311C001", "11440100007502691L", "ABC9XYZ", version=12),
    ecert_identifier("111000000000143384001", "11440100MB2C7541X0", "7"),
]


def value(c: str) -> int:
    return ALNUM.index(c)


def test_iso7064_reference_vector():
    # The example of ISO 7064 MOD 37,36 (also in python-stdnum's documentation).
    assert mod37_36_check_char("A12425GABC1234002") == "M"
    assert mod37_36_valid("A12425GABC1234002M")
    assert not mod37_36_valid("A12425GABC1234002N")


def test_a_computed_check_char_validates():
    rng = random.Random(7)
    for _ in range(500):
        body = "".join(rng.choice(ALNUM) for _ in range(rng.randrange(1, 60)))
        check = mod37_36_check_char(body)
        assert check in ALNUM and mod37_36_valid(body + check)
        assert mod37_36_valid((body + check).lower())  # the check is case-insensitive


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_identifier_built_with_check_char_is_accepted(identifier):
    assert ecert_identifier_problem(identifier) is None
    assert identifier.startswith("1.2.156.3005.2.")
    assert mod37_36_valid(identifier.replace(".", ""))


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_every_single_character_change_is_detected(identifier):
    positions = [i for i, c in enumerate(identifier) if c != "."]
    checked = 0
    for i in positions:
        for c in ALNUM:
            if c == identifier[i]:
                continue
            changed = identifier[:i] + c + identifier[i + 1 :]
            assert ecert_identifier_problem(changed) is not None, changed
            assert not mod37_36_valid(changed.replace(".", "")), changed
            checked += 1
    assert checked == len(positions) * 35


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_adjacent_swaps_are_detected(identifier):
    """MOD 37,36 catches every swap of adjacent characters whose values are not consecutive.

    (A hybrid ISO 7064 system cannot catch every swap of two consecutive values, e.g. "01" <->
    "10" in some positions; those are left out here on purpose.)
    """
    chars = identifier.replace(".", "")
    checked = 0
    for i in range(len(chars) - 1):
        a, b = chars[i], chars[i + 1]
        if a == b or (value(a) - value(b)) % 36 in (1, 35):
            continue
        swapped = chars[:i] + b + a + chars[i + 2 :]
        assert not mod37_36_valid(swapped), (i, swapped)
        checked += 1
    assert checked > 20


def test_adjacent_swaps_of_random_strings_are_detected():
    rng = random.Random(11)
    for _ in range(300):
        body = "".join(rng.choice(ALNUM) for _ in range(rng.randrange(2, 40)))
        full = body + mod37_36_check_char(body)
        for i in range(len(full) - 1):
            a, b = full[i], full[i + 1]
            if a != b and (value(a) - value(b)) % 36 not in (1, 35):
                assert not mod37_36_valid(full[:i] + b + a + full[i + 2 :])


def test_swapped_identifier_characters_are_refused():
    identifier = IDENTIFIERS[0]
    swapped = identifier.replace("318X.2021", "318X.2201")  # the serial's "02" typed as "20"
    assert swapped != identifier
    assert ecert_identifier_problem(swapped) == "check character does not match (ISO 7064 MOD 37,36)"


GOOD = IDENTIFIERS[0]
PARTS = GOOD.split(".")


@pytest.mark.parametrize(
    "identifier",
    [
        pytest.param(GOOD.replace("1.2.156.3005.2.", "1.2.156.3005.3.", 1), id="wrong-prefix"),
        pytest.param(GOOD.replace("1.2.156.3005.2.", "2.156.3005.2.", 1), id="short-prefix"),
        pytest.param(GOOD.lower(), id="lowercase"),
        pytest.param(GOOD.replace("D001", "d001"), id="lowercase-type"),
        pytest.param(".".join(PARTS[:-1]), id="no-check-char"),
        pytest.param(".".join(PARTS[:-2] + PARTS[-1:]), id="no-version"),
        pytest.param(".".join(PARTS[:5] + PARTS[6:]), id="no-type-code"),
        pytest.param(".".join(PARTS[:6] + PARTS[7:]), id="no-issuer"),
        pytest.param(GOOD.replace("11440100007502318X", "11440100007502318"), id="issuer-17-chars"),
        pytest.param(GOOD.replace(".001.", ".1."), id="version-not-3-digits"),
        pytest.param(GOOD + "0", id="two-check-chars"),
        pytest.param(" " + GOOD, id="leading-space"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_identifiers_are_refused(identifier):
    problem = ecert_identifier_problem(identifier)
    assert problem is not None and "GB/T 36901" in problem
    assert ecert_type_of(identifier) is None


def test_non_string_identifier_is_refused():
    assert ecert_identifier_problem(None) == "must be a string"  # type: ignore[arg-type]
    assert ecert_identifier_problem(12345) == "must be a string"  # type: ignore[arg-type]


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_wrong_check_char_is_refused(identifier):
    right = identifier[-1]
    for wrong in ALNUM.replace(right, ""):
        problem = ecert_identifier_problem(identifier[:-1] + wrong)
        assert problem == "check character does not match (ISO 7064 MOD 37,36)"


def test_type_of_a_wellformed_identifier():
    assert ecert_type_of(IDENTIFIERS[0]) == "11100000000019713D001"
    assert ecert_type_of(IDENTIFIERS[1]) == "11100000000014311C001"
    assert IDENTIFIERS[1].split(".")[-2] == "012"


@pytest.mark.parametrize(("name", "id_number"), DEMO_PEOPLE)
def test_gb11643_check_char_of_demo_people(name, id_number):
    assert id_check_char(id_number[:17]) == id_number[17]
    # MOD 11-2 catches every change of a single digit
    for i in range(17):
        for d in string.digits:
            if d != id_number[i]:
                assert id_check_char(id_number[:i] + d + id_number[i + 1 : 17]) != id_number[17]


def test_gb11643_check_char_x():
    # 11010519491231002X is the example of GB 11643 itself.
    assert id_check_char("11010519491231002") == "X"
    assert id_check_char("11010519491231003") != "X"


def test_gb32100_check_char():
    assert uscc_check_char("11440100007502318") == "X"
    # Real companies' codes, published on their licences.
    assert uscc_check_char("91440300708461136") == "T"
    assert uscc_check_char("91110000802100433") == "B"
    assert uscc_check_char("11440100007502319") != "X"


def test_every_issuer_code_in_types_is_a_valid_uscc():
    issuers = {uscc for _, _, uscc in TYPES.values()}
    bad = sorted(u for u in issuers if uscc_check_char(u[:17]) != u[17])
    assert bad == []
