"""Free text typed by citizens and operators: whether anything readable was written."""

from __future__ import annotations

import unicodedata

# Not shown on a screen: controls and format characters (zero-width space U+200B, joiners, BOM
# U+FEFF, soft hyphen, bidi marks, tag characters), separators, surrogates, private-use and
# unassigned code points, and combining marks, which have nothing to sit on by themselves.
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Mn", "Me"})
# Letters and symbols that are drawn as blank space (Hangul fillers, the blank braille pattern).
_BLANK_GLYPHS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_visible_text(text: str) -> bool:
    """True when `text` has at least one character a reader can see; `str.strip()` alone lets a
    zero-width space or a BOM pass as content, so a required field would look empty."""
    return any(
        not c.isspace() and c not in _BLANK_GLYPHS and unicodedata.category(c) not in _UNSEEN for c in text
    )


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters, ending in "…" when it had to be cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
