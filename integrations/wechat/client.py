"""WeChat mini-program server API client: wechatpy 1.8.18 pointed at the configured base URL.

Three overrides make wechatpy speak to any host (the real api.weixin.qq.com or the simulator):
the client's API_BASE_URL, `wxa.API_BASE_URL` (wxa keeps its own default), and
`fetch_access_token`, which uses `cgi-bin/stable_token` instead of the hard-coded token URL.

The access token lives in Redis (wechatpy RedisStorage), so every gunicorn worker and RQ
worker uses the same one. stable_token in normal mode hands out the current token while it is
valid, so a worker fetching it never invalidates another's; only a forced refresh does, and that
runs under a Redis lock and only after the normal fetch returned the very token WeChat refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from redis import Redis
from redis.exceptions import LockError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session.redisstorage import RedisStorage

from integrations.wechat.errors import (
    TOKEN_ERRCODES,
    WechatApiError,
    WechatConfigError,
    WechatRetryableError,
    classify,
)

log = logging.getLogger(__name__)

TOKEN_PREFIX = "yiwang:wechat"
_REFRESH_LOCK_SECONDS = 10


@dataclass(frozen=True)
class Code2Session:
    """What jscode2session returns; `session_key` must never leave the server."""

    openid: str
    session_key: str
    unionid: str | None

    def __repr__(self) -> str:  # keep the session_key out of logs and tracebacks
        return f"Code2Session(openid={self.openid[:6]}…, unionid={'set' if self.unionid else None})"


@dataclass(frozen=True)
class PhoneInfo:
    """phone_info of getuserphonenumber."""

    phone_number: str
    pure_phone_number: str
    country_code: str
    watermark_appid: str
    watermark_timestamp: int | None

    def __repr__(self) -> str:
        return f"PhoneInfo(country_code={self.country_code}, watermark_appid={self.watermark_appid})"


class _WxApi(WeChatClient):
    """wechatpy's client with the base URL and the token endpoint made configurable."""

    def __init__(self, appid: str, secret: str, *, base_url: str, timeout: float, storage: Any) -> None:
        # auto_retry off: wechatpy would refetch and retry without limit; WechatClient retries once.
        super().__init__(appid, secret, session=storage, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = base_url + "cgi-bin/"
        self.wxa.API_BASE_URL = base_url
        self._token_url = base_url + "cgi-bin/stable_token"

    def fetch_access_token(self, force_refresh: bool = False) -> dict:
        """Get the access token from stable_token and store it for every process."""
        payload = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": force_refresh,
        }
        res = self._http.post(self._token_url, json=payload, timeout=self.timeout)
        try:
            res.raise_for_status()
        except requests.RequestException as exc:
            raise WeChatClientException(
                None, None, client=self, request=exc.request, response=exc.response
            ) from exc
        result = self._decode_result(res)
        if not isinstance(result, dict):
            raise WechatRetryableError(endpoint="cgi-bin/stable_token", errmsg="response is not JSON")
        if int(result.get("errcode") or 0) != 0:
            raise WeChatClientException(
                int(result["errcode"]),
                result.get("errmsg", ""),
                client=self,
                request=res.request,
                response=res,
            )
        if not result.get("access_token"):
            raise WechatRetryableError(endpoint="cgi-bin/stable_token", errmsg="incomplete response")
        expires_in = int(result.get("expires_in", 7200))
        # Expire our copy a minute early so no process sends a token in its last seconds.
        self.session.set(self.access_token_key, result["access_token"], max(expires_in - 60, 1))
        self.expires_at = int(time.time()) + expires_in
        return result


class WechatClient:
    """The mini-program server API as yiwang uses it; every failure is a WechatApiError."""

    def __init__(
        self,
        *,
        appid: str,
        secret: str,
        base_url: str,
        timeout: float,
        redis: Redis,
        prefix: str = TOKEN_PREFIX,
    ) -> None:
        base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.appid = appid
        self._redis = redis
        self._prefix = prefix
        self._storage = RedisStorage(redis, prefix=prefix)
        self._wx = _WxApi(appid, secret, base_url=base_url, timeout=timeout, storage=self._storage)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, redis: Redis) -> WechatClient:
        """Build from WECHAT_APPID, WECHAT_SECRET, WECHAT_API_BASE and WECHAT_TIMEOUT."""
        return cls(
            appid=cfg["WECHAT_APPID"],
            secret=cfg["WECHAT_SECRET"],
            base_url=cfg["WECHAT_API_BASE"],
            timeout=float(cfg["WECHAT_TIMEOUT"]),
            redis=redis,
        )

    # -- API -------------------------------------------------------------------------------

    def code_to_session(self, code: str) -> Code2Session:
        """Exchange a wx.login code for openid, unionid and session_key (sns/jscode2session)."""
        result = self._call("sns/jscode2session", lambda: self._wx.wxa.code_to_session(code))
        try:
            return Code2Session(
                openid=result["openid"], session_key=result["session_key"], unionid=result.get("unionid")
            )
        except KeyError as exc:
            raise WechatRetryableError(endpoint="sns/jscode2session", errmsg="incomplete response") from exc

    def get_phone_number(self, code: str) -> PhoneInfo:
        """Exchange a getPhoneNumber code for the user's phone (wxa/business/getuserphonenumber)."""
        # wechatpy 1.8.18 has no get_phone_number: post through the wxa API so its base URL applies.
        endpoint = "wxa/business/getuserphonenumber"
        result = self._call(endpoint, lambda: self._wx.wxa._post(endpoint, data={"code": code}))
        try:
            info = result["phone_info"]
            watermark = info.get("watermark") or {}
            return PhoneInfo(
                phone_number=str(info["phoneNumber"]),
                pure_phone_number=str(info["purePhoneNumber"]),
                country_code=str(info["countryCode"]),
                watermark_appid=str(watermark.get("appid", "")),
                watermark_timestamp=watermark.get("timestamp"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise WechatRetryableError(endpoint=endpoint, errmsg="incomplete response") from exc

    def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: Mapping[str, Any],
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> int | None:
        """Send one subscribe message (cgi-bin/message/subscribe/send); returns WeChat's msgid.

        `data` is either {"thing1": "text"} or the wire form {"thing1": {"value": "text"}}.
        """
        endpoint = "cgi-bin/message/subscribe/send"
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {k: v if isinstance(v, Mapping) else {"value": v} for k, v in data.items()},
            "lang": lang,
        }
        if page is not None:
            body["page"] = page
        if miniprogram_state is not None:
            body["miniprogram_state"] = miniprogram_state
        result = self._call(endpoint, lambda: self._wx.wxa._post(endpoint, data=body))
        return result.get("msgid")

    def face_get_verify_id(self, body: dict) -> dict:
        """Start a face verification 2.0 session (cityservice/face/identify/getverifyid)."""
        endpoint = "cityservice/face/identify/getverifyid"
        return self._call(endpoint, lambda: self._wx.wxa._post(endpoint, data=body))

    def face_query_verify_info(self, body: dict) -> dict:
        """Ask for a face verification 2.0 result (cityservice/face/identify/queryverifyinfo)."""
        endpoint = "cityservice/face/identify/queryverifyinfo"
        return self._call(endpoint, lambda: self._wx.wxa._post(endpoint, data=body))

    # -- plumbing --------------------------------------------------------------------------

    def _current_token(self) -> str | None:
        return self._storage.get(self._wx.access_token_key)

    def _call(self, endpoint: str, fn: Callable[[], Any]) -> dict:
        """Run one API call; on an access-token error refresh the token once and retry."""
        token_before = self._current_token()
        try:
            return self._checked(endpoint, fn)
        except WechatApiError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
            log.info(
                "wechat access token refused; refreshing",
                extra={"endpoint": endpoint, "errcode": exc.errcode},
            )
        # Without a token before the call, the call fetched the one that was just refused.
        self._refresh_token(token_before or self._current_token())
        return self._checked(endpoint, fn)

    def _refresh_token(self, refused: str | None) -> None:
        lock = self._redis.lock(f"{self._prefix}:{self.appid}:refresh-lock", timeout=_REFRESH_LOCK_SECONDS,
                                blocking_timeout=_REFRESH_LOCK_SECONDS)  # fmt: skip
        try:
            acquired = lock.acquire()
        except LockError:
            acquired = False
        if not acquired:
            raise WechatRetryableError(endpoint="cgi-bin/stable_token", errmsg="token refresh in progress")
        try:
            current = self._current_token()
            if current is not None and current != refused:
                return  # another process refreshed while we waited
            fresh = self._checked("cgi-bin/stable_token", lambda: self._wx.fetch_access_token(False))
            if fresh.get("access_token") == refused:
                # WeChat still hands out the token it refuses: only a forced refresh helps.
                self._checked("cgi-bin/stable_token", lambda: self._wx.fetch_access_token(True))
        finally:
            try:
                lock.release()
            except LockError:  # held past its timeout: another process may already own it
                pass

    def _checked(self, endpoint: str, fn: Callable[[], Any]) -> dict:
        """Call, and turn every failure into a classified WechatApiError."""
        try:
            result = fn()
        except requests.Timeout as exc:
            log.warning("wechat call timed out", extra={"endpoint": endpoint})
            raise WechatRetryableError(endpoint=endpoint, errmsg="timeout") from exc
        except requests.RequestException as exc:
            log.warning("wechat unreachable", extra={"endpoint": endpoint, "error_type": type(exc).__name__})
            raise WechatRetryableError(endpoint=endpoint, errmsg="connection failed") from exc
        except WeChatClientException as exc:
            raise self._from_wechatpy(endpoint, exc) from exc
        if not isinstance(result, dict):
            log.warning("wechat answered without JSON", extra={"endpoint": endpoint})
            raise WechatRetryableError(endpoint=endpoint, errmsg="response is not JSON")
        return result

    def _from_wechatpy(self, endpoint: str, exc: WeChatClientException) -> WechatApiError:
        if exc.errcode is None:
            status = getattr(exc.response, "status_code", None)
            if status is None or status >= 500:
                log.warning("wechat HTTP failure", extra={"endpoint": endpoint, "http_status": status})
                return WechatRetryableError(endpoint=endpoint, http_status=status, errmsg="http error")
            log.error("wechat HTTP error: check WECHAT_API_BASE",
                      extra={"endpoint": endpoint, "http_status": status})  # fmt: skip
            return WechatConfigError(endpoint=endpoint, http_status=status, errmsg="http error")
        errmsg = str(exc.errmsg or "")[:200]
        error = classify(endpoint=endpoint, errcode=int(exc.errcode), errmsg=errmsg)
        if isinstance(error, WechatConfigError):
            log.error("wechat rejected our configuration: check WECHAT_APPID/WECHAT_SECRET/IP whitelist",
                      extra={"endpoint": endpoint, "errcode": error.errcode, "errmsg": errmsg})  # fmt: skip
        elif isinstance(error, WechatRetryableError):
            log.warning("wechat busy or limited", extra={"endpoint": endpoint, "errcode": error.errcode})
        return error
