"""A real browser (Debian's Chromium, headless, 360 px wide, WeChat's user agent) completes the
flow on the OAuth pages: SMS sign-in, consent, redirect back with a code the app redeems; and the
QR sign-in page's script notices the phone's approval. The consent screen is saved as a picture
in artifacts/ (ARTIFACTS_DIR to change)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.api.v1.test_sms_login import code_on_phone, deliver
from tests.oauth.conftest import REDIRECT, authorize_params, pkce

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2148A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0 Mobile "
    "Safari/537.36 XWEB/1160065 MMWEBSDK/20231202 MicroMessenger/8.0.47.2560(0x28002F30) NetType/WIFI"
)
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR") or Path(__file__).resolve().parents[2] / "artifacts")
PHONE = "13912340088"


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("YIWANG_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (scripts/ensure-chromium installs it)")
        pytest.skip("Debian's chromium is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = b.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            user_agent=WECHAT_UA,
            locale="zh-CN",
        )
        yield context
        context.close()
        b.close()


def _catch_callback(page) -> dict:
    """The app's redirect URI is not reachable from here: answer it in the browser and keep the URL."""
    seen: dict = {}

    def answer(route):
        seen["url"] = route.request.url
        route.fulfill(status=200, content_type="text/html", body="<p>ok</p>")

    page.route(REDIRECT + "*", answer)
    return seen


def test_a_phone_browser_signs_in_by_sms_consents_and_the_app_gets_a_token(live, bank, sms_sim, browser):
    httpx.post(sms_sim.url + "_sim/reset").raise_for_status()
    verifier, challenge = pkce()
    params = authorize_params(bank, challenge)
    page = browser.new_page()
    seen = _catch_callback(page)
    page.goto(live.url + "oauth/authorize?" + urlencode(params))
    assert page.get_by_text("请先登录一网通办").is_visible()
    page.fill("#phone", PHONE)
    page.click("#send")
    page.wait_for_selector("#code")
    deliver()
    page.fill("#code", code_on_phone(sms_sim, PHONE))
    page.click("#login")
    page.wait_for_selector("#allow")
    assert page.get_by_text("查看办件").is_visible() and page.get_by_text("便民银行").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing wider than the phone
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "oauth-consent-360.png"), full_page=True)
    page.click("#allow")
    page.wait_for_function("() => location.href.startsWith('https://bank.example.cn')")
    got = {k: v[0] for k, v in parse_qs(urlsplit(seen["url"]).query).items()}
    assert got["state"] == params["state"] and got["iss"]
    token = httpx.post(
        live.url + "oauth/token",
        auth=(bank["id"], bank["secret"]),
        data={
            "grant_type": "authorization_code",
            "code": got["code"],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert token.status_code == 200 and token.json()["scope"] == "profile.basic applications.read"


def test_the_qr_page_moves_on_by_itself_once_the_phone_approves(live, bank, citizen, browser):
    _, challenge = pkce()
    page = browser.new_page()
    page.goto(live.url + "oauth/authorize?" + urlencode(authorize_params(bank, challenge)))
    page.click("#qr")
    page.wait_for_selector("svg")
    script_url = page.evaluate(
        "() => [...document.scripts].map(s => s.textContent).join('')"
        '.match(/\\/oauth\\/login\\/qr\\/[^"]+/)[0]'
    )
    request_id = script_url.rsplit("/", 1)[1]
    approved = httpx.post(
        live.url + f"v1/oauth-login-requests/{request_id}/approve", headers=citizen["headers"]
    )
    assert approved.status_code == 200
    page.wait_for_selector("#allow", timeout=15000)  # the page's own script saw the approval
    assert page.get_by_text("同意授权").is_visible()
