"""A small client of the Alipay simulator's control API (/_sim/...), for tests, demos and the benchmark."""

from __future__ import annotations

from typing import Any

import httpx


class AlipaySimControl:
    """Plays the citizen's browser and the Alipay back office against a running Alipay simulator."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._http = httpx.Client(timeout=timeout)

    def _req(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self._http.request(method, self.base_url + "_sim/" + path, **kwargs)
        res.raise_for_status()
        return res.json()

    def reset(self) -> None:
        """Back to the seeded state (DEMO_PEOPLE, no flows, no faults, no clock offset)."""
        self._req("POST", "reset")

    def add_person(self, name: str, id_number: str) -> None:
        """Register a real person in the simulated population register."""
        self._req("POST", "people", json={"name": name, "id_number": id_number})

    def add_app(self, app_id: str, public_key: str) -> None:
        """Register another application (PEM public key) on the same simulated platform."""
        self._req("POST", "apps", json={"app_id": app_id, "public_key": public_key})

    def calls(self) -> dict[str, Any]:
        """{counts: {method: n}, errors: {sub_code: n}, http_503: n}."""
        return self._req("GET", "calls")

    def faults(self, **faults: Any) -> dict[str, Any]:
        """Set faults: down, latency_ms, errors=[codes], bad_response_signature."""
        return self._req("POST", "faults", json=faults)

    def advance(self, seconds: float) -> float:
        """Move the simulator's expiry clock forward; returns the total offset."""
        return self._req("POST", "advance", json={"seconds": seconds})["offset"]

    def fail_reasons(self, enabled: bool) -> None:
        """Whether query answers carry fail_reason (Alipay's per-merchant extension; on by default)."""
        self._req("POST", "merchant", json={"fail_reason": enabled})

    def perform(self, ref: str, outcome: str = "pass") -> dict[str, Any]:
        """The citizen does the face for certify_id `ref`; returns {passed, fail_reason}."""
        return self._req("POST", "face/perform", json={"ref": ref, "outcome": outcome})

    def auto(self, outcome: str | None) -> None:
        """Outcome assumed for unperformed certify_ids when queried (None: they stay unfinished,
        which the query answers as passed "F" without a reason)."""
        self._req("POST", "face/auto", json={"outcome": outcome})

    def flow(self, ref: str) -> dict[str, Any]:
        """A flow's state without personal data: performed, passed, fail_reason, age_seconds."""
        return self._req("GET", f"face/{ref}")
