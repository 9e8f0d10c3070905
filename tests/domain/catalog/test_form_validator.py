"""Form patterns mean what JSON Schema (ECMA-262) and the phone make of them."""

from __future__ import annotations

import pytest
from jsonschema import FormatChecker

from domain.catalog.form_schema import validate_data
from domain.catalog.form_validator import FormValidator, ecma_pattern

ID_NUMBER = {"type": "string", "pattern": r"^\d{17}[\dX]$"}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("11010519491231002X", True),
        ("110105194912310029", True),
        ("110105194912310029\n", False),  # Python's $ also matches before a final newline
        ("１１０１０５１９４９１２３１００２９", False),  # full-width digits: Python's \d takes them
        ("١١٠١٠٥١٩٤٩١٢٣١٠٠٢٩", False),  # Arabic-Indic digits
        ("11010519491231002x", False),
    ],
)
def test_digits_and_the_end_of_the_text(value: str, valid: bool) -> None:
    assert FormValidator(ID_NUMBER, format_checker=FormatChecker()).is_valid(value) is valid


def test_word_characters_are_ascii_and_classes_and_escapes_keep_their_sense() -> None:
    code = FormValidator({"type": "string", "pattern": r"^\w{3}$"})
    assert code.is_valid("a_1") and not code.is_valid("张三丰") and not code.is_valid("ａｂｃ")
    assert ecma_pattern(r"[^\]\d$]+") == r"[^\]0-9$]+"  # in a class, $ is a dollar sign
    assert ecma_pattern(r"\\d\$") == r"\\d\$"  # an escaped backslash, an escaped dollar
    assert ecma_pattern(r"[]a]$") == r"[]a]\Z"  # Python's leading ] is a member of the class
    # A leaf validator moved inside the form keeps the reading.
    form = FormValidator({"type": "object", "properties": {"n": ID_NUMBER}})
    assert not form.evolve(schema=ID_NUMBER).is_valid("110105194912310029\n")


def test_the_catalogs_own_check_of_sample_data_reads_patterns_the_same_way() -> None:
    schema = {"type": "object", "properties": {"id": ID_NUMBER}}
    assert validate_data(schema, {"id": "110105194912310029"}) == []
    assert [p["path"] for p in validate_data(schema, {"id": "110105194912310029\n"})] == ["id"]
