"""A query parameter given twice that takes one value is a 400 naming it, on every endpoint: taking
the first silently answers another question than the one the client believes it asked."""

from __future__ import annotations

import pytest

from tests.api.v1.applications.conftest import SS_CARD, URL, create
from tests.domain.operators.factories import admin_headers, make_operator


def _refused(resp, name: str) -> None:
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "request.repeated_parameter" and error["details"] == {"parameter": name}
    assert name in error["message"]


@pytest.mark.parametrize(
    ("query", "name"),
    [("limit=5&limit=50", "limit"), ("cursor=a&cursor=b", "cursor"), ("limit=1&cursor=x&limit=1", "limit")],
)
def test_a_citizen_list_refuses_a_repeated_single_valued_parameter(client, zhang, query, name):
    _refused(client.get(f"{URL}?{query}", headers=zhang["headers"]), name)
    en = client.get(f"{URL}?{query}", headers=zhang["headers"] | {"Accept-Language": "en"})
    assert en.status_code == 400 and "only once" in en.get_json()["error"]["message"]
    _refused(client.get(f"/v1/notifications?{query}", headers=zhang["headers"]), name)


def test_status_takes_several_values_repeated_or_comma_separated(client, zhang):
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    for query in ("status=submitted&status=draft", "status=submitted,draft", "status=draft"):
        resp = client.get(f"{URL}?{query}", headers=zhang["headers"])
        assert resp.status_code == 200 and [i["id"] for i in resp.get_json()["items"]] == [draft["id"]], query
    none = client.get(f"{URL}?status=submitted&status=withdrawn", headers=zhang["headers"])
    assert none.status_code == 200 and none.get_json()["items"] == []
    unknown = client.get(f"{URL}?status=draft&status=lost", headers=zhang["headers"])
    assert unknown.status_code == 422 and "status" in unknown.get_json()["error"]["fields"]


def test_a_parameter_the_endpoint_does_not_take_stays_ignored_repeated_or_not(client, zhang):
    """Query parameters an endpoint does not declare are ignored (webargs excludes them: a
    tracking parameter a mini-program adds must not break a list); given twice, still ignored."""
    create(client, zhang, service_code=SS_CARD)
    for query in ("colour=red", "colour=red&colour=blue"):
        resp = client.get(f"{URL}?{query}", headers=zhang["headers"])
        assert resp.status_code == 200 and len(resp.get_json()["items"]) == 1, query


def test_admin_endpoints_refuse_repeats_too_their_pagination_included(app, client, officer):
    _refused(
        client.get("/admin/v1/applications/burden?service_code=A&service_code=B", headers=officer),
        "service_code",
    )
    assert client.get("/admin/v1/applications/burden?service_code=A", headers=officer).status_code == 200
    auditor = admin_headers(client, make_operator(app, username="erin", roles=("auditor",)))
    _refused(client.get("/admin/v1/audit?page=1&page=2", headers=auditor), "page")
    _refused(client.get("/admin/v1/audit?action=a&action=b", headers=auditor), "action")
    assert client.get("/admin/v1/audit?page=1&page_size=2", headers=auditor).status_code == 200
