"""The pages a citizen sees when a convenience app asks for access: sign in, consent, errors.

Server-rendered, no external assets, readable at 360 px in WeChat's in-app browser. Nothing on
these pages trusts a URL it did not check: before anything is shown, Authlib validates the
client, its exact redirect URI, the response type, the scopes and PKCE; an error that cannot be
sent back safely (unknown client, redirect URI not registered) is shown here, never redirected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from flask import Response, current_app, g, make_response, redirect, render_template, request

from api.deps import services
from api.middleware import client_ip
from api.oauth import browser
from api.oauth.grants import AuthorizationCode
from api.oauth.server import oauth_server
from api.oauth.views import bp
from api.v1.sms_login import send_code_for
from core.crypto import random_token
from core.db import db
from core.errors import AppError
from domain.accounts.models import Account
from domain.auth import sms_login as otp
from domain.oauth import clients, grants
from domain.oauth import scopes as scope_catalog
from domain.oauth.models import OAuthClient

PASS_THROUGH = ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                "code_challenge_method")  # fmt: skip
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'nonce-{nonce}'; "
       "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip


def page(template: str, status: int = 200, cookie: str | None = None, **ctx: Any) -> Response:
    nonce = random_token(12)
    resp = make_response(render_template(f"oauth/{template}", nonce=nonce, **ctx), status)
    resp.headers["Content-Security-Policy"] = CSP.format(nonce=nonce)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    if cookie:
        browser.set_cookie(resp, cookie)
    return resp


def error_page(title: str, detail: str, status: int = 400) -> Response:
    return page("error.html", status, title=title, detail=detail)


def _params(source: Any) -> dict[str, str]:
    return {k: source[k] for k in PASS_THROUGH if source.get(k)}


def authorize_url(params: dict[str, str]) -> str:
    return "/oauth/authorize?" + urlencode(params)


def _precheck(params: dict[str, str]) -> Response | None:
    if not params.get("redirect_uri"):
        return error_page(
            "请求缺少回调地址", "该应用发起的授权请求不完整（缺少 redirect_uri），请返回该应用重试。"
        )
    if any(len(v) > 2000 or any(ord(c) < 32 or ord(c) == 127 for c in v) for v in params.values()):
        return error_page("无法完成授权", "该应用的授权请求含有无效字符，请返回该应用重试。")
    return None


def error_redirect(redirect_uri: str, error: str, description: str | None = None) -> Response:
    """An error sent back to a checked redirect URI, with state and iss (RFC 9207 §2)."""
    params = [("error", error)]
    if description:
        params.append(("error_description", description))
    if state := request.values.get("state"):
        params.append(("state", state))
    params.append(("iss", services().tokens.issuer))
    resp = redirect(add_params_to_uri(redirect_uri, params), 302)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# What the error page tells the citizen for each RFC 6749 error code, in plain Chinese. Authlib's
# descriptions are English for developers and may repeat the caller's input (a redirect URI):
# they go back to the app in `error_description` when that is safe, never onto the page.
CITIZEN_ERRORS: dict[str, str] = {
    "invalid_client": (
        "无法识别发起授权的应用：它未在本平台登记，或已暂停服务。请返回该应用，或联系该应用的客服。"
    ),
    "invalid_request": "该应用发起的授权请求有误（例如回调地址与登记的不一致），请返回该应用重试。",
    "unauthorized_client": "该应用无权以这种方式申请授权，请返回该应用重试。",
    "invalid_scope": "该应用申请的权限有误，或超出了它在本平台登记的范围，请返回该应用重试。",
    "unsupported_response_type": "该应用使用了本平台不支持的授权方式，请返回该应用重试。",
    "access_denied": "授权未完成：已拒绝该应用的授权请求。请返回该应用。",
    "server_error": "系统暂时出现故障，请稍后再试。",
    "temporarily_unavailable": "系统繁忙，请稍后再试。",
}
CITIZEN_ERROR_OTHER = "该应用的授权请求无效，请返回该应用重试。"


def citizen_error_text(error: str | None) -> str:
    """The error page's sentence for an RFC 6749 error code (a generic one for any other code)."""
    return CITIZEN_ERRORS.get(error or "", CITIZEN_ERROR_OTHER)


def _oauth_error(error: OAuth2Error) -> Response:
    if getattr(error, "redirect_uri", None):
        return error_redirect(error.redirect_uri, error.error, error.description)
    return error_page("无法完成授权", citizen_error_text(error.error))


def checked_request(params: dict[str, str], end_user: Account | None = None) -> AuthorizationCode | Response:
    """The authorization request of this HTTP request (query or form), checked as the
    authorization endpoint checks it: a usable (approved) client, its exact redirect URI, the
    response type, scopes it is registered for, PKCE, `state`. Authlib's consent grant, or the
    answer to give instead (an error page, or an error sent back to the checked redirect URI)."""
    if (bad := _precheck(params)) is not None:
        return bad
    try:
        grant = oauth_server().get_consent_grant(end_user=end_user)
    except OAuth2Error as error:
        return _oauth_error(error)
    except ValueError:  # Authlib refuses to build an error from some malformed values
        return error_page("无法完成授权", CITIZEN_ERROR_OTHER)
    if not params.get("state"):
        return error_redirect(params["redirect_uri"], "invalid_request", "state is required")
    return grant


@bp.get("/authorize")
def authorize() -> Response:
    params = _params(request.args)
    grant = checked_request(params)
    if isinstance(grant, Response):
        return grant
    raw, data, new = browser.ensure()
    account = _signed_in(data)
    client: OAuthClient = grant.client.row
    if account is None:
        return page("login.html", cookie=raw if new else None, client=client, params=params,
                    csrf=data["csrf"], step="start")  # fmt: skip
    return _consent(client, params, account, data, cookie=raw if new else None)


def _signed_in(data: dict[str, Any]) -> Account | None:
    account_id = data.get("account_id")
    account = db.session().get(Account, account_id) if account_id else None
    return account if account is not None and account.status == "active" else None


def _consent(
    client: OAuthClient,
    params: dict[str, str],
    account: Account,
    data: dict,
    cookie: str | None = None,
    problem: str | None = None,
) -> Response:
    req = grants.prepare(client, scope_catalog.parse(params.get("scope")), account)
    phone = next((i.value_masked for i in account.identities if i.kind == "phone" and i.value_masked), None)
    return page(
        "consent.html", cookie=cookie, client=client, params=params, csrf=data["csrf"],
        ordinary=scope_catalog.describe(req.ordinary), sensitive=scope_catalog.describe(req.sensitive),
        too_low=set(req.too_low), durations=grants.DURATIONS_DAYS, default_days=grants.DEFAULT_DAYS,
        account_label=phone or "当前账号", problem=problem,
    )  # fmt: skip


@bp.post("/authorize")
def decide() -> Response:
    raw, data = browser.load()
    form = request.form
    if raw is None or not browser.csrf_ok(data, form.get("csrf")):
        return error_page("页面已过期", "为保护您的账号安全，请返回该应用重新发起授权。", 403)
    account = _signed_in(data)
    if account is None:
        return error_page("请先登录", "登录状态已失效，请返回该应用重新发起授权。", 401)
    params = _params(form)
    grant = checked_request(params, end_user=account)
    if isinstance(grant, Response):
        return grant
    if form.get("decision") != "allow":
        return error_redirect(grant.redirect_uri, "access_denied", "The citizen declined.")
    session = db.session()
    try:
        row = grants.consent(
            session, account=account, client=grant.client.row, asked=scope_catalog.parse(params.get("scope")),
            sensitive_accepted=form.getlist("sensitive"), days=int(form.get("days") or grants.DEFAULT_DAYS),
            revocations=services().revocations,
        )  # fmt: skip
    except (AppError, ValueError) as exc:
        session.rollback()
        message = exc.message("zh") if isinstance(exc, AppError) else "请选择授权期限"
        return _consent(grant.client.row, params, account, data, problem=message)
    session.commit()
    return oauth_server().create_authorization_response(grant_user=(account, row), grant=grant)


def form_context() -> tuple[str, dict[str, Any], dict[str, str], OAuthClient] | Response:
    """(cookie value, browser record, authorization parameters, client) of a sign-in form post,
    or the page to show when the form is stale or forged, or the answer the authorization
    endpoint gives when the request it carries is not one it accepts (an unapproved client,
    scopes the client is not registered for, ...: `checked_request`)."""
    raw, data = browser.load()
    params = _params(request.form)
    client_id = params.get("client_id")
    client = db.session().get(OAuthClient, client_id) if clients.could_be_client_id(client_id) else None
    if raw is None or client is None or not browser.csrf_ok(data, request.form.get("csrf")):
        return error_page("页面已过期", "请返回该应用重新发起授权。", 403)
    grant = checked_request(params)
    if isinstance(grant, Response):
        return grant
    return raw, data, params, grant.client.row


@bp.post("/login/sms/send")
def sms_send() -> Response:
    ctx = form_context()
    if isinstance(ctx, Response):
        return ctx
    raw, data, params, client = ctx
    phone = (request.form.get("phone") or "").strip()
    shown = {"client": client, "params": params, "csrf": data["csrf"], "phone": phone}
    try:
        sent = send_code_for(phone)
    except AppError as exc:
        return page("login.html", 400, step="start", problem=exc.message("zh"), **shown)
    # The code is this browser's own wherever it is typed from (4G after Wi-Fi): a stranger's
    # wrong guesses at the number count against them, not against the citizen's code.
    browser.save(raw, {**data, "sms_challenge": sent.challenge_id})
    return page("login.html", step="code", **shown)


@bp.post("/login/sms")
def sms_login() -> Response:
    ctx = form_context()
    if isinstance(ctx, Response):
        return ctx
    raw, data, params, client = ctx
    phone = (request.form.get("phone") or "").strip()
    code = (request.form.get("code") or "").strip()
    svc = services()
    session = db.session()
    try:
        account, _ = otp.verify_code(
            session, encryptor=svc.encryptor, hasher=svc.hasher, ratelimiter=svc.ratelimiter,
            policy=otp.OtpPolicy.from_config(current_app.config), phone=phone, code=code,
            ip=client_ip(), request_id=g.get("request_id"), where="oauth_page",
            challenge_id=data.get("sms_challenge"),
        )  # fmt: skip
        session.commit()
    except AppError as exc:
        session.rollback()
        return page("login.html", 400, client=client, params=params, csrf=data["csrf"], step="code",
                    phone=phone, problem=exc.message("zh"))  # fmt: skip
    resp = redirect(authorize_url(params), 303)
    browser.set_cookie(resp, browser.sign_in(raw, data, account.id))
    return resp


@bp.post("/logout")
def logout() -> Response:
    """ "Not me, switch account": the page's own form only (its CSRF token), so another site
    cannot sign the citizen out of a consent page. Without a cookie there is nothing to end."""
    raw, data = browser.load()
    if raw is not None and not browser.csrf_ok(data, request.form.get("csrf")):
        return error_page("页面已过期", "为保护您的账号安全，请返回该应用重新发起授权。", 403)
    resp = redirect(authorize_url(_params(request.form)), 303)
    if raw is not None:
        browser.clear(resp)
    return resp
