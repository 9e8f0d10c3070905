"""Mini-program login and phone binding: wx code → WeChat → account → session.

WeChat is asked first and the database written only after it answered, so a WeChat failure
leaves no account, identity or session behind. The session_key WeChat returns is stored
encrypted on the openid identity and never returned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core.crypto import Encryptor, LookupHasher
from core.errors import AppError, RateLimited, UpstreamError
from core.masking import mask_phone
from core.tokens import TokenService
from domain.accounts import service as accounts
from domain.accounts.errors import AccountNotFound, InvalidPhone
from domain.accounts.models import WECHAT_OPENID, ChannelIdentity
from domain.accounts.phone import normalize_phone
from domain.auth import sessions
from domain.auth.errors import WechatCodeInvalid, WechatPhoneCodeInvalid, WechatRequired, WechatRiskyUser
from domain.auth.models import CHANNEL_MINIPROGRAM, LoginSession
from domain.auth.revocation import RevocationList
from integrations.wechat.client import WechatClient
from integrations.wechat.errors import WechatApiError

log = logging.getLogger(__name__)

# WeChat asks callers to wait for the next minute after 45011.
WECHAT_RATE_LIMIT_RETRY_AFTER = 60


@dataclass
class MiniprogramLogin:
    tokens: sessions.TokenPair
    new_account: bool


@dataclass
class PhoneBound:
    phone_masked: str
    merged: bool
    tokens: sessions.TokenPair | None  # set when the caller now belongs to another account


def _raise_wechat(exc: WechatApiError, *, invalid_code: type[AppError]) -> NoReturn:
    """Translate a WeChat failure into what the citizen is told."""
    if exc.errcode == 40029:
        raise invalid_code() from exc
    if exc.errcode == 45011:
        raise RateLimited(retry_after=WECHAT_RATE_LIMIT_RETRY_AFTER, scope="wechat") from exc
    if exc.errcode == 40226:
        raise WechatRiskyUser() from exc
    # Busy, unreachable, or our configuration (the client has logged which): nothing to fix
    # on the phone, so the citizen gets a retryable 502.
    raise UpstreamError() from exc


def login_miniprogram(
    session: Session,
    *,
    wechat: WechatClient,
    encryptor: Encryptor,
    tokens: TokenService,
    policy: sessions.SessionPolicy,
    code: str,
    device_label: str | None,
    ip: str | None = None,
) -> MiniprogramLogin:
    """Exchange a wx.login code for yiwang tokens; the account is created on first login."""
    try:
        result = wechat.code_to_session(code)
    except WechatApiError as exc:
        _raise_wechat(exc, invalid_code=WechatCodeInvalid)
    # Two first logins of one user can race on the unique identity: the loser retries and finds
    # it. A closure of the account under way when the login found it (its WeChat identity then
    # deleted, the account closed: StaleDataError, or AccountNotFound from the session's flush
    # check, domain/accounts/open_guard.py) is retried the same way and makes a new account.
    for attempt in (1, 2):
        try:
            found = accounts.login_wechat(
                session, encryptor=encryptor, appid=wechat.appid, openid=result.openid,
                unionid=result.unionid, session_key=result.session_key,
            )  # fmt: skip
            audit.record(
                session, actor_type="citizen", actor_id=found.account.id, action="auth.login",
                target_type="account", target_id=found.account.id, ip=ip,
                details={"channel": CHANNEL_MINIPROGRAM, "new_account": found.created},
            )  # fmt: skip
            pair = sessions.start_session(
                session, tokens=tokens, policy=policy, account=found.account,
                channel=CHANNEL_MINIPROGRAM, device_label=device_label,
            )  # fmt: skip
            return MiniprogramLogin(pair, found.created)
        except (IntegrityError, StaleDataError, AccountNotFound):
            session.rollback()
            if attempt == 2:
                raise
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _has_openid(session: Session, account_id: str, appid: str) -> bool:
    return (
        session.scalar(
            select(ChannelIdentity.id).where(
                ChannelIdentity.account_id == account_id,
                ChannelIdentity.kind == WECHAT_OPENID,
                ChannelIdentity.issuer == appid,
            )
        )
        is not None
    )


def bind_wechat_phone(
    session: Session,
    *,
    wechat: WechatClient,
    encryptor: Encryptor,
    hasher: LookupHasher,
    tokens: TokenService,
    policy: sessions.SessionPolicy,
    revocations: RevocationList,
    account_id: str,
    session_id: str,
    code: str,
    ip: str | None = None,
) -> PhoneBound:
    """Bind the phone WeChat vouches for; on a merge, move the caller to the phone's account."""
    account = accounts.get_account(session, account_id)
    # Checked before calling WeChat so a refused caller does not burn the single-use code.
    if not _has_openid(session, account.id, wechat.appid):
        raise WechatRequired()
    try:
        info = wechat.get_phone_number(code)
    except WechatApiError as exc:
        _raise_wechat(exc, invalid_code=WechatPhoneCodeInvalid)
    if info.watermark_appid != wechat.appid:
        log.error(
            "wechat phone watermark names another appid", extra={"watermark_appid": info.watermark_appid}
        )
        raise UpstreamError()
    if info.country_code != "86":
        raise InvalidPhone()
    phone = normalize_phone(info.pure_phone_number)
    try:
        binding = accounts.bind_phone(
            session, encryptor=encryptor, hasher=hasher, account=account, phone=phone
        )
        audit.record(
            session, actor_type="citizen", actor_id=binding.account.id, action="account.phone_bound",
            target_type="account", target_id=binding.account.id, ip=ip,
            details={"source": "wechat", "merged_from": binding.merged_from, "replaced": binding.replaced},
        )  # fmt: skip
        if binding.merged_from is None:
            if binding.replaced:
                # The number logs in by SMS: whoever held the old one (a lost or stolen phone, a
                # number the carrier gave to someone else) must not stay signed in with it. The
                # device the citizen changed it on goes on.
                sessions.revoke_all(
                    session, revocations=revocations, account_id=account.id, reason="phone_changed",
                    keep=session_id,
                )  # fmt: skip
            session.commit()
            return PhoneBound(mask_phone(phone) or "", False, None)
        # The old account is closed: its devices sign in again, this one continues as the target.
        current = session.get(LoginSession, session_id)
        sessions.revoke_all(
            session, revocations=revocations, account_id=binding.merged_from, reason="account_merged"
        )
        pair = sessions.start_session(
            session, tokens=tokens, policy=policy, account=binding.account, channel=CHANNEL_MINIPROGRAM,
            device_label=current.device_label if current else None,
        )  # fmt: skip
        return PhoneBound(mask_phone(phone) or "", True, pair)
    except BaseException:
        session.rollback()
        raise
