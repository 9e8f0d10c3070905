"""An upload the view cannot take as one file is refused clearly, and nothing is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from domain.applications.materials import FILE_PURPOSE
from domain.applications.models import ApplicationFile
from tests.api.v1.applications.conftest import SS_CARD, URL, create, error_code, get, jpeg, key


def _post(client: Any, who: dict, app_id: str, body: bytes, *, lang: str = "zh-CN", **headers: str) -> Any:
    return client.post(
        f"{URL}/{app_id}/materials/id_card/files", data=body, content_type="multipart/form-data; boundary=zz",
        headers=who["headers"] | {"Accept-Language": lang} | headers,
    )  # fmt: skip


def _part(disposition: bytes, content: bytes) -> bytes:
    return b"--zz\r\nContent-Disposition: form-data; " + disposition + b"\r\n\r\n" + content + b"\r\n"


def _nothing_stored(client: Any, who: dict, app: dict, db_session: Any) -> None:
    after = get(client, who, app["id"]).get_json()
    assert after["revision"] == app["revision"]
    assert [m["satisfied_by"] for m in after["materials"] if m["id"] == "id_card"] == [[]]
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 0


def test_two_files_in_one_upload_are_refused_not_one_of_them_kept(client, zhang, db_session):
    """A phone that sends two photos in one request used to get 201 for the first while the
    second was dropped unseen: the citizen believed both were attached."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    two = (
        _part(b'name="file"; filename="front.jpg"', jpeg())
        + _part(b'name="file"; filename="back.jpg"', jpeg(color="blue"))
        + b"--zz--\r\n"
    )
    for lang, message, field in (
        ("zh-CN", "上传的文件有误", "每次只能上传一个文件"),
        ("en", "The upload is not valid", "Send one file per upload"),
    ):
        resp = _post(client, zhang, app["id"], two, lang=lang, **key())
        assert resp.status_code == 422, resp.get_json()
        error = resp.get_json()["error"]
        assert (error["code"], error["message"], error["fields"]) == (
            "application.invalid_patch", message, {"file": [field]}
        )  # fmt: skip
    _nothing_stored(client, zhang, app, db_session)


def test_a_file_named_in_gbk_is_stored_with_its_name(client, zhang, db_session):
    """A GBK file name (older Android HTTP stacks) makes werkzeug drop the whole form; the
    citizen was told to send the name in UTF-8, which they cannot act on. The server knows the
    file by its content: the form is read leniently and the one file stored."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    name = b'name="file"; filename="' + "身份证.jpg".encode("gbk") + b'"\r\nContent-Type: image/jpeg'
    gbk = _part(b'name="note"', "正面".encode("gbk")) + _part(name, jpeg()) + b"--zz--\r\n"
    resp = _post(client, zhang, app["id"], gbk, **key())
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["media_type"] == "image/jpeg"
    row = db_session.scalars(select(ApplicationFile)).one()
    encryptor = client.application.extensions["yiwang"].encryptor
    assert encryptor.decrypt(row.name_enc, purpose=FILE_PURPOSE) == "身份证.jpg"


def test_two_files_named_in_gbk_are_refused_and_nothing_stored(client, zhang, db_session):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    two = (
        _part(b'name="file"; filename="' + "正面.jpg".encode("gbk") + b'"', jpeg())
        + _part(b'name="file"; filename="' + "反面.jpg".encode("gbk") + b'"', jpeg(color="blue"))
        + b"--zz--\r\n"
    )
    resp = _post(client, zhang, app["id"], two)
    assert resp.status_code == 422 and error_code(resp) == "application.invalid_patch", resp.get_json()
    assert resp.get_json()["error"]["fields"] == {"file": ["每次只能上传一个文件"]}
    _nothing_stored(client, zhang, app, db_session)


def test_a_body_that_is_no_form_is_refused_as_unreadable(client, zhang, db_session):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for body in (b"--zz\r\nnot a form at all", b'--zz\r\nContent-Disposition: form-data; name="file"; fil'):
        zh = _post(client, zhang, app["id"], body)
        assert zh.status_code == 422 and error_code(zh) == "application.invalid_patch", zh.get_json()
        assert zh.get_json()["error"]["fields"] == {
            "file": ["未能从上传内容中读取到文件，请重新选择文件上传"]
        }
        en = _post(client, zhang, app["id"], body, lang="en")
        assert en.get_json()["error"]["fields"] == {
            "file": ["No file could be read from the upload: send it again as multipart/form-data"]
        }
    _nothing_stored(client, zhang, app, db_session)


def test_a_form_without_a_file_in_the_field_file_names_the_field(client, zhang, db_session):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for body in (
        _part(b'name="photo"; filename="id.jpg"', jpeg()) + b"--zz--\r\n",  # another field name
        _part(b'name="file"', b"id.jpg") + b"--zz--\r\n",  # a text field, not a file
    ):
        for lang, field in (
            ("zh-CN", "请在表单字段 file 中上传文件"),
            ("en", "Send the file in the form field `file`"),
        ):
            resp = _post(client, zhang, app["id"], body, lang=lang)
            assert resp.status_code == 422 and error_code(resp) == "application.invalid_patch"
            assert resp.get_json()["error"]["fields"] == {"file": [field]}
    _nothing_stored(client, zhang, app, db_session)


def test_the_one_file_of_a_form_with_other_fields_is_stored(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    body = (
        _part(b'name="note"', "正面".encode())
        + _part(b'name="file"; filename="id.jpg"', jpeg())
        + b"--zz--\r\n"
    )
    resp = _post(client, zhang, app["id"], body)
    assert resp.status_code == 201 and resp.get_json()["media_type"] == "image/jpeg"


def test_a_retried_upload_named_in_gbk_is_replayed_not_stored_twice(client, zhang, db_session):
    """Each sending draws a new boundary: the retry is known by its parts, as a UTF-8 one is."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    name = b'name="file"; filename="' + "身份证.jpg".encode("gbk") + b'"'
    headers = key()
    first = _post(client, zhang, app["id"], _part(name, jpeg()) + b"--zz--\r\n", **headers)
    assert first.status_code == 201, first.get_json()
    again = _part(name, jpeg()).replace(b"--zz", b"--yy") + b"--yy--\r\n"
    resp = client.post(
        f"{URL}/{app['id']}/materials/id_card/files", data=again,
        content_type="multipart/form-data; boundary=yy", headers=zhang["headers"] | headers,
    )  # fmt: skip
    assert resp.status_code == 201 and resp.headers.get("Idempotent-Replayed") == "true", resp.get_json()
    assert resp.get_json()["id"] == first.get_json()["id"]
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 1
