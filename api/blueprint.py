"""The project's flask-smorest Blueprint: every API blueprint is made from this one."""

from __future__ import annotations

from typing import Any

import flask_smorest

from api.idempotency import document_key
from api.json_body import BoundedParser


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, with argument schemas built once.

    Given a schema class, webargs makes a new schema object from it on every request (fields
    deep-copied: ~40 µs a request on the benchmark machine, a tenth of a cached slot listing).
    A schema object keeps no per-load state, so one instance serves every request and thread.
    JSON bodies are read with a bound on nesting, and a query parameter taken once may not be
    repeated (api/json_body.py). An @idempotent view's operation declares the Idempotency-Key
    header in the OpenAPI document (api/idempotency.py).
    """

    ARGUMENTS_PARSER = BoundedParser()
    PAGINATION_ARGUMENTS_PARSER = BoundedParser()  # ?page=1&page=2 is refused as any repeat

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # flask-smorest's own list of doc steps (private; pinned in requirements.txt, and
        # tests/api/test_openapi_idempotency.py fails if a release renames it).
        self._prepare_doc_cbks.append(document_key)

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(schema, type):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
