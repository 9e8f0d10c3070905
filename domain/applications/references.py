"""Materials the government already holds: e-certificates and shared-data records.

A `MaterialSource` (the e-certificate wallet, the data-sharing exchange: issue "shared
government data") answers, for a new draft, which of its materials it can stand in for. The
answer is attached as a reference (kind `ecert` or `shared`, with the source's record id), so
the citizen uploads nothing for it. Sources plug in through `ApplicationDeps.material_sources`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from domain.applications.models import ApplicationMaterial
from domain.applications.prefill import PrefillContext

KINDS = ("ecert", "shared")


@dataclass(frozen=True)
class Reference:
    material_id: str
    kind: str  # ecert, shared
    ref: str  # the certificate's identifier or the shared record's id


class MaterialSource(Protocol):
    def references(self, ctx: PrefillContext, materials: dict[str, dict[str, Any]]) -> list[Reference]: ...


def attach(ctx: PrefillContext, sources: list[MaterialSource], materials: dict[str, dict[str, Any]]) -> int:
    """Ask every source and attach what it offers; returns how many materials it satisfied."""
    seen: set[tuple[str, str]] = set()
    for source in sources:
        for reference in source.references(ctx, materials):
            material = materials.get(reference.material_id)
            if material is None or reference.kind not in KINDS:
                continue
            accepted = material["ecert_types"] if reference.kind == "ecert" else material["shared_data"]
            if not accepted or (reference.material_id, reference.ref) in seen:
                continue
            seen.add((reference.material_id, reference.ref))
            ctx.session.add(
                ApplicationMaterial(
                    application_id=ctx.application_id, material_id=reference.material_id,
                    kind=reference.kind, ref=reference.ref[:128], attached_at=ctx.now,
                )
            )  # fmt: skip
    return len({m for m, _ in seen})
