"""What the application services need from outside, wired once in factory.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.crypto import Encryptor
from domain.applications.case_numbers import CaseNumbers
from domain.applications.prefill import Prefiller


@dataclass
class ApplicationDeps:
    encryptor: Encryptor
    prefiller: Prefiller = field(default_factory=Prefiller)
    case_numbers: CaseNumbers = field(default_factory=CaseNumbers)
    storage: Any = None  # integrations.storage.base.BlobStorage
    # e-certificate wallet, data-sharing exchange (domain/applications/references.py)
    material_sources: list[Any] = field(default_factory=list)
    draft_ttl_days: int = 30
    max_file_bytes: int = 10 * 1024 * 1024
    max_files_per_material: int = 20  # attached to one material of one application
    orphan_grace_seconds: int = 3600
    # channel -> verification methods it offers (for the "how to get the level" hint)
    identity_methods: dict[str, list[str]] = field(default_factory=dict)
    # (session, account_id, [certificate identifiers]) -> {identifier: may still satisfy a
    # material}; asked at submission so a certificate revoked since it was attached counts for nothing.
    certificate_check: Any = None
    # (file id column) -> SQL condition "something else still holds this file" (a complaint's
    # evidence): the orphan sweep keeps those files although no application uses them any more.
    file_holders: list[Any] = field(default_factory=list)
    # () -> the name of the province profile (PROVINCE_PROFILE) the forwarder claims rows of: the
    # outbox rows a submission, resubmission or withdrawal writes carry it.
    forwarding_profile: Callable[[], str] = field(default=lambda: "reference")
