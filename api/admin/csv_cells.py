"""CSV cells an operator opens in a spreadsheet program: text that would run as a formula.

Names come from imports and, ultimately, from whoever wrote the source data. A cell beginning
with `=`, `+`, `-`, `@` (or a tab or carriage return, which some programs skip) is a formula
to Excel, WPS and LibreOffice: `=HYPERLINK("http://…")` or worse runs when the file is opened
(OWASP "CSV Injection"). Such text is written with a leading apostrophe, which the programs
show as plain text, and an import of the file takes the apostrophe off again, so an export
imported back is unchanged. Numbers (a negative sort order, a rate) are written as they are.
"""

from __future__ import annotations

import re
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def written(value: Any) -> Any:
    """`value` as a CSV cell: text that would start a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def read(value: str) -> str:
    """An imported cell: the apostrophe `written` put before formula-like text taken off."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value
