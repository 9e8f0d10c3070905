"""Client registration by operators, and the checks every OAuth request makes of a client.

Redirect URIs are matched exactly (RFC 9700 §4.1.3): no prefix, no case folding, no trailing
slash leniency. The one relaxation is RFC 8252 §7.3: a native (public) client that registered a
loopback URI (http://127.0.0.1/... or http://[::1]/...) may use any port on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.crypto import constant_time_equal, random_token, token_hash
from core.errors import Text
from core.text import has_visible_text
from domain.auth.revocation import RevocationList
from domain.oauth import scopes as scope_catalog
from domain.oauth import tokens as oauth_tokens
from domain.oauth.errors import ClientInvalid, ClientNotFound
from domain.oauth.models import (
    APPROVED,
    CLIENT_STATUSES,
    CONFIDENTIAL,
    NO_AUTH,
    PRIVATE_KEY_JWT,
    PUBLIC,
    SECRET_BASIC,
    SUSPENDED,
    OAuthClient,
)
from domain.operators import audit_log
from domain.operators.audit_log import Actor


@dataclass
class Registered:
    client: OAuthClient
    client_secret: str | None  # shown once, at registration or rotation


_CLIENT_ID_FORM = re.compile(r"[A-Za-z0-9._~-]{1,40}")


def could_be_client_id(value: object) -> bool:
    """Whether `value` has a client id's form; anything else names no client (and is never
    looked up: a NUL byte is refused by PostgreSQL text)."""
    return isinstance(value, str) and _CLIENT_ID_FORM.fullmatch(value) is not None


def _loopback(uri: str) -> bool:
    """http://127.0.0.1[:port]/... or http://[::1][:port]/..., written exactly so (RFC 8252 §7.3)."""
    if not uri.startswith(("http://127.0.0.1", "http://[::1]")):
        return False
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.hostname in ("127.0.0.1", "::1") and not parts.username and not parts.fragment


def _invalid(field: str, en: str, zh: str, *values: str) -> ClientInvalid:
    """422 `oauth.client_invalid`: the reason in the message and under the field, in the answer's
    language, followed there by the values at fault, if any."""
    en_at, zh_at = (f": {', '.join(values)}", f"：{'、'.join(values)}") if values else ("", "")
    return ClientInvalid(reason=Text(en, zh), fields={field: [Text(en + en_at, zh + zh_at)]})


def _check_redirect_uri(uri: str, client_type: str) -> None:
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise _invalid(
            "redirect_uris", "a redirect URI may not hold a fragment (#)", "回调地址不能包含片段（#）", uri
        )
    if parts.username or parts.password or "@" in parts.netloc:
        raise _invalid(
            "redirect_uris", "a redirect URI may not hold user information", "回调地址不能包含用户信息", uri
        )
    if "*" in uri:
        raise _invalid(
            "redirect_uris", "a redirect URI may not hold a wildcard", "回调地址不能使用通配符", uri
        )
    if parts.scheme == "https" and parts.hostname:
        return
    if client_type == PUBLIC and _loopback(uri):
        return
    # A native app's private-use scheme, reverse-domain style (RFC 8252 §7.1), e.g. cn.bank.app:/cb
    if client_type == PUBLIC and "." in parts.scheme and parts.scheme not in ("http", "https"):
        return
    raise _invalid(
        "redirect_uris",
        "a redirect URI must be https (a native app may use a loopback address or a reverse-domain scheme)",
        "回调地址须为 https 地址（原生应用可用本机回环地址或反向域名协议）",
        uri,
    )


def redirect_uri_matches(client: OAuthClient, uri: str) -> bool:
    """Exact match against a registered URI, or a loopback URI on any port for native clients."""
    if uri in client.redirect_uris:
        return True
    if client.client_type != PUBLIC or not _loopback(uri):
        return False
    asked = urlsplit(uri)
    for registered in client.redirect_uris:
        if not _loopback(registered):
            continue
        reg = urlsplit(registered)
        if (reg.hostname, reg.path, reg.query) == (asked.hostname, asked.path, asked.query):
            return True
    return False


# The algorithms a client assertion may be signed with (the token endpoint's metadata lists
# these, and only these are verified), and the keys they take: EC on P-256, RSA of 2048 bits on.
ASSERTION_ALGORITHMS = ("ES256", "RS256", "PS256")
_KEY_TYPES = ("EC", "RSA")
_MIN_RSA_BITS = 2048


def _check_jwks(jwks: dict[str, Any]) -> None:
    """A JWKS the token endpoint can use: every key readable, asymmetric and public only. A key
    pasted without its coordinates used to be accepted and then failed every token request."""
    if not isinstance(jwks.get("keys"), list):
        raise _invalid(
            "jwks",
            'the JWKS cannot be read: an object with a "keys" array',
            "公钥（JWKS）无法读取：应为带 keys 数组的对象",
        )
    try:
        keys = KeySet.import_key_set(jwks).keys
    except (JoseError, ValueError, TypeError, AttributeError, LookupError) as exc:
        raise _invalid("jwks", "the JWKS cannot be read", "公钥（JWKS）无法读取", str(exc)[:200]) from None
    for key in keys:
        if key.key_type not in _KEY_TYPES:
            raise _invalid(
                "jwks",
                "JWKS keys must be EC P-256 (ES256) or RSA (RS256, PS256)",
                "公钥（JWKS）须为 EC P-256（ES256）或 RSA（RS256、PS256）密钥",
                f"kty {key.key_type}",
            )
        if key.key_type == "EC" and getattr(key, "curve_name", None) != "P-256":
            raise _invalid(
                "jwks", "EC keys must be on curve P-256 (ES256)", "EC 公钥须为 P-256 曲线（ES256）",
                f"crv {getattr(key, 'curve_name', None)}",
            )  # fmt: skip
        if key.key_type == "RSA" and key.raw_value.key_size < _MIN_RSA_BITS:
            raise _invalid(
                "jwks", "RSA keys must have at least 2048 bits", "RSA 公钥长度须不少于 2048 位",
                f"{key.raw_value.key_size} bits",
            )  # fmt: skip
        if key.is_private:
            # Whoever holds a private key can sign as the app: it must never leave the app.
            raise _invalid(
                "jwks", "register public keys only, never a private key", "只登记公钥，不可提交私钥"
            )


def register(
    session: Session,
    *,
    actor: Actor,
    name: str,
    contact: str,
    client_type: str,
    redirect_uris: list[str],
    scopes: list[str],
    logo_url: str | None = None,
    auth_method: str | None = None,
    jwks: dict[str, Any] | None = None,
) -> Registered:
    """Register a client (status pending until an operator approves it)."""
    # The consent page shows both to citizens: a blank name would be a nameless app.
    name, contact = name.strip(), contact.strip()
    if not has_visible_text(name):
        raise _invalid("name", "the app needs a name citizens can read", "请填写市民能看到的应用名称")
    if not has_visible_text(contact):
        raise _invalid("contact", "the app needs a contact citizens can read", "请填写市民能看到的联系方式")
    if client_type not in (CONFIDENTIAL, PUBLIC):
        raise _invalid(
            "client_type",
            "the type must be confidential or public",
            "类型须为 confidential 或 public",
            client_type,
        )
    if auth_method is None:
        auth_method = SECRET_BASIC if client_type == CONFIDENTIAL else NO_AUTH
    allowed_methods = (SECRET_BASIC, PRIVATE_KEY_JWT) if client_type == CONFIDENTIAL else (NO_AUTH,)
    if auth_method not in allowed_methods:
        raise _invalid(
            "auth_method",
            "the authentication method does not suit the client type",
            "认证方式与应用类型不符",
            auth_method,
        )
    if auth_method == PRIVATE_KEY_JWT and not (jwks and isinstance(jwks.get("keys"), list) and jwks["keys"]):
        raise _invalid(
            "jwks", "private_key_jwt needs public keys (JWKS)", "private_key_jwt 须登记公钥（JWKS）"
        )
    if jwks is not None:
        _check_jwks(jwks)
    if not redirect_uris and set(scopes) - scope_catalog.CLIENT_ONLY:
        raise _invalid("redirect_uris", "register at least one redirect URI", "至少登记一个回调地址")
    for uri in redirect_uris:
        _check_redirect_uri(uri, client_type)
    unknown = [s for s in scopes if s not in scope_catalog.SCOPES]
    if unknown or not scopes:
        raise _invalid(
            "scopes",
            "unknown scopes" if unknown else "name at least one scope",
            "未知的授权范围" if unknown else "至少选择一个授权范围",
            *unknown,
        )
    if logo_url and not logo_url.startswith("https://"):
        raise _invalid("logo_url", "the logo must be an https address", "图标须为 https 地址", logo_url)
    secret = random_token(32) if auth_method == SECRET_BASIC else None
    client = OAuthClient(
        id="yw_" + random_token(12).replace("-", "x").replace("_", "y"),
        name=name, logo_url=logo_url, contact=contact, client_type=client_type,
        auth_method=auth_method, secret_hash=token_hash(secret) if secret else None,
        jwks=jwks, redirect_uris=list(dict.fromkeys(redirect_uris)),
        scopes=scope_catalog.join(scopes), status="pending", created_at=clock.now(), created_by=actor.id,
    )  # fmt: skip
    session.add(client)
    audit_log.record(session, actor, "oauth.client_register", target_type="oauth_client", target_id=client.id)
    session.commit()
    return Registered(client, secret)


def get(session: Session, client_id: str) -> OAuthClient:
    client = session.get(OAuthClient, client_id) if client_id else None
    if client is None:
        raise ClientNotFound()
    return client


def list_all(session: Session) -> list[OAuthClient]:
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.created_at)))


def set_status(
    session: Session, *, actor: Actor, revocations: RevocationList, client_id: str, status: str
) -> OAuthClient:
    """Approve, suspend, or set back to pending. Any move away from approved ends every token
    citizens' grants gave the client, at once (their grants stay listed, so a re-approved client
    can be used again after a fresh login): a client that may not authenticate must not act
    with the tokens it holds either, nor resume with its old refresh tokens once approved."""
    if status not in CLIENT_STATUSES:
        raise _invalid("status", "unknown status", "未知状态", status)
    client = get(session, client_id)
    client.status = status
    client.status_changed_at = clock.now()
    client.status_changed_by = actor.id
    if status != APPROVED:
        oauth_tokens.lock_client_grants(session, client.id)  # a token issue under way finishes first
        reason = "client_suspended" if status == SUSPENDED else "client_unapproved"
        oauth_tokens.revoke_families(
            session, revocations, oauth_tokens.grant_family_ids(session, client.id), reason=reason
        )
    audit_log.record(
        session, actor, "oauth.client_status", target_type="oauth_client", target_id=client.id,
        details={"status": status},
    )  # fmt: skip
    session.commit()
    return client


def rotate_secret(session: Session, *, actor: Actor, client_id: str) -> Registered:
    client = get(session, client_id)
    if client.auth_method != SECRET_BASIC:
        raise _invalid(
            "auth_method",
            "this client does not authenticate with a secret",
            "该应用不使用密钥认证",
            client.auth_method,
        )
    secret = random_token(32)
    client.secret_hash = token_hash(secret)
    audit_log.record(
        session, actor, "oauth.client_secret_rotate", target_type="oauth_client", target_id=client.id
    )
    session.commit()
    return Registered(client, secret)


def secret_matches(client: OAuthClient, secret: str | None) -> bool:
    """Secrets are 256-bit random values made here, so a plain SHA-256 suffices (no slow hash)."""
    if not secret or not client.secret_hash:
        return False
    return constant_time_equal(token_hash(secret), client.secret_hash)


def usable(client: OAuthClient | None) -> bool:
    return client is not None and client.status == APPROVED
