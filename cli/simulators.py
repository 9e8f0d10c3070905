"""`python -m cli.simulators NAME --port N`: serve one external-system simulator on localhost."""

from __future__ import annotations

import argparse
import importlib
import sys

from config import load_config
from integrations.simulator_server import add_control_index, serve_forever

SIMULATORS = {
    "wechat": "integrations.wechat.simulator",
    "sms": "integrations.sms.simulator",
    "faceid": "integrations.tencentcloud.faceid_simulator",
    "alipay": "integrations.alipay.simulator",
    "idcheck": "integrations.idcheck.simulator",
    "province": "integrations.province.simulator",
    "apns": "integrations.apns.simulator",
    "jpush": "integrations.jpush.simulator",
    "huawei": "integrations.huawei.simulator",
    "exchange": "integrations.govdata.exchange_sim",
    "ecert": "integrations.govdata.ecert_sim",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(SIMULATORS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    module = importlib.import_module(SIMULATORS[args.name])
    app = module.create_simulator(vars(load_config()))
    add_control_index(app, module.__doc__)
    # A simulator with its own server (APNs speaks HTTP/2) says so with `serve`.
    getattr(module, "serve", serve_forever)(app, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
