"""A small client of the FaceID simulator's control API (/_sim/...), for tests, demos and the benchmark."""

from __future__ import annotations

from typing import Any

import requests


class FaceIdSimControl:
    """Plays the citizen's phone and the Tencent back office against a running FaceID simulator."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._http = requests.Session()
        self._timeout = timeout

    def _req(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self._http.request(method, self.base_url + "_sim/" + path, timeout=self._timeout, **kwargs)
        res.raise_for_status()
        return res.json()

    def reset(self) -> None:
        """Back to the seeded state (DEMO_PEOPLE, no flows, no faults, no clock offset)."""
        self._req("POST", "reset")

    def add_person(self, name: str, id_number: str) -> None:
        """Register a real person in the simulated population register."""
        self._req("POST", "people", json={"name": name, "id_number": id_number})

    def calls(self) -> dict[str, Any]:
        """Counts: total, ok, by_action, errors, http_5xx, image_requests."""
        return self._req("GET", "calls")

    def faults(self, **faults: Any) -> dict[str, Any]:
        """Set faults: down, latency_ms, errors=[codes], bad_response_signature, malformed_response."""
        return self._req("POST", "faults", json=faults)

    def advance(self, seconds: float) -> float:
        """Move the simulator's expiry clock forward; returns the total offset."""
        return self._req("POST", "advance", json={"seconds": seconds})["offset"]

    def perform(self, ref: str, outcome: str = "pass") -> int:
        """The citizen finishes the flow: pass, liveness_fail, other_person or cancel; returns ErrCode."""
        return self._req("POST", "face/perform", json={"ref": ref, "outcome": outcome})["err_code"]

    def auto(self, outcome: str | None) -> None:
        """Outcome assumed for unperformed BizTokens when queried (None: they stay pending)."""
        self._req("POST", "face/auto", json={"outcome": outcome})

    def flow(self, ref: str) -> dict[str, Any]:
        """A flow's state without personal data: performed, err_code, age_seconds."""
        return self._req("GET", f"face/{ref}")
