"""What data sharing and the wallet need from outside, wired once in factory.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.crypto import Encryptor


@dataclass
class GovDataDeps:
    encryptor: Encryptor
    exchange: Any  # integrations.govdata.client.ExchangeClient
    ecert: Any  # integrations.govdata.client.EcertClient
    tokens: Any = None  # core.tokens.TokenService: signs presentation tokens
    poll_seconds: int = 30  # how often a pending (conditional) record is asked about again
    retention_days: int = 0  # shared values kept this long after the application is finished
    presentation_ttl: int = 300  # seconds a QR presentation stays valid (at most 5 minutes)
    grant_days: int = 30  # how long the exchange authorisation of one application lasts
    draft_ttl_days: int = 30  # a draft unchanged this long is purged (APPLICATION_DRAFT_TTL_DAYS)
