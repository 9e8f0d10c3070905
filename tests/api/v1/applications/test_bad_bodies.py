"""A JSON body in another encoding than UTF-8 is told so, and changes nothing."""

from __future__ import annotations

import pytest

from tests.api.v1.applications.conftest import SS_CARD, URL, create, error_code, get


@pytest.mark.parametrize(
    ("encoding", "content_type"),
    [
        ("gbk", "application/json; charset=gbk"),
        ("utf-16", "application/json"),
        ("gb18030", "application/json"),
    ],
)
def test_an_autosave_in_another_encoding_is_told_to_send_utf8(client, zhang, encoding, content_type):
    """Valid JSON in GBK (what a phone's default charset may give) was answered "not valid
    JSON": true of the bytes, but no hint that the encoding is the fault (RFC 8259: UTF-8)."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    text = '{"data": {"delivery": {"method": "post", "address": "广州市天河区体育西路一号"}}}'
    body = text.encode(encoding)
    for lang, needle in (("zh-CN", "UTF-8 编码"), ("en", "UTF-8")):
        resp = client.patch(
            f"{URL}/{app['id']}", data=body, content_type=content_type,
            headers=zhang["headers"] | {"If-Match": f'"r{app["revision"]}"', "Accept-Language": lang},
        )  # fmt: skip
        assert resp.status_code == 400 and error_code(resp) == "request.malformed_json", resp.get_json()
        assert needle in resp.get_json()["error"]["message"]
    after = get(client, zhang, app["id"]).get_json()
    assert after["revision"] == app["revision"] and after["data"].get("delivery") == app["data"].get(
        "delivery"
    )


BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark: Windows/.NET and older Android stacks send one


def _send(client, who, method, url, body: bytes, **headers):
    return getattr(client, method)(
        url, data=body, content_type="application/json", headers=who["headers"] | headers
    )


def test_a_body_opening_with_a_utf8_byte_order_mark_is_read_as_without_it(client, zhang):
    text = '{"data": {"delivery": {"method": "post", "address": "广州市天河区体育西路一号"}}}'
    created = _send(client, zhang, "post", URL, BOM + f'{{"service_code": "{SS_CARD}"}}'.encode())
    assert created.status_code == 201, created.get_json()
    with_bom = created.get_json()
    plain = create(client, zhang, service_code=SS_CARD).get_json()
    assert with_bom["service_code"] == plain["service_code"] == SS_CARD
    for app, body in ((with_bom, BOM + text.encode()), (plain, text.encode())):
        saved = _send(client, zhang, "patch", f"{URL}/{app['id']}", body, **{"If-Match": '"r1"'})
        assert saved.status_code == 200 and saved.get_json()["revision"] == 2, saved.get_json()
    after_bom, after_plain = (get(client, zhang, a["id"]).get_json() for a in (with_bom, plain))
    assert after_bom["data"] == after_plain["data"]
    assert after_bom["data"]["delivery"] == {"method": "post", "address": "广州市天河区体育西路一号"}


def test_a_body_of_only_a_byte_order_mark_is_an_empty_body(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    url, if_match = f"{URL}/{app['id']}", {"If-Match": '"r1"'}
    empty, bom = (_send(client, zhang, "patch", url, body, **if_match) for body in (b"", BOM))
    assert empty.status_code == bom.status_code == 422, (empty.get_json(), bom.get_json())
    assert empty.get_json()["error"]["code"] == bom.get_json()["error"]["code"] == "request.validation_failed"
    assert (
        empty.get_json()["error"]["fields"]
        == bom.get_json()["error"]["fields"]
        == {"data": bom.get_json()["error"]["fields"]["data"]}
    )
    # A view that takes no body takes an empty one, and so one of only a byte-order mark.
    for body in (b"", BOM):
        read = _send(client, zhang, "post", "/v1/notifications/read-all", body)
        assert read.status_code == 200 and read.get_json()["unread_count"] == 0, read.get_json()
    # A second mark is no longer a mark to drop: the body is not JSON.
    twice = _send(client, zhang, "patch", url, BOM + BOM + b'{"data": {}}', **if_match)
    assert twice.status_code == 400 and error_code(twice) == "request.malformed_json"
    assert get(client, zhang, app["id"]).get_json()["revision"] == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_view_taking_no_body_refuses_one_in_utf16_as_any_other_encoding(client, zhang, encoding):
    """Python's json guesses UTF-16 and UTF-32 from bytes: a view that takes no body (or reads it
    by hand) took such a body that a view with a schema refuses. Only UTF-8 is JSON here."""
    body = '{"confirm": true}'.encode(encoding)
    read = _send(client, zhang, "post", "/v1/notifications/read-all", body)
    assert read.status_code == 400 and error_code(read) == "request.malformed_json", read.get_json()
