"""A small client of the WeChat simulator's control API (/_sim/...), for tests and demos."""

from __future__ import annotations

from typing import Any

import requests


class WechatSimControl:
    """Plays the phone and the WeChat back office against a running simulator."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._http = requests.Session()
        self._timeout = timeout

    def _req(self, method: str, path: str, **kwargs: Any) -> Any:
        res = self._http.request(method, self.base_url + "_sim/" + path, timeout=self._timeout, **kwargs)
        res.raise_for_status()
        return res.json()

    def reset(self) -> None:
        """Back to the seeded state."""
        self._req("POST", "reset")

    def add_app(self, appid: str, secret: str) -> None:
        """Register another mini-program on the same open platform (same unionids)."""
        self._req("POST", "apps", json={"appid": appid, "secret": secret})

    def add_user(self, **fields: Any) -> dict:
        """Create a test user: openid?, appid?, unionid?, phone?, country_code?."""
        return self._req("POST", "users", json=fields)

    def user(self, openid: str) -> dict:
        """A user as the simulator knows it, with the last session_key issued."""
        return self._req("GET", f"users/{openid}")

    def login_code(self, openid: str) -> str:
        """A wx.login code for the user."""
        return self._req("POST", f"users/{openid}/login-code")["code"]

    def phone_code(self, openid: str) -> str:
        """A getPhoneNumber code for the user."""
        return self._req("POST", f"users/{openid}/phone-code")["code"]

    def flag_risky(self, openid: str, risky: bool = True) -> None:
        """Make WeChat call the user high-risk (40226)."""
        self._req("POST", f"users/{openid}/risky", json={"risky": risky})

    def add_template(self, fields: Any, template_id: str | None = None, appid: str | None = None) -> dict:
        """Register a subscribe-message template."""
        payload = {"fields": fields, "template_id": template_id, "appid": appid}
        return self._req("POST", "templates", json={k: v for k, v in payload.items() if v is not None})

    def grant(self, openid: str, template_id: str, count: int = 1, long_term: bool = False) -> dict:
        """The user accepts a subscription (one-time `count` messages, or long-term)."""
        payload = {"openid": openid, "template_id": template_id, "count": count, "long_term": long_term}
        return self._req("POST", "subscriptions", json=payload)

    def quota(self, openid: str, template_id: str) -> dict:
        """Remaining subscription quota."""
        return self._req("GET", "subscriptions", params={"openid": openid, "template_id": template_id})

    def expire_access_token(self, appid: str | None = None) -> int:
        """Expire the app's current access tokens (the next call gets 42001)."""
        return self._req("POST", "access-token/expire", json={"appid": appid} if appid else {})["expired"]

    def messages(self, touser: str | None = None, template_id: str | None = None) -> list[dict]:
        """Delivered subscribe messages."""
        params = {k: v for k, v in {"touser": touser, "template_id": template_id}.items() if v}
        return self._req("GET", "messages", params=params)["messages"]

    def calls(self) -> dict[str, int]:
        """Call counts per endpoint."""
        return self._req("GET", "calls")["counts"]

    def fault(self, endpoint: str, *, times: int = 1, **kind: Any) -> None:
        """Make the next `times` calls of `endpoint` fail: errcode=, http_status= or delay=."""
        self._req("POST", "faults", json={"endpoint": endpoint, "times": times, **kind})

    # -- real-name conventions and face verification 2.0 (integrations/wechat/face_sim.py) --

    def call_report(self) -> dict[str, dict[str, int]]:
        """Call counts and error answers per endpoint: {"counts": {...}, "errors": {...}}."""
        return self._req("GET", "calls")

    def faults(self, **switches: Any) -> dict:
        """Set down=, latency_ms= or errors=[errcode, ...] (the next face calls, in order)."""
        return self._req("POST", "faults", json=switches)

    def add_person(self, name: str, id_number: str) -> None:
        """Register a real person (name + ID number) with the simulated population register."""
        self._req("POST", "people", json={"name": name, "id_number": id_number})

    def advance(self, seconds: float) -> float:
        """Move the face clock forward (verify_id expiry); returns the total offset."""
        return self._req("POST", "advance", json={"seconds": seconds})["offset"]

    def face_perform(self, ref: str, outcome: str) -> int:
        """The user does the face for verify_id `ref`: pass, liveness_fail, other_person, cancel."""
        return self._req("POST", "face/perform", json={"ref": ref, "outcome": outcome})["verify_ret"]

    def face_auto(self, outcome: str | None) -> None:
        """The outcome assumed for verify_ids nobody performed when queried (None = pending)."""
        self._req("POST", "face/auto", json={"outcome": outcome})
