"""SMS simulator (placeholder until implemented)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_simulator(config: Mapping[str, Any]) -> Flask:
    return Flask("sms_simulator")
