"""Validators for the codes a service item carries (GB 32100, GB/T 2260, GB/T 39046, GB/T 36901).

Each returns the problem as a short phrase (or None when the value is good): a `core.errors.Text`,
English with its Chinese, so the import report (and, for `region_problem`, citizens' searches)
answers in the response's language. The importer adds the item and field path. Codes are
validated strings: nothing here parses meaning out of a code beyond what the standards fix.
"""

from __future__ import annotations

import re

from core.errors import Text
from integrations.govdata.codes import USCC_ALPHABET, uscc_check_char

# GB 32100-2015 unified social credit code: 18 characters from USCC_ALPHABET (no I, O, S, V, Z).
_USCC_RE = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")
# GB/T 2260 province-level prefixes ("00" only in 000000 = nationwide).
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
    "50 51 52 53 54 61 62 63 64 65 71 81 82".split()
)
NATIONWIDE = "000000"
# ASCII only, and the whole text: `\d` would also take full-width or Arabic-Indic digits and `$` a
# final line break.
_REGION_RE = re.compile(r"[0-9]{6}")
_BASIC_RE = re.compile(r"^[0-9A-Z]{10,12}$")
_ECERT_TYPE_RE = re.compile(rf"[{USCC_ALPHABET}]{{18}}[0-9]{{3}}")  # ASCII digits, whole text
IMPLEMENTATION_CODE_LENGTH = 31
# ASCII letters and digits only (str.isalnum() also takes 中文, full-width digits and "²").
_IMPLEMENTATION_RE = re.compile(rf"[0-9A-Za-z]{{{IMPLEMENTATION_CODE_LENGTH}}}")


def uscc_problem(code: str) -> str | None:
    if not isinstance(code, str) or not _USCC_RE.fullmatch(code):
        return Text(
            "must be 18 characters of digits and capital letters except I, O, S, V, Z (GB 32100)",
            "须为 18 位数字或大写字母（不含 I、O、S、V、Z）（GB 32100）",
        )
    if uscc_check_char(code[:17]) != code[17]:
        return Text("check character does not match (GB 32100)", "校验码不符（GB 32100）")
    return None


def region_problem(code: str) -> str | None:
    """What is wrong with a region code (a `Text`: its Chinese goes to Chinese responses)."""
    if not isinstance(code, str) or not _REGION_RE.fullmatch(code):
        return Text("must be a 6-digit GB/T 2260 region code", "须为 6 位 GB/T 2260 行政区划代码")
    if code != NATIONWIDE and code[:2] not in PROVINCES:
        return Text("no such province prefix in GB/T 2260", "GB/T 2260 中没有这一省级代码")
    return None


def region_ancestors(code: str) -> tuple[str, ...]:
    """The region itself, its city, its province and nationwide: the codes whose items apply there."""
    chain = [code]
    if code[4:] != "00":
        chain.append(code[:4] + "00")
    if code[2:] != "0000":
        chain.append(code[:2] + "0000")
    if code != NATIONWIDE:
        chain.append(NATIONWIDE)
    return tuple(dict.fromkeys(chain))


def basic_code_problem(code: str) -> str | None:
    if not isinstance(code, str) or not _BASIC_RE.fullmatch(code):
        return Text(
            "must be 10 to 12 digits or capital letters (GB/T 39046 basic code)",
            "须为 10 到 12 位数字或大写字母（GB/T 39046 基本编码）",
        )
    return None


def implementation_code_problem(code: str, *, uscc: str, level: int, basic_code: str) -> str | None:
    """实施编码: implementing body's USCC + 行使层级 digit + 12-character item code from the basic code."""
    if not isinstance(code, str) or not _IMPLEMENTATION_RE.fullmatch(code):
        return Text(
            "must be 31 ASCII letters and digits: implementing body USCC (18) + level (1) + item code (12)",
            "须为 31 位字母或数字：实施主体统一社会信用代码（18 位）+ 行使层级（1 位）+ 事项编码（12 位）",
        )
    if code != code.upper():
        return Text("must use capital letters", "须使用大写字母")
    if code[:18] != uscc:
        return Text(
            "first 18 characters must be the implementing body's USCC",
            "前 18 位须为实施主体的统一社会信用代码",
        )
    if code[18] != str(level):
        return Text("19th character must be the exercise level", "第 19 位须为行使层级")
    if not code[19:].startswith(basic_code):
        return Text("last 12 characters must start with the basic code", "后 12 位须以基本编码开头")
    return None


def ecert_type_problem(code: str) -> str | None:
    """GB/T 36901 certificate type code: issuing authority's USCC + 3 digits."""
    if not isinstance(code, str) or not _ECERT_TYPE_RE.fullmatch(code):
        return Text(
            "must be the issuing authority's USCC followed by 3 digits (GB/T 36901)",
            "须为发证机构的统一社会信用代码加 3 位数字（GB/T 36901）",
        )
    return uscc_problem(code[:18])
