"""The environments of `python -m bench.run`: the caller's shell without yiwang settings, the
production configuration with secrets generated for the run, and what gunicorn.conf.py resolves
to in it."""

from __future__ import annotations

import base64
import os
import runpy
import secrets
from pathlib import Path

from bench.infra import ROOT, free_port
from bench.verification import BENCH_FACE_LIMIT, SIMULATORS, alipay_env, simulator_env

# Variables the production config reads that must not leak in from the caller's shell.
_SCRUBBED_ENV = (
    "DATA_KEY_ACTIVE", "YIWANG_INSTANCE_DIR", "DATABASE_URL", "REDIS_URL", "SECRET_KEY",
    "ALIPAY_APP_ID", "ALIPAY_APP_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY", "IDCHECK_APP_ID", "TENCENT_SECRET_ID",
    "WECHAT_APPID", "FACEID_RULE_ID", "FACE_CONSENT_VERSION", "IDENTITY_METHODS_APP",
)  # fmt: skip


def plain_env() -> dict[str, str]:
    """The caller's environment (GUNICORN_* overrides included) without yiwang settings.

    max_requests is off unless the caller sets GUNICORN_MAX_REQUESTS: at benchmark rates a
    worker reaches production's 100,000 ± 10,000 requests within one full run, and the restart
    (a new app, and the catalog read model rebuilt on its first catalog request while its
    connections wait) would land inside whichever scenario happens to be measured.
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    return {"GUNICORN_MAX_REQUESTS": "0"} | env | {"PYTHONUNBUFFERED": "1"}


def province_env() -> dict[str, str]:
    """Fresh province secrets and SM2 key pairs (yiwang's and the simulated province's)."""
    from integrations.province.gm import generate_sm2_keypair

    own_private, own_public = generate_sm2_keypair()
    peer_private, peer_public = generate_sm2_keypair()
    return {
        "PROVINCE_SECRET": secrets.token_urlsafe(32),
        "PROVINCE_SM4_KEY": secrets.token_hex(16),
        "PROVINCE_SM2_PRIVATE_KEY": own_private,
        "PROVINCE_SM2_PUBLIC_KEY": own_public,
        "PROVINCE_PEER_SM2_PUBLIC_KEY": peer_public,
        "PROVINCE_SIM_SM2_PRIVATE_KEY": peer_private,
    }


def push_env() -> dict[str, str]:
    """Fresh push and SMS-report secrets, and an APNs key pair (the simulator holds the public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return {
        "APNS_PRIVATE_KEY": private,
        "APNS_SIM_PUBLIC_KEY": public,
        "JPUSH_MASTER_SECRET": secrets.token_urlsafe(24),
        "HUAWEI_APP_SECRET": secrets.token_urlsafe(24),
        "SMS_RECEIPT_TOKEN": secrets.token_urlsafe(24),
        # The SMS simulator's application and templates, named as production requires.
        "SMS_SDK_APP_ID": "1400000001",
        "SMS_SIGN_NAME": "一网通办",
        "SMS_TEMPLATE_OTP": "100001",
        "SMS_TEMPLATE_NOTICE": "100002",
        "SMS_TEMPLATE_ACCOUNT_CLOSED": "100003",
    }


def production_env(
    database_url: str, redis_url: str, work: Path, ttl: int, sim_ports: dict[str, int] | None = None
) -> dict[str, str]:
    """ProductionConfig refuses development secrets, so generate real ones for this run."""
    ports = sim_ports or {name: free_port() for name in SIMULATORS}
    return plain_env() | {
        "YIWANG_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATA_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(16)).decode(),
        "LOOKUP_HASH_KEY": secrets.token_urlsafe(48),
        "WECHAT_SECRET": secrets.token_hex(16),
        "TENCENT_SECRET_KEY": secrets.token_urlsafe(32),
        "IDCHECK_APP_SECRET": secrets.token_urlsafe(32),
        **province_env(),
        **push_env(),
        **alipay_env(),
        **simulator_env(ports),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "YIWANG_INSTANCE_DIR": str(work / "instance"),
        "TRUSTED_PROXY_HOPS": "1",  # see refresh.lua: each request has its own client address
        "ACCESS_TOKEN_TTL": str(ttl),
        "FACE_PER_ACCOUNT_PER_DAY": str(BENCH_FACE_LIMIT),
        "FACE_PER_IP_PER_HOUR": str(BENCH_FACE_LIMIT),
        "VERIFY_PER_ID_NUMBER_PER_DAY": str(BENCH_FACE_LIMIT),
    }


def gunicorn_settings(env: dict[str, str]) -> dict:
    """The values gunicorn.conf.py resolves to in the servers' environment."""
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    keys = ("workers", "worker_class", "threads", "keepalive", "timeout", "max_requests",
            "max_requests_jitter", "preload_app", "accesslog")  # fmt: skip
    return {k: conf[k] for k in keys}
