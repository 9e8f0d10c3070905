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
