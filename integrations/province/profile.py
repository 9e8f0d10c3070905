"""A province adapter profile: where the platform is, how to sign, what to encrypt, how codes map.

The reference profile lives in config/province/reference.json; another province is another
JSON file (PROVINCE_PROFILE=/path/to/file.json). Secrets and keys never sit in the file: they
come from PROVINCE_* settings (config/settings.py). Protocol: docs/province.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from integrations.province import signing

PROFILE_DIR = Path(__file__).resolve().parent.parent.parent / "config" / "province"


class ProfileError(ValueError):
    """The profile file or its settings cannot be used."""


@dataclass(frozen=True)
class Profile:
    name: str
    base_url: str
    credentials: signing.Credentials
    sm4_key: bytes
    title: str = ""
    intake_path: str = "/gov/v1/intake"
    status_path: str = "/gov/v1/status"
    evaluation_path: str = "/gov/v1/evaluations"
    evaluation_scale: str = "gbt39046"  # how the province numbers 好差评 levels
    encrypted_fields: tuple[str, ...] = ()
    channels: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)
    rate_limit: float = 200.0
    burst: int = 40
    concurrency: int = 32
    timeout: float = 5.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    max_age: float = 3 * 86400.0
    breaker_threshold: int = 20
    breaker_cooldown: float = 15.0

    def channel_code(self, channel: str | None) -> str:
        return self.channels.get(channel or "", self.channels.get("default", "1"))

    def status_for(self, stage: str, code: str | None) -> str | None:
        """The application status an upstream stage (and 受理状态 code) maps to, if any."""
        if code is not None and f"{stage}:{code}" in self.stages:
            return self.stages[f"{stage}:{code}"]
        return self.stages.get(stage)

    def result_for(self, result_code: str | None) -> str | None:
        return self.results.get(str(result_code)) if result_code is not None else None

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def _read(name_or_path: str) -> dict[str, Any]:
    path = Path(name_or_path)
    if path.suffix != ".json":
        path = PROFILE_DIR / f"{name_or_path}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProfileError(f"cannot read province profile {path}: {exc}") from exc


def load_profile(cfg: Any) -> Profile:
    """The configured profile (PROVINCE_PROFILE) with secrets and overrides from settings."""
    raw = _read(str(cfg["PROVINCE_PROFILE"]))
    alg = cfg.get("PROVINCE_SIGNING") or raw.get("signing", {}).get("alg", signing.ALG_HMAC)
    if alg not in (signing.ALG_HMAC, signing.ALG_SM2):
        raise ProfileError(f"unknown signing algorithm {alg!r}")
    creds = signing.Credentials(
        alg=alg,
        app_id=str(cfg["PROVINCE_APP_ID"]),
        secret=str(cfg["PROVINCE_SECRET"]),
        own_private_key=cfg.get("PROVINCE_SM2_PRIVATE_KEY"),
        own_public_key=cfg.get("PROVINCE_SM2_PUBLIC_KEY"),
        peer_public_key=cfg.get("PROVINCE_PEER_SM2_PUBLIC_KEY"),
        user_id=str(cfg.get("PROVINCE_SM2_USER_ID") or "1234567812345678"),
    )
    try:
        key = bytes.fromhex(str(cfg["PROVINCE_SM4_KEY"]))
    except ValueError as exc:
        raise ProfileError("PROVINCE_SM4_KEY must be 32 hex characters") from exc
    if len(key) != 16:
        raise ProfileError("PROVINCE_SM4_KEY must be 16 bytes (32 hex characters)")
    tuning = {
        k: raw[k]
        for k in (
            "rate_limit", "burst", "concurrency", "timeout", "backoff_base", "backoff_cap",
            "max_age", "breaker_threshold", "breaker_cooldown",
        )
        if k in raw
    }  # fmt: skip
    if cfg.get("PROVINCE_RATE_LIMIT"):
        tuning["rate_limit"] = float(cfg["PROVINCE_RATE_LIMIT"])
    if cfg.get("PROVINCE_CONCURRENCY"):
        tuning["concurrency"] = int(cfg["PROVINCE_CONCURRENCY"])
    if cfg.get("PROVINCE_TIMEOUT"):
        tuning["timeout"] = float(cfg["PROVINCE_TIMEOUT"])
    name = str(raw.get("name") or "reference")
    if not re.fullmatch(r"[a-z0-9_-]{1,32}", name):
        # Stored with every outbox row, event and nonce (32 characters) and part of callback paths.
        raise ProfileError(f"profile name {name!r}: 1-32 lowercase letters, digits, '-' or '_'")
    return Profile(
        name=name,
        title=str(raw.get("title") or ""),
        base_url=str(cfg["PROVINCE_BASE_URL"]),
        credentials=creds,
        sm4_key=key,
        intake_path=str(raw.get("intake_path", "/gov/v1/intake")),
        status_path=str(raw.get("status_path", "/gov/v1/status")),
        evaluation_path=str(raw.get("evaluation_path", "/gov/v1/evaluations")),
        evaluation_scale=str(raw.get("evaluation_scale", "gbt39046")),
        encrypted_fields=tuple(raw.get("encryption", {}).get("fields", ())),
        channels=dict(raw.get("channels", {})),
        fields=dict(raw.get("fields", {})),
        stages=dict(raw.get("stages", {})),
        results={str(k): v for k, v in raw.get("results", {}).items()},
        **tuning,
    )
