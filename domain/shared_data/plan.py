"""What an application can take from shared data and the wallet, and the consent text that says so."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from domain.catalog.sources import SHARED_DATASETS
from domain.shared_data.mapping import FIELD_SOURCES


@dataclass(frozen=True)
class SharingPlan:
    datasets: tuple[str, ...]  # exchange data items, for fields and materials
    certificate_types: tuple[str, ...]  # e-certificate type codes materials accept
    fields: dict[str, str]  # form path -> shared.* source id

    @property
    def empty(self) -> bool:
        return not self.datasets and not self.certificate_types


def plan_for(prefill: dict[str, str], materials: dict[str, dict[str, Any]]) -> SharingPlan:
    fields = {path: source for path, source in prefill.items() if source in FIELD_SOURCES}
    datasets = {FIELD_SOURCES[s][0] for s in fields.values()}
    types: set[str] = set()
    for material in materials.values():
        datasets.update(d for d in material["shared_data"] if d in SHARED_DATASETS)
        types.update(material["ecert_types"])
    return SharingPlan(tuple(sorted(datasets)), tuple(sorted(types)), fields)


def consent_text(
    service_name: str, departments: list[str], plan: SharingPlan, type_names: dict[str, str]
) -> tuple[str, str]:
    """(text, version): what the citizen agrees to, in words an elderly citizen can follow."""
    data = "、".join(SHARED_DATASETS[d][0] for d in plan.datasets) or "无"
    certs = "、".join(type_names.get(t, t) for t in plan.certificate_types) or "无"
    text = (
        f"为办理「{service_name}」，本人授权一网通办平台向政府数据共享平台和电子证照库查询本人的以下信息，"
        f"用于自动填写申请表和代替提交纸质材料：{data}；电子证照：{certs}。"
        f"查询结果仅用于本次申请，随申请提交给承办部门（{'、'.join(departments)}），"
        "申请办结后按规定删除，不用于其他用途。部分信息需数据所属部门审核同意后提供（一般不超过10个工作日）。"
        "您可以不授权，改为自行填写和上传材料。"
    )
    return text, "data-" + hashlib.sha256(text.encode()).hexdigest()[:12]
