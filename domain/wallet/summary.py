"""A wallet row as the citizen and the counter see it: masked, and whether usable now."""

from __future__ import annotations

from datetime import date
from typing import Any

from core import clock
from core.masking import mask_name
from domain.shared_data.deps import GovDataDeps
from domain.wallet.models import STATES, VALID, WalletCertificate
from domain.wallet.sync import CERT_PURPOSE


def usable(row: WalletCertificate, today: date) -> bool:
    """Only a valid certificate within its validity may satisfy a material or be shown."""
    return row.state == VALID and (row.valid_until is None or row.valid_until >= today)


def summary(row: WalletCertificate, deps: GovDataDeps, lang: str = "zh") -> dict[str, Any]:
    zh, en = STATES.get(row.state, (row.state, row.state))
    return {
        "id": row.id,
        "identifier": row.identifier,
        "type_code": row.type_code,
        "type_name": row.type_name,
        "issuer": row.issuer,
        "holder_name": mask_name(deps.encryptor.decrypt(row.holder_name_enc, purpose=CERT_PURPOSE)),
        "number": row.number_masked,
        "own": row.own,
        "state": row.state,
        "state_name": en if lang == "en" else zh,
        "usable": usable(row, clock.local_date()),
        "issued_on": row.issued_on.isoformat() if row.issued_on else None,
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "synced_at": row.synced_at.isoformat(),
    }
