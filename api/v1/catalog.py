"""The service catalog for phones: lists, search, guides with forms, bundles. Public, cacheable.

Every read answers with an ETag and honours If-None-Match with 304; bodies are pre-rendered by
the read model, so a detail or its 304 touches no database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import unicodedata
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import fields, validate

from api.auth import public
from api.blueprint import Blueprint
from api.conditional import send_rendered
from api.deps import services
from api.openapi_answers import INTEGER, NULLABLE_STRING, STRING, array_of, json_answer, object_of
from api.schemas import StrictSchema
from core.errors import Text
from domain.catalog.codes import region_problem
from domain.catalog.errors import InvalidCursor, InvalidQuery
from domain.catalog.read_model import Rendered
from domain.catalog.search import MAX_QUERY_CHARS

blp = Blueprint("catalog", __name__, url_prefix="/v1", description="服务事项目录 / Service catalog")


def _cached(schema: dict[str, Any] | None = None) -> dict[Any, Any]:
    """The answers of a cached catalog read: the JSON body with an ETag, or 304."""
    return {
        200: json_answer("OK; ETag set, gzip when accepted", schema),
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
    }


_SERVICES = object_of(
    items=array_of(), total=INTEGER, next_cursor=NULLABLE_STRING,
    bundles=array_of(STRING) | {"description": "codes of the bundles matching `q` (first page only)"},
)  # fmt: skip
_ITEM = {"type": "object", "description": "a published item version (docs/catalog-format.md)"}


class ServiceQuerySchema(StrictSchema):
    q = fields.String(
        metadata={
            "description": f"text query in Chinese (at most {MAX_QUERY_CHARS} characters)",
            "example": "公积金提取",
        }
    )
    category = fields.String(validate=validate.Length(max=32))
    department = fields.String(validate=validate.Length(max=32))
    region = fields.String(
        metadata={
            "description": "GB/T 2260 code where the citizen is: items of that "
            "place, its city, its province and nationwide",
            "example": "440106",
        }
    )
    at_most_one_visit = fields.Boolean(load_default=False, metadata={"description": "最多跑一次"})
    fully_online = fields.Boolean(load_default=False, metadata={"description": "全程网办 (no visit)"})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))
    cursor = fields.String(validate=validate.Length(max=200))


def _clean_query(q: str | None) -> str | None:
    if q is None:
        return None
    # Text pasted from chat apps carries zero-width spaces, joiners and byte-order marks: not
    # what the citizen typed, so they go; control characters are still refused.
    q = "".join(c for c in q if unicodedata.category(c) != "Cf")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Co") for c in q):
        raise InvalidQuery(
            problem=Text("it holds invisible characters", "含有不可见字符"),
            fields={"q": [Text("control characters are not allowed", "不能含有不可见字符")]},
        )
    q = " ".join(q.split())
    if len(q) > MAX_QUERY_CHARS:
        raise InvalidQuery(
            problem=Text(
                f"too long (at most {MAX_QUERY_CHARS} characters)",
                f"关键词过长（最多 {MAX_QUERY_CHARS} 个字）",
            ),
            fields={"q": [Text(f"at most {MAX_QUERY_CHARS} characters", f"最多 {MAX_QUERY_CHARS} 个字")]},
        )
    return q or None


def _filters_key(args: dict[str, Any]) -> str:
    wanted = {
        k: args.get(k) for k in ("q", "category", "department", "region", "at_most_one_visit", "fully_online")
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:12]


def _encode_cursor(offset: int, key: str, revision: int, after: str, upcoming: str) -> str:
    """The next page: its offset in the catalog of `revision`, the code of the last item shown
    and of the one that came next, to resume between them if the catalog changed meanwhile."""
    data = {"o": offset, "k": key, "r": revision, "a": after, "n": upcoming}
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, key: str) -> tuple[int, int | None, list[str | None]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, revision = data["o"], data.get("r")
        marks = [data.get("a"), data.get("n")]
        valid = (
            isinstance(offset, int) and offset >= 0 and data["k"] == key
            and (revision is None or isinstance(revision, int))
            and all(m is None or isinstance(m, str) for m in marks)
        )  # fmt: skip
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidCursor()
    return offset, revision, marks


def _resume(found: list[tuple[dict[str, Any], Any]], offset: int, marks: list[str | None]) -> int:
    """Where the next page starts in a catalog that changed since the last page (an item
    published or suspended meanwhile would otherwise shift the pages: one item shown twice or
    never): after the last item shown, or, that one gone, at the one that was to come next;
    at the old offset if both are gone."""
    after, upcoming = marks
    where = {entry["code"]: index for index, (entry, _) in enumerate(found)}
    if after in where:
        return where[after] + 1
    if upcoming in where:
        return where[upcoming]
    return offset


def _max_age() -> int:
    return current_app.config["CATALOG_MAX_AGE"]


@blp.route("/services")
class Services(MethodView):
    @public
    @blp.arguments(ServiceQuerySchema, location="query")
    @blp.doc(responses=_cached(_SERVICES))
    def get(self, args: dict[str, Any]) -> Response:
        """List or search published services (compact entries, best match first for `q`)."""
        args["q"] = _clean_query(args.get("q"))
        if args.get("region") and (problem := region_problem(args["region"])):
            raise InvalidQuery(
                problem=Text("the region code is not valid", "行政区划代码无效"), fields={"region": [problem]}
            )
        key = _filters_key(args)
        marks: list[str | None] = []
        offset, revision = 0, None
        if args.get("cursor"):
            offset, revision, marks = _decode_cursor(args["cursor"], key)
        model = services().catalog
        snap = model.snapshot()

        def find() -> list[tuple[dict[str, Any], Any]]:
            return model.find(
                q=args["q"],
                category=args.get("category"),
                department=args.get("department"),
                region=args.get("region"),
                at_most_one_visit=args["at_most_one_visit"],
                fully_online=args["fully_online"],
            )[1]

        found = None
        if args.get("cursor") and revision != snap.revision:
            found = find()
            offset = _resume(found, offset, marks)
        cache_key = ("list", key, str(offset), str(args["limit"]))
        rendered = snap.rendered.get(cache_key)
        if rendered is None:
            found = find() if found is None else found
            page = found[offset : offset + args["limit"]]
            end = offset + len(page)
            last = page[-1][0]["code"] if page else None
            upcoming = found[end][0]["code"] if end < len(found) else None
            payload = {
                "items": [
                    {**model.compact(snap, e), **({"score": s} if s is not None else {})} for e, s in page
                ],
                "total": len(found),
                "next_cursor": _encode_cursor(end, key, snap.revision, last, upcoming)
                if last and upcoming
                else None,
                "bundles": model.matching_bundles(
                    snap, args["q"], category=args.get("category"), region=args.get("region")
                )
                if args["q"] and offset == 0
                else [],
            }
            rendered = model.cached(snap, cache_key, lambda: payload)
        return send_rendered(rendered, max_age=_max_age())


@blp.route("/services/<string:code>")
class ServiceDetail(MethodView):
    @public
    @blp.doc(responses=_cached(_ITEM))
    def get(self, code: str) -> Response:
        """The guide of a published service: conditions, materials, time limits, fees, and its form."""
        return send_rendered(services().catalog.item_detail(code), max_age=_max_age())


@blp.route("/services/<string:code>/versions/<int(min=1, max=2147483647):version>")  # an INTEGER column
class ServiceVersion(MethodView):
    @public
    @blp.doc(responses=_cached(_ITEM))
    def get(self, code: str, version: int) -> Response:
        """A version that was published, for an application pinned to it. Its guide never changes,
        but the names of its department and category are today's: cached no longer than the rest."""
        return send_rendered(services().catalog.item_version_detail(code, version), max_age=_max_age())


@blp.route("/bundles")
class Bundles(MethodView):
    @public
    @blp.doc(responses=_cached(object_of(bundles=array_of())))
    def get(self) -> Response:
        """Life-event bundles (一件事一次办)."""
        model = services().catalog
        snap, bundles = model.bundle_list()
        return send_rendered(
            model.cached(snap, ("bundles",), lambda: {"bundles": bundles}), max_age=_max_age()
        )


@blp.route("/bundles/<string:code>")
class BundleDetail(MethodView):
    @public
    @blp.doc(responses=_cached({"type": "object", "description": "a bundle with its items and merged form"}))
    def get(self, code: str) -> Response:
        """A bundle: its items, what the citizen gets, and the merged form (shared fields once)."""
        return send_rendered(services().catalog.bundle_detail(code), max_age=_max_age())


def _reference(name: str) -> Rendered:
    model = services().catalog
    snap = model.snapshot()
    rows = getattr(snap, name)
    return model.cached(snap, (name,), lambda: {name: list(rows.values())})


@blp.route("/categories")
class Categories(MethodView):
    @public
    @blp.doc(responses=_cached(object_of(categories=array_of())))
    def get(self) -> Response:
        """Service categories (life topics)."""
        return send_rendered(_reference("categories"), max_age=_max_age())


@blp.route("/departments")
class Departments(MethodView):
    @public
    @blp.doc(responses=_cached(object_of(departments=array_of())))
    def get(self) -> Response:
        """Departments that provide services."""
        return send_rendered(_reference("departments"), max_age=_max_age())
