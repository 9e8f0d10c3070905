"""The real-name verification scenarios of `python -m bench.run`: the simulators they run
against, the keys and endpoints yiwang gets for them, and the measurement of start + complete
with the verification driver (bench/identity_load.py)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from bench.infra import CpuMeter, Gunicorn, ProcessCpu, RssSampler, Simulator
from bench.load import run_verifications

# (key, label, method, simulator) of the scenarios the verification driver (bench/identity_load.py)
# runs instead of wrk: start + complete against a provider simulator, after the wrk scenarios.
VERIFICATION_SCENARIOS = (
    ("verifications", "start + complete, Tencent FaceID", "tencent_faceid", "faceid"),
    ("verifications_alipay", "start + complete, Alipay (informational)", "alipay_face", "alipay"),
)
# Simulators started for the verification scenarios; every provider endpoint points at one.
SIMULATORS = ("faceid", "alipay", "idcheck", "wechat")
# Citizens the verification driver verifies, each as its own person, and its concurrent workers.
VERIFIERS = 64
VERIFY_WORKERS = 16
# The face limits (3 per account per day, 10 per IP per hour) would end a throughput test
# within seconds; the limiter does the same Redis work per request whatever the limit.
BENCH_FACE_LIMIT = 1_000_000


def rsa_key_pair() -> tuple[str, str]:
    """A fresh RSA-2048 key pair as PEM: (PKCS#8 private key, SubjectPublicKeyInfo public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def alipay_env() -> dict[str, str]:
    """The application's fresh RSA2 key pair, and the Alipay public key it trusts.

    The simulator verifies requests with ALIPAY_SIM_APP_PUBLIC_KEY when its config carries one
    (the harness also registers the key through POST /_sim/apps, which works either way). It
    signs its answers with the development platform key in integrations/alipay/dev_keys.py and
    cannot be given another one, so yiwang must trust that key's public half: a fresh platform
    key pair would make every Alipay answer fail signature verification.
    """
    from integrations.alipay import dev_keys

    app_private, app_public = rsa_key_pair()
    return {
        "ALIPAY_APP_PRIVATE_KEY": app_private,
        "ALIPAY_SIM_APP_PUBLIC_KEY": app_public,
        "ALIPAY_PUBLIC_KEY": dev_keys.PLATFORM_PUBLIC_KEY,
    }


def simulator_env(ports: dict[str, int]) -> dict[str, str]:
    """Point every real-name provider (and WeChat) at the simulator on its port."""
    return {
        "FACEID_ENDPOINT": f"127.0.0.1:{ports['faceid']}",
        "FACEID_SCHEME": "http",
        "ALIPAY_GATEWAY": f"http://127.0.0.1:{ports['alipay']}/gateway.do",
        "IDCHECK_BASE_URL": f"http://127.0.0.1:{ports['idcheck']}/",
        "WECHAT_API_BASE": f"http://127.0.0.1:{ports['wechat']}/",
    }


def prepare_simulators(sims: dict[str, Simulator], env: dict[str, str], accounts_file: Path) -> None:
    """Make the face simulators pass every flow of the verifiers' people without a phone.

    Each citizen's person is registered in the simulated population register (an unknown ID
    number fails as no_record), the face flows pass on the first query (auto mode: the phone
    would have done the face scan), and the Alipay simulator learns the application's fresh
    public key (it otherwise knows only the development key).
    """
    people = [json.loads(line) for line in accounts_file.read_text().splitlines() if line.strip()]
    for name in ("faceid", "alipay"):
        sim = sims[name]
        for person in people:
            sim.control("/_sim/people", {"name": person["name"], "id_number": person["id_number"]})
        sim.control("/_sim/face/auto", {"outcome": "pass"})
    app_id = env.get("ALIPAY_APP_ID") or "2021000000000001"  # config/settings.py's default
    sims["alipay"].control("/_sim/apps", {"app_id": app_id, "public_key": env["ALIPAY_SIM_APP_PUBLIC_KEY"]})


def run_verification_scenario(
    args: argparse.Namespace, server: Gunicorn, sim: Simulator, accounts_file: Path, method: str,
    ours: Callable[[], list[int]], groups: dict[str, Callable[[], list[int]]], driver_env: dict[str, str],
) -> tuple[dict, RssSampler]:  # fmt: skip
    """Warm up, then measure start + complete with the verification driver in its own process
    (run with `driver_env`)."""
    common = {"method": method, "workers": VERIFY_WORKERS, "env": driver_env}
    warm = None
    if args.warmup:
        warm = run_verifications(server.base_url, accounts_file, duration=args.warmup, **common)
    offset = server.access_offset()
    procs = ProcessCpu(groups | {"simulator": lambda: [sim.pid]})
    with RssSampler(server) as sampler, CpuMeter(ours) as cpu, procs:
        summary = run_verifications(server.base_url, accounts_file, duration=args.duration, **common)
    seconds = summary["seconds"] or 1.0
    cpu_pct = procs.core_pct() | {"load driver": round(100 * summary["client_cpu_seconds"] / seconds, 1)}
    done = summary["verifications"]
    cpu_ms = {k: round(1000 * v / done, 2) if done else None for k, v in procs.cpu_seconds.items()}
    cpu_ms["load driver"] = round(1000 * summary["client_cpu_seconds"] / done, 2) if done else None
    summary |= {
        "per_worker": server.requests_per_worker(offset), "statuses": server.status_counts(offset),
        "cpu_busy_pct": cpu.busy_pct, "cpu_other_pct": cpu.other_pct, "process_cpu_pct": cpu_pct,
        "cpu_ms_per_verification": cpu_ms, "simulator": sim.name.removeprefix("sim-"),
        "warmup": {"verifications": warm["verifications"], "outcomes": warm["outcomes"]} if warm else None,
    }  # fmt: skip
    return summary, sampler
