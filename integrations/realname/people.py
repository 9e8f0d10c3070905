"""The people every real-name simulator knows: the stand-in for the public-security population
register. A simulator treats a name + ID number as real only when it is listed here (or was
added through its control API), as the real services answer only for registered residents.

The demo identities are fictitious but valid: 18 characters, GB 11643 check character,
plausible birth dates. `make run` prints them so a tester can verify as one of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from core.names import canonical_name

# (name, ID number) — invented people with valid check characters.
DEMO_PEOPLE: tuple[tuple[str, str], ...] = (
    ("张三", "110101199003078515"),
    ("李四", "440106198512124413"),
    ("王小红", "310104200001017729"),
    ("买买提·艾力", "650102197806153219"),
    ("陈阿婆", "440103194502286323"),
)

MATCH = "match"
NAME_MISMATCH = "name_mismatch"
NO_RECORD = "no_record"


@dataclass
class PeopleRegister:
    """Thread-safe set of registered people, keyed by ID number. Names are kept and compared in
    canonical form (core.names.canonical_name), as yiwang stores them: 买买提•艾力 and
    买买提 · 艾力 are the registered 买买提·艾力."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._people: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._people = {id_number: canonical_name(name) for name, id_number in DEMO_PEOPLE}

    def add(self, name: str, id_number: str) -> None:
        with self._lock:
            self._people[id_number.upper()] = canonical_name(name)

    def lookup(self, name: str, id_number: str) -> str:
        """MATCH, NAME_MISMATCH or NO_RECORD."""
        with self._lock:
            registered = self._people.get(id_number.upper())
        if registered is None:
            return NO_RECORD
        return MATCH if registered == canonical_name(name) else NAME_MISMATCH
