"""Mainland resident ID numbers (GB 11643) and names: validation before any paid call, and masking."""

from __future__ import annotations

import re
from datetime import date

from core.errors import Text
from core.masking import mask_id_number as mask_id_number  # re-exported: one rule (core.masking)
from core.masking import mask_name as mask_name  # re-exported: masked names on identity documents
from core.names import HAN
from core.names import canonical_name as canonical_name  # re-exported: the public name of the rule
from integrations.govdata.codes import id_check_char

_ID_SHAPE = re.compile(r"\A[0-9]{17}[0-9X]\Z")
# First two digits: GB/T 2260 province codes (incl. 71 Taiwan, 81 Hong Kong, 82 Macao residence permits).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83".split()
)
# Chinese names: CJK ideographs with the middle dot used in minority and transliterated names
# (买买提·艾力); look-alike dots and inner spaces are folded by core.names.canonical_name.
_NAME = re.compile(f"\\A[{HAN}]+(?:\u00b7[{HAN}]+)*\\Z")
NAME_MIN, NAME_MAX = 2, 30


class DocumentProblem(ValueError):
    """A field that fails validation; `field` names it and `code` says why."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


_PROBLEM_TEXTS = {
    ("name", "length"): (
        f"a name of {NAME_MIN}-{NAME_MAX} characters",
        f"姓名应为 {NAME_MIN}-{NAME_MAX} 个字",
    ),
    ("name", "characters"): (
        "Chinese characters only; parts of a minority name joined by a middle dot (·)",
        "姓名只能由汉字组成，少数民族姓名各部分之间用间隔号“·”连接",
    ),
    ("id_number", "format"): (
        "18 characters: 17 digits, then a digit or X",
        "身份证号码应为 18 位：17 位数字加末位数字或 X",
    ),
    ("id_number", "region"): ("the first two digits name no province", "身份证号码前两位不是有效的省份代码"),
    ("id_number", "birth_date"): (
        "the birth date in it is not a real past date",
        "身份证号码中的出生日期有误",
    ),
    ("id_number", "checksum"): (
        "the last character does not match the others: a digit may be mistyped",
        "身份证号码末位校验码不符，可能有数字输错",
    ),
}


def problem_text(problem: DocumentProblem) -> Text:
    """What to tell the person about a field that failed, in Chinese and English."""
    en, zh = _PROBLEM_TEXTS[problem.field, problem.code]
    return Text(en, zh)


def check_character(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    return id_check_char(first17)


def normalise_id_number(raw: str, *, today: date) -> str:
    """The ID number in canonical form (upper-case X, no spaces), or DocumentProblem.

    Checks the shape, the province code, a real and plausible birth date (not in the future,
    not before 1900) and the check character. Full-width digits are refused rather than
    converted: they usually mean a pasted value that should be looked at.
    """
    value = raw.strip().replace(" ", "").upper()
    if not _ID_SHAPE.match(value):
        raise DocumentProblem("id_number", "format")
    if value[:2] not in _PROVINCES:
        raise DocumentProblem("id_number", "region")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError as exc:
        raise DocumentProblem("id_number", "birth_date") from exc
    if born > today or born.year < 1900:
        raise DocumentProblem("id_number", "birth_date")
    if check_character(value[:17]) != value[17]:
        raise DocumentProblem("id_number", "checksum")
    return value


def normalise_name(raw: str) -> str:
    """The name in canonical form (canonical_name), or DocumentProblem when it is not a Chinese
    name of NAME_MIN..NAME_MAX characters (digits, Latin letters, a dot at either end ...)."""
    value = canonical_name(raw)
    if not NAME_MIN <= len(value) <= NAME_MAX:
        raise DocumentProblem("name", "length")
    if not _NAME.match(value):
        raise DocumentProblem("name", "characters")
    return value
