"""A small client of the two-element check simulator's control API (/_sim/...), for tests and benchmarks."""

from __future__ import annotations

from typing import Any

import requests


class IdCheckSimControl:
    """Plays the public-security back office against a running two-element check simulator."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._http = requests.Session()
        self._timeout = timeout

    def _req(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self._http.request(method, self.base_url + "_sim/" + path, timeout=self._timeout, **kwargs)
        res.raise_for_status()
        return res.json()

    def reset(self) -> None:
        """Back to the seeded state (DEMO_PEOPLE, no nonces, counts, faults or clock offset)."""
        self._req("POST", "reset")

    def add_person(self, name: str, id_number: str) -> None:
        """Register a real person in the simulated population register."""
        self._req("POST", "people", json={"name": name, "id_number": id_number})

    def calls(self) -> dict[str, Any]:
        """Counts: total, ok, http_5xx, by_action, errors {code: n}, results {code: n}."""
        return self._req("GET", "calls")

    def requests(self) -> list[dict[str, Any]]:
        """The last 100 requests (request_id, purpose, code, result; never a name or ID number)."""
        return self._req("GET", "requests")["requests"]

    def faults(self, **faults: Any) -> dict[str, Any]:
        """Set down, latency_ms, errors=[envelope codes], bad_response_signature, malformed_response."""
        return self._req("POST", "faults", json=faults)

    def advance(self, seconds: float) -> float:
        """Move the simulator's clock forward; returns the total offset."""
        return self._req("POST", "advance", json={"seconds": seconds})["offset"]
