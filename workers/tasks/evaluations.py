"""`evaluation.forward`: push one 好差评 evaluation to the province (numbers per its profile)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.deps import services
from core.errors import PermanentError, RetryableError
from domain.evaluations import service as evaluations
from domain.evaluations.models import Evaluation
from integrations.province.client import ProvinceError


def forward(*, session: Session, job_id: str, **payload: Any) -> dict:
    evaluation = session.get(Evaluation, payload.get("evaluation_id"))
    if evaluation is None:
        raise PermanentError("evaluation not found")
    svc = services()
    deps = svc.forwarding
    profile = deps.profile()
    body = evaluations.province_push(
        session, evaluation, svc.encryptor, scale=profile.evaluation_scale, channels=profile.channels
    )
    try:
        duplicate = deps.client().evaluation(body)
    except ProvinceError as exc:
        if exc.retryable:
            raise RetryableError(str(exc)) from exc
        raise PermanentError(str(exc)) from exc
    return {"duplicate": duplicate}
