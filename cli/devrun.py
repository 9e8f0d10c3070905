"""`make run`: everything on the embedded defaults — migrate, seed, simulators, API, worker, sweeper.

Runs until Ctrl-C (or SIGTERM), then stops every process it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from config import load_config
from core.redis import resolve_url
from integrations.realname.people import DEMO_PEOPLE

ROOT = Path(__file__).resolve().parent.parent
API_PORT = int(os.environ.get("PORT", "8000"))
WECHAT_PORT = int(os.environ.get("WECHAT_SIM_PORT", "9101"))
SMS_PORT = int(os.environ.get("SMS_SIM_PORT", "9102"))
FACEID_PORT = int(os.environ.get("FACEID_SIM_PORT", "9103"))
ALIPAY_PORT = int(os.environ.get("ALIPAY_SIM_PORT", "9104"))
IDCHECK_PORT = int(os.environ.get("IDCHECK_SIM_PORT", "9105"))
PROVINCE_PORT = int(os.environ.get("PROVINCE_SIM_PORT", "9106"))
APNS_PORT = int(os.environ.get("APNS_SIM_PORT", "9107"))
JPUSH_PORT = int(os.environ.get("JPUSH_SIM_PORT", "9108"))
HUAWEI_PORT = int(os.environ.get("HUAWEI_SIM_PORT", "9109"))
EXCHANGE_PORT = int(os.environ.get("EXCHANGE_SIM_PORT", "9110"))
ECERT_PORT = int(os.environ.get("ECERT_SIM_PORT", "9111"))


def _wait_http(url: str, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return True
        except Exception:
            time.sleep(0.2)
    return False


_DEMO_VERIFIER = "demo-verifier-" + "0" * 40  # a demo value: real apps make a random one per login


def _demo_authorize_path() -> str:
    """The demo app's authorization request (PKCE S256), for trying the pages in a browser."""
    import base64
    import hashlib
    from urllib.parse import urlencode

    from domain.oauth.demo import DEMO_CLIENT_ID, DEMO_REDIRECT, DEMO_SCOPES

    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(_DEMO_VERIFIER.encode()).digest()).rstrip(b"=").decode()
    )
    return "/oauth/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": DEMO_CLIENT_ID,
            "redirect_uri": DEMO_REDIRECT,
            "scope": DEMO_SCOPES,
            "state": "demo",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )


def main() -> int:
    os.environ.setdefault("YIWANG_ENV", "development")
    cfg = load_config()
    cfg.INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    # One embedded Redis for every process (unless REDIS_URL points at a real one).
    env["REDIS_URL"] = resolve_url(cfg.REDIS_URL, cfg.INSTANCE_DIR)
    env.setdefault("WECHAT_API_BASE", f"http://127.0.0.1:{WECHAT_PORT}/")
    env.setdefault("SMS_ENDPOINT", f"127.0.0.1:{SMS_PORT}")
    env.setdefault("FACEID_ENDPOINT", f"127.0.0.1:{FACEID_PORT}")
    env.setdefault("ALIPAY_GATEWAY", f"http://127.0.0.1:{ALIPAY_PORT}/gateway.do")
    env.setdefault("IDCHECK_BASE_URL", f"http://127.0.0.1:{IDCHECK_PORT}/")
    env.setdefault("PROVINCE_BASE_URL", f"http://127.0.0.1:{PROVINCE_PORT}/")
    env.setdefault("PROVINCE_SIM_CALLBACK_URL", f"http://127.0.0.1:{API_PORT}/v1/platform/callbacks")
    env.setdefault("APNS_BASE_URL", f"http://127.0.0.1:{APNS_PORT}")
    env.setdefault("JPUSH_BASE_URL", f"http://127.0.0.1:{JPUSH_PORT}")
    env.setdefault("HUAWEI_PUSH_BASE_URL", f"http://127.0.0.1:{HUAWEI_PORT}")
    env.setdefault("HUAWEI_TOKEN_URL", f"http://127.0.0.1:{HUAWEI_PORT}/oauth2/v3/token")
    env.setdefault("EXCHANGE_BASE_URL", f"http://127.0.0.1:{EXCHANGE_PORT}/")
    env.setdefault("ECERT_BASE_URL", f"http://127.0.0.1:{ECERT_PORT}/")
    # The SMS simulator reports delivery to yiwang a moment after each send, as Tencent does.
    env.setdefault("SMS_SIM_RECEIPTS", "after")
    token = env.get("SMS_RECEIPT_TOKEN") or cfg.SMS_RECEIPT_TOKEN
    env.setdefault("SMS_SIM_RECEIPT_URL", f"http://127.0.0.1:{API_PORT}/v1/platform/sms-receipts/{token}")
    env.setdefault("LOG_LEVEL", "INFO")
    py = sys.executable
    flask = [py, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "migrate"], cwd=ROOT, env=env, check=True)
    subprocess.run([*flask, "seed"], cwd=ROOT, env=env, check=True)

    procs: list[subprocess.Popen] = []

    def start(*args: str, extra: dict | None = None) -> None:
        procs.append(subprocess.Popen(list(args), cwd=ROOT, env=env | (extra or {})))

    start(py, "-m", "cli.simulators", "wechat", "--port", str(WECHAT_PORT))
    start(py, "-m", "cli.simulators", "sms", "--port", str(SMS_PORT))
    start(py, "-m", "cli.simulators", "faceid", "--port", str(FACEID_PORT))
    start(py, "-m", "cli.simulators", "alipay", "--port", str(ALIPAY_PORT))
    start(py, "-m", "cli.simulators", "idcheck", "--port", str(IDCHECK_PORT))
    start(py, "-m", "cli.simulators", "province", "--port", str(PROVINCE_PORT))
    start(py, "-m", "cli.simulators", "apns", "--port", str(APNS_PORT))
    start(py, "-m", "cli.simulators", "jpush", "--port", str(JPUSH_PORT))
    start(py, "-m", "cli.simulators", "huawei", "--port", str(HUAWEI_PORT))
    start(py, "-m", "cli.simulators", "exchange", "--port", str(EXCHANGE_PORT))
    start(py, "-m", "cli.simulators", "ecert", "--port", str(ECERT_PORT))
    start(
        py,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "wsgi:app",
        extra={"GUNICORN_BIND": f"127.0.0.1:{API_PORT}", "GUNICORN_WORKERS": "2"},
    )
    start(py, "-m", "workers.rq_worker")
    start(py, "-m", "workers.sweeper")
    start(py, "-m", "workers.forwarder")
    start(py, "-m", "workers.notifier")

    stopping = {"now": False}

    def stop(*_: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    base = f"http://127.0.0.1:{API_PORT}"
    people = ", ".join(f"{name} {number}" for name, number in DEMO_PEOPLE[:2])
    try:
        if not _wait_http(f"{base}/v1/ready", 60):
            print("yiwang did not become ready; see the logs above", file=sys.stderr)
            return 1
        print(
            "\n"
            "  yiwang is running on its embedded defaults (SQLite + embedded Redis)\n"
            f"  API           {base}/v1\n"
            f"  API docs      {base}/docs   (OpenAPI: {base}/openapi.json)\n"
            f"  readiness     {base}/v1/ready\n"
            f"  WeChat sim    http://127.0.0.1:{WECHAT_PORT}/_sim/\n"
            f"  SMS sim       http://127.0.0.1:{SMS_PORT}/_sim/\n"
            f"  FaceID sim    http://127.0.0.1:{FACEID_PORT}/_sim/   (Tencent Cloud 慧眼)\n"
            f"  Alipay sim    http://127.0.0.1:{ALIPAY_PORT}/_sim/   (支付宝身份验证)\n"
            f"  ID check sim  http://127.0.0.1:{IDCHECK_PORT}/_sim/   (公安二要素核验)\n"
            f"  Province sim  http://127.0.0.1:{PROVINCE_PORT}/_sim/   (省级政务服务平台: 受理/补正/办结)\n"
            f"  Push sims     APNs http://127.0.0.1:{APNS_PORT}/_sim/notifications (HTTP/2),"
            f" JPush :{JPUSH_PORT}, Huawei :{HUAWEI_PORT}\n"
            f"  Exchange sim  http://127.0.0.1:{EXCHANGE_PORT}/_sim/   (数据共享交换)\n"
            f"  E-cert sim    http://127.0.0.1:{ECERT_PORT}/_sim/   (电子证照库)\n"
            "  inbox         GET /v1/notifications, live: GET /v1/notifications/stream (SSE)\n"
            "  shared data   POST /v1/applications/{id}/data-sharing; wallet GET /v1/certificates;\n"
            "                who used my data: GET /v1/me/data-access\n"
            "  demo citizen  phone 13800138000: POST /v1/auth/sms/send, read the code at the SMS sim\n"
            f"  OAuth         metadata {base}/.well-known/oauth-authorization-server; consent page for the\n"
            f"                demo app (open on a phone-sized window; code verifier {_DEMO_VERIFIER}):\n"
            f"                {base}{_demo_authorize_path()}\n"
            "                grants: GET /v1/me/grants; apps are registered at /admin/v1/oauth-clients\n"
            f"  demo people   {people}  (real-name: POST /v1/identity/verifications;\n"
            "                play the face scan with POST <sim>/_sim/face/perform {ref, outcome})\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stopping["now"]:
            for proc in procs:
                if proc.poll() is not None:
                    print(f"process {proc.args} exited with {proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
