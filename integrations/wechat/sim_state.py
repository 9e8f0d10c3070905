"""In-memory state of the WeChat simulator: apps, users, codes, tokens, templates, quotas.

Every method runs under one lock: the simulator stands for one external system. Time comes
from core.clock, so tests that move the frozen clock expire codes and tokens.
"""

from __future__ import annotations

import base64
import secrets
import string
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from core import clock

TOKEN_TTL = 7200
CODE_TTL = 300
OLD_TOKEN_GRACE = 300  # cgi-bin/token: the previous token keeps working this long
LOGIN_LIMIT_PER_MINUTE = 100

_ALNUM = string.ascii_letters + string.digits


def _rand(n: int, alphabet: str = _ALNUM + "-_") -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


class WxError(Exception):
    """An errcode answer of the simulated API."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


@dataclass
class User:
    openid: str
    appid: str
    unionid: str | None = None
    phone: str | None = None
    country_code: str = "86"
    risky: bool = False
    session_key: str | None = None
    login_calls: list[float] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """The user as the control API shows it."""
        return {k: v for k, v in asdict(self).items() if k != "login_calls"}


@dataclass
class Code:
    openid: str
    appid: str
    expires_at: float
    used: bool = False


@dataclass
class Token:
    appid: str
    expires_at: float
    kind: str  # "stable" or "basic"
    revoked: bool = False


class SimState:
    """The simulated WeChat back end for one open platform and its mini-programs."""

    def __init__(self, appid: str, secret: str) -> None:
        self.lock = threading.RLock()
        self.default_appid = appid
        self.default_secret = secret
        self.reset()

    def reset(self) -> None:
        """Forget everything except the default app."""
        with self.lock:
            self.apps: dict[str, str] = {self.default_appid: self.default_secret}
            self.users: dict[str, User] = {}
            self.login_codes: dict[str, Code] = {}
            self.phone_codes: dict[str, Code] = {}
            self.tokens: dict[str, Token] = {}
            self.current: dict[tuple[str, str], str] = {}  # (appid, kind) → token
            self.templates: dict[str, dict[str, Any]] = {}
            self.quotas: dict[tuple[str, str], dict[str, Any]] = {}
            self.pages: set[str] = set()
            self.messages: list[dict[str, Any]] = []
            self.calls: Counter[str] = Counter()
            self.errors: Counter[str] = Counter()  # error answers per endpoint
            self.faults: list[dict[str, Any]] = []
            self._msgid = 3_000_000_000

    # -- credentials and tokens ------------------------------------------------------------

    def check_app(self, appid: str | None, secret: str | None) -> str:
        """The appid, if appid and secret are those of a registered mini-program."""
        if not appid:
            raise WxError(41002, "appid missing")
        if not secret:
            raise WxError(41004, "appsecret missing")
        if appid not in self.apps:
            raise WxError(40013, "invalid appid")
        if not secrets.compare_digest(self.apps[appid], secret):
            raise WxError(40125, "invalid appsecret")
        return appid

    def _issue(self, appid: str, kind: str) -> str:
        value = _rand(136, _ALNUM + "_")
        self.tokens[value] = Token(appid, clock.timestamp() + TOKEN_TTL, kind)
        self.current[(appid, kind)] = value
        return value

    def basic_token(self, appid: str) -> dict[str, Any]:
        """cgi-bin/token: a new token each call; the previous one lives on for five minutes."""
        with self.lock:
            old = self.tokens.get(self.current.get((appid, "basic"), ""))
            if old is not None:
                old.expires_at = min(old.expires_at, clock.timestamp() + OLD_TOKEN_GRACE)
            return {"access_token": self._issue(appid, "basic"), "expires_in": TOKEN_TTL}

    def stable_token(self, appid: str, force_refresh: bool) -> dict[str, Any]:
        """cgi-bin/stable_token: the same token while valid, unless force_refresh."""
        with self.lock:
            now = clock.timestamp()
            value = self.current.get((appid, "stable"))
            token = self.tokens.get(value or "")
            if force_refresh and token is not None:
                token.revoked = True
                self.calls["cgi-bin/stable_token:force"] += 1
            elif token is not None and not token.revoked and token.expires_at > now:
                return {"access_token": value, "expires_in": int(token.expires_at - now)}
            return {"access_token": self._issue(appid, "stable"), "expires_in": TOKEN_TTL}

    def app_for_token(self, value: str | None) -> str:
        """The appid an access token belongs to; WxError when missing, unknown or expired."""
        if not value:
            raise WxError(41001, "access_token missing")
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.revoked:
                raise WxError(40001, "invalid credential, access_token is invalid or not latest")
            if token.expires_at <= clock.timestamp():
                raise WxError(42001, "access_token expired")
            return token.appid

    def expire_tokens(self, appid: str) -> int:
        """Expire every live token of the app; returns how many."""
        with self.lock:
            past = clock.timestamp() - 1
            hit = [t for t in self.tokens.values() if t.appid == appid and t.expires_at > past]
            for token in hit:
                token.expires_at = past
            return len(hit)

    # -- users and codes -------------------------------------------------------------------

    def add_user(self, *, appid: str, openid: str | None = None, unionid: str | None = None,
                 phone: str | None = None, country_code: str = "86") -> User:  # fmt: skip
        """Register a test user of the app (KeyError for an unknown appid)."""
        with self.lock:
            if appid not in self.apps:
                raise KeyError(appid)
            user = User(openid or "o" + _rand(27), appid, unionid, phone, country_code)
            self.users[user.openid] = user
            return user

    def mint_code(self, openid: str, *, phone: bool) -> str:
        """A single-use code, as wx.login (or getPhoneNumber when phone=True) hands it out."""
        with self.lock:
            user = self.users[openid]
            if phone and not user.phone:
                raise ValueError("user has no phone")
            code = _rand(32, _ALNUM) if not phone else secrets.token_hex(32)
            book = self.phone_codes if phone else self.login_codes
            book[code] = Code(openid, user.appid, clock.timestamp() + CODE_TTL)
            return code

    def _take(self, book: dict[str, Code], code: str | None, appid: str) -> tuple[Code | None, str | None]:
        entry = book.get(code or "")
        if entry is None or entry.appid != appid:
            return None, "invalid code"
        if entry.used or entry.expires_at <= clock.timestamp():
            return entry, "invalid code"  # WeChat does not say which
        return entry, None

    def code2session(self, appid: str, js_code: str) -> dict[str, Any]:
        """sns/jscode2session for a wx.login code."""
        with self.lock:
            entry, problem = self._take(self.login_codes, js_code, appid)
            if entry is None:
                raise WxError(40029, "invalid code")
            user = self.users[entry.openid]
            now = clock.timestamp()
            user.login_calls = [t for t in user.login_calls if t > now - 60] + [now]
            if len(user.login_calls) > LOGIN_LIMIT_PER_MINUTE:
                raise WxError(45011, "api minute-quota reach limit  mustslower  retry next minute")
            if problem:
                raise WxError(40029, problem)
            entry.used = True
            if user.risky:
                raise WxError(40226, "high risk user")
            user.session_key = base64.b64encode(secrets.token_bytes(16)).decode()
            result = {"openid": user.openid, "session_key": user.session_key}
            if user.unionid:
                result["unionid"] = user.unionid
            return result

    def phone_number(self, appid: str, code: str | None) -> dict[str, Any]:
        """phone_info for a getPhoneNumber code."""
        with self.lock:
            entry, problem = self._take(self.phone_codes, code, appid)
            if entry is None or problem:
                raise WxError(40029, "invalid code")
            entry.used = True
            user = self.users[entry.openid]
            pure = user.phone or ""
            full = pure if user.country_code == "86" else f"+{user.country_code} {pure}"
            return {
                "phoneNumber": full,
                "purePhoneNumber": pure,
                "countryCode": user.country_code,
                "watermark": {"timestamp": int(clock.timestamp()), "appid": appid},
            }

    # -- subscribe messages ----------------------------------------------------------------

    def add_template(self, *, appid: str, template_id: str | None, fields: dict[str, dict]) -> dict[str, Any]:
        """Register a subscribe-message template with its field specs."""
        with self.lock:
            tid = template_id or _rand(43)
            self.templates[tid] = {"template_id": tid, "appid": appid, "fields": fields}
            return self.templates[tid]

    def grant(self, openid: str, template_id: str, *, count: int, long_term: bool) -> dict[str, Any]:
        """The user accepts a subscription: `count` one-time messages, or long-term."""
        with self.lock:
            if openid not in self.users or template_id not in self.templates:
                raise KeyError(openid if openid not in self.users else template_id)
            quota = self.quotas.setdefault((openid, template_id), {"count": 0, "long_term": False})
            quota["count"] += count
            quota["long_term"] = quota["long_term"] or long_term
            return dict(quota)

    def quota(self, openid: str, template_id: str) -> dict[str, Any]:
        """Remaining subscription quota of a user for a template."""
        with self.lock:
            return dict(self.quotas.get((openid, template_id), {"count": 0, "long_term": False}))

    def deliver(self, appid: str, body: dict[str, Any], invalid_fields: Any) -> int:
        """Validate and record one subscribe message; returns its msgid."""
        with self.lock:
            user = self.users.get(body.get("touser") or "")
            if user is None or user.appid != appid:
                raise WxError(40003, "invalid openid")
            template = self.templates.get(body.get("template_id") or "")
            if template is None or template["appid"] != appid:
                raise WxError(40037, "invalid template_id")
            page = body.get("page")
            if page is not None and (not isinstance(page, str) or page.split("?", 1)[0] not in self.pages):
                raise WxError(41030, "invalid page")
            if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
                raise WxError(47003, "argument invalid! miniprogram_state invalid")
            if body.get("lang", "zh_CN") not in ("zh_CN", "en_US", "zh_HK", "zh_TW"):
                raise WxError(47003, "argument invalid! lang invalid")
            bad = invalid_fields(template["fields"], body.get("data"))
            if bad:
                raise WxError(47003, f"argument invalid! data.{bad[0]}.value invalid")
            quota = self.quotas.get((user.openid, template["template_id"]))
            if quota is None or not (quota["long_term"] or quota["count"] > 0):
                raise WxError(43101, "user refuse to accept the msg")
            if not quota["long_term"]:
                quota["count"] -= 1
            self._msgid += 1
            self.messages.append(
                {
                    "msgid": self._msgid,
                    "touser": user.openid,
                    "template_id": template["template_id"],
                    "page": page,
                    "data": body.get("data"),
                    "miniprogram_state": body.get("miniprogram_state", "formal"),
                    "lang": body.get("lang", "zh_CN"),
                    "at": clock.timestamp(),
                }
            )
            return self._msgid

    # -- faults ----------------------------------------------------------------------------

    def take_fault(self, endpoint: str) -> dict[str, Any] | None:
        """Consume one injected fault for the endpoint, if any is armed."""
        with self.lock:
            for fault in self.faults:
                if fault["endpoint"] == endpoint and fault["times"] > 0:
                    fault["times"] -= 1
                    return dict(fault)
            return None
