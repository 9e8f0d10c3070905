"""The validator of a form's data: JSON Schema 2020-12, with `pattern` read as the standard reads it.

JSON Schema's patterns are ECMA-262 regular expressions, and the phone checks them so. The
jsonschema library runs them with Python's `re`, which differs where it matters for a form:
`\\d` also matches other scripts' digits (١, full-width １) and `$` also matches before a final
newline, so `^\\d{17}[\\dX]$` took "１１０１０５…" and "110105194912310029\\n" as ID numbers. Here
`\\d`, `\\D`, `\\w`, `\\W` mean ASCII digits and word characters and `$` means the end of the
text, as on the phone. (`patternProperties` keys are left to the library: forms name their
fields.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

_OUTSIDE = {"d": "[0-9]", "D": "[^0-9]", "w": "[A-Za-z0-9_]", "W": "[^A-Za-z0-9_]"}
_INSIDE = {"d": "0-9", "w": "A-Za-z0-9_"}  # in a class; \D and \W there keep Python's sense


def ecma_pattern(pattern: str) -> str:
    """`pattern` rewritten so that Python's `re` reads it as ECMA-262 does (see above)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            table = _INSIDE if in_class else _OUTSIDE
            out.append(table.get(nxt, ch + nxt))
            i += 2
            continue
        if in_class:
            if ch == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
            out.append(ch)
        elif ch == "$":
            out.append(r"\Z")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


# Python's `re` reads these; a phone's ECMA-262 engine refuses them or reads something else
# (`\\Z` is a plain "Z" there), so a form using one would check differently on the two sides.
_PYTHON_GROUPS = {
    "(?P": "(?P…)",
    "(?#": "(?#…)",
    "(?>": "(?>…)",
    "(?(": "(?(…)…)",
}
_PYTHON_ESCAPES = frozenset("AZNUa")
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]+[:)]")


def python_only_syntax(pattern: str) -> str | None:
    """The first construct of `pattern` that Python's `re` accepts but ECMA-262 (the phone) does
    not read the same way: Python's group extensions, inline flags, possessive quantifiers,
    escapes such as `\\A`, `\\Z`, `\\N{…}`, `\\U0001F600`, and a class opening with `]` (`[]]`
    and `[^]]` are an empty class and "any character" there). None when there is none."""
    in_class = quantified = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        was_quantified, quantified = quantified, False
        if ch == "\\" and i + 1 < len(pattern):
            if pattern[i + 1] in _PYTHON_ESCAPES:
                return pattern[i : i + 2]
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            opening = "[^]" if pattern.startswith("[^]", i) else "[]" if pattern.startswith("[]", i) else ""
            if opening:
                return opening
            in_class = True
            i += 2 if pattern.startswith("[^", i) else 1
            continue
        elif ch == "(":
            for start, shown in _PYTHON_GROUPS.items():
                if pattern.startswith(start, i):
                    return shown
            flags = _INLINE_FLAGS.match(pattern, i)
            if flags:
                return flags.group()
            if pattern.startswith("(?", i):
                i += 2
                continue
        elif ch == "+" and was_quantified:
            return pattern[i - 1 : i + 1]
        elif ch in "*+?}":
            quantified = not (ch == "?" and was_quantified)  # a lazy `?` ends the quantifier
        i += 1
    return None


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(ecma_pattern(pattern))
    except re.error:  # not expected (each rewrite is a valid piece): the pattern as written
        return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


FormValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})
