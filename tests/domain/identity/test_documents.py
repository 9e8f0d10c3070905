"""ID numbers and names are checked before any paid provider call."""

from datetime import date

import pytest

from domain.identity.documents import (
    DocumentProblem,
    canonical_name,
    check_character,
    mask_id_number,
    mask_name,
    normalise_id_number,
    normalise_name,
)
from integrations.realname.people import DEMO_PEOPLE

TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(("name", "id_number"), DEMO_PEOPLE)
def test_demo_people_are_valid(name, id_number):
    assert normalise_id_number(id_number, today=TODAY) == id_number
    assert normalise_name(name) == name


def test_lowercase_x_and_spaces_are_normalised():
    base = "11010519491231002"
    number = base + check_character(base)
    assert number.endswith("X")
    assert normalise_id_number(" " + number.lower()[:6] + " " + number.lower()[6:], today=TODAY) == number


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("110101199003078514", "checksum"),  # last character off by one
        ("11010119900307851", "format"),  # 17 characters
        ("1101011990030785155", "format"),
        ("11010119900307851A", "format"),
        ("１１０１０１１９９００３０７８５１５", "format"),  # full-width digits
        ("990101199003078515", "region"),
        ("110101199002308515", "birth_date"),  # 30 February
        ("110101209901018515", "birth_date"),  # born in the future
        ("110101189901018515", "birth_date"),  # before 1900
        ("", "format"),
    ],
)
def test_bad_id_numbers_are_refused_with_the_reason(raw, code):
    with pytest.raises(DocumentProblem) as exc:
        normalise_id_number(raw, today=TODAY)
    assert exc.value.code == code


def test_every_single_digit_change_breaks_the_checksum():
    number = "110101199003078515"
    for i in range(17):
        digit = str((int(number[i]) + 1) % 10)
        changed = number[:i] + digit + number[i + 1 :]
        with pytest.raises(DocumentProblem):
            normalise_id_number(changed, today=TODAY)


@pytest.mark.parametrize("name", ["张三", "欧阳娜娜", "买买提·艾力", "阿卜杜热西提·买买提明", "𠮷田"])
def test_chinese_names_with_middle_dot_and_rare_characters_pass(name):
    assert normalise_name(name) == name


@pytest.mark.parametrize("dot", ["•", "‧", "・", "･", ".", "．", "∙", "⋅"])
def test_look_alike_dots_become_the_middle_dot(dot):
    assert normalise_name(f"买买提{dot}艾力") == "买买提·艾力"


@pytest.mark.parametrize(
    ("typed", "name"),
    [("张 三", "张三"), ("张\u3000三", "张三"), ("欧阳  娜娜", "欧阳娜娜"), ("张\u00a0小 三", "张小三"),
     ("买买提 · 艾力", "买买提·艾力"), ("买买提\u3000・\u3000艾力", "买买提·艾力"),
     ("买买提 .艾力", "买买提·艾力"), ("\u3000张三\u3000", "张三")],
)  # fmt: skip
def test_spaces_typed_inside_a_name_are_dropped(typed, name):
    assert normalise_name(typed) == name
    assert canonical_name(typed) == name and canonical_name(name) == name


@pytest.mark.parametrize(
    ("name", "code"),
    [("张", "length"), ("张" * 31, "length"), ("张 " * 30 + "张", "length"), ("Zhang San", "characters"),
     ("张 San", "characters"), ("张三 A", "characters"), ("张 3", "characters"), ("张三1", "characters"),
     ("张三.", "characters"), (".张三", "characters"), ("张..三", "characters"), ("张\n三", "characters"),
     ("·艾力", "characters"), ("艾力·", "characters"), ("<script>", "characters")],
)  # fmt: skip
def test_bad_names_are_refused(name, code):
    with pytest.raises(DocumentProblem) as exc:
        normalise_name(name)
    assert exc.value.code == code


def test_masks_show_only_what_a_counter_clerk_would():
    assert mask_name("张三") == "张*"
    assert mask_name("张小三") == "张*三"
    assert mask_name("买买提·艾力") == "买****力"
    assert mask_id_number("110101199003078515") == "110***********8515"
