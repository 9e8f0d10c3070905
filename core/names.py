"""Chinese personal names in the one form they are stored and compared in.

Pure text handling with no rules about what a valid name is (domain/identity/documents.py
validates): it lives in core so that the integrations (provider clients, simulators) compare
names the same way the domain stores them, without importing the domain.
"""

from __future__ import annotations

import re
import unicodedata

# The middle dot of minority and transliterated names (买买提·艾力). Several dots look alike on
# phones and input methods (•, ‧, ・, ･, ㆍ, ∙, ⋅, and the full stops . and ．); all are read as
# U+00B7.
DOTS = "\u00b7\u2022\u2027\u30fb\uff65\u318d\u2219\u22c5\u002e\uff0e"
# CJK ideographs: Extension A, the basic block, Extensions B onwards.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\U00020000-\U0003134f"
# Spaces typed inside a name (张 三, 买买提 · 艾力): ASCII, no-break, the typographic ones and the
# ideographic U+3000 of full-width input. Dropped only between Han characters and dots, so a
# space next to anything else (a Latin letter, a digit) is kept.
SPACES = "\u0020\u00a0\u2000-\u200a\u202f\u205f\u3000"
_INNER_SPACES = re.compile(f"(?<=[{HAN}\u00b7])[{SPACES}]+(?=[{HAN}\u00b7])")
_DOT_TABLE = str.maketrans(dict.fromkeys(DOTS, "\u00b7"))


def canonical_name(raw: str) -> str:
    """`raw` in the form names are stored and compared in: NFC, surrounding whitespace removed,
    every look-alike dot as U+00B7, spaces between Han characters and dots dropped. Does not
    validate; applying it twice changes nothing."""
    value = unicodedata.normalize("NFC", raw.strip()).translate(_DOT_TABLE)
    return _INNER_SPACES.sub("", value)


def same_name(a: str | None, b: str | None) -> bool:
    """True when both names are given and are the same name once in canonical form."""
    if a is None or b is None:
        return False
    return canonical_name(a) == canonical_name(b)
