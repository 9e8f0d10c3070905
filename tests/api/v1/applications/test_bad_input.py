"""Every bad input gets a clear 4xx in the error format and writes nothing."""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from core.redis import get_redis
from domain.applications.models import Application, ApplicationFile, ForwardingOutbox
from tests.api.v1.applications.conftest import (
    SS_CARD,
    URL,
    create,
    error_code,
    get,
    jpeg,
    key,
    patch,
    stage,
    submit,
    upload,
)


def _ready(client, who):
    """An SS card draft with everything a submission needs."""
    app = create(client, who, service_code=SS_CARD).get_json()
    app = patch(
        client, who, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    ).get_json()
    for material in ("id_card", "insurance"):
        assert upload(client, who, app["id"], material, jpeg()).status_code == 201
    return get(client, who, app["id"]).get_json()


def test_unknown_service_and_ambiguous_targets(client, zhang):
    assert error_code(create(client, zhang, service_code="X" * 31)) == "application.service_unknown"
    assert error_code(create(client, zhang, bundle_id="YJS-NOTHING")) == "application.service_unknown"
    both = create(client, zhang, service_code=SS_CARD, bundle_id="YJS-NEWBORN")
    assert both.status_code == 422 and error_code(both) == "request.validation_failed"
    assert both.get_json()["error"]["fields"] == {"_schema": ["请给出 service_code 或 bundle_id 中的一项"]}
    assert create(client, zhang).status_code == 422
    assert create(client, zhang, service_code=SS_CARD, extra=1).status_code == 422


def test_wrong_types_unknown_fields_and_read_only_fields_write_nothing(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    wrong = patch(client, zhang, app, {"applicant": {"phone": 13800000000}, "delivery": {"method": "drone"}})
    assert wrong.status_code == 422 and error_code(wrong) == "application.invalid_patch"
    assert set(wrong.get_json()["error"]["fields"]) == {"data.applicant.phone", "data.delivery.method"}
    unknown = patch(client, zhang, app, {"applicant": {"nickname": "小张"}})
    assert unknown.status_code == 422 and "data.applicant.nickname" in unknown.get_json()["error"]["fields"]
    read_only = patch(client, zhang, app, {"applicant": {"id_number": "11010519491231002X"}})
    assert read_only.status_code == 422 and error_code(read_only) == "application.field_read_only"
    # Every problem at once, each at its path: a phone marks them all, not one per attempt.
    mixed = patch(
        client, zhang, app,
        {"applicant": {"id_number": "11010519491231002X", "nickname": "小张", "phone": 138}},
    )  # fmt: skip
    assert error_code(mixed) == "application.field_read_only"
    assert set(mixed.get_json()["error"]["fields"]) == {
        "data.applicant.id_number", "data.applicant.nickname", "data.applicant.phone"
    }  # fmt: skip
    wiped = patch(client, zhang, app, {"applicant": None})  # removing the group would remove verified fields
    assert error_code(wiped) == "application.field_read_only"
    no_match = client.patch(f"{URL}/{app['id']}", json={"data": {}}, headers=zhang["headers"])
    assert no_match.status_code == 428 and error_code(no_match) == "application.if_match_required"
    for odd in ('"r³"', '"r1²"', '"r-1"', '"W/"'):  # Latin-1 superscripts pass str.isdigit() (was a 500)
        resp = client.patch(
            f"{URL}/{app['id']}", json={"data": {}}, headers=zhang["headers"] | {"If-Match": odd}
        )
        assert resp.status_code == 400 and error_code(resp) == "request.bad_if_match", odd
    assert get(client, zhang, app["id"]).get_json()["revision"] == 1


def test_a_dotted_name_is_refused_and_the_prefilled_phone_stays_prefilled(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for data in ({"delivery.method": "window"}, {"applicant.phone": "13900000000"}, {"delivery": {"": "x"}}):
        resp = patch(client, zhang, app, data)
        assert resp.status_code == 422 and error_code(resp) == "application.invalid_patch", data
    after = get(client, zhang, app["id"]).get_json()
    assert after["revision"] == 1 and "delivery.method" not in after["data"]
    assert after["provenance"]["applicant.phone"]["source"] == "account.phone"
    assert after["data"]["applicant"]["phone"] == app["data"]["applicant"]["phone"]  # still masked


def test_ids_that_cannot_name_anything_are_not_found(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for method, path in (
        ("get", f"{URL}/%00"),
        ("get", f"{URL}/%00/timeline"),
        ("get", f"{URL}/%00/form"),
        ("patch", f"{URL}/%00"),
        ("get", f"{URL}/{app['id']}/materials/%00/files"),
        ("delete", f"{URL}/{app['id']}/materials/id_card/files/%00"),
        ("get", f"{URL}/{'a' * 2000}"),
        ("get", "/v1/complaints/%00"),
    ):
        resp = getattr(client, method)(path, headers=zhang["headers"] | {"If-Match": '"1"'})
        assert resp.status_code == 404 and resp.get_json()["error"]["code"].endswith("not_found"), (
            path,
            resp,
        )
    assert get(client, zhang, app["id"]).get_json()["revision"] == 1


def test_another_accounts_application_is_not_found_and_nothing_leaks(client, zhang, li):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    missing = get(client, li, "00000000-0000-0000-0000-000000000000").get_json()
    for resp in (
        get(client, li, app["id"]),
        patch(client, li, app, {"ss_card_application": {"bank": "abc"}}),
        submit(client, li, app),
        client.get(f"{URL}/{app['id']}/timeline", headers=li["headers"]),
        client.get(f"{URL}/{app['id']}/form", headers=li["headers"]),
        upload(client, li, app["id"], "id_card", jpeg()),
        client.post(f"{URL}/{app['id']}/withdraw", json={}, headers=li["headers"]),
        client.delete(f"{URL}/{app['id']}", headers=li["headers"]),
    ):
        body = resp.get_json()
        assert (
            resp.status_code == 404
            and body["error"]["code"] == missing["error"]["code"] == "application.not_found"
        )
        assert body["error"]["message"] == missing["error"]["message"]
    assert get(client, zhang, app["id"]).get_json()["revision"] == 1
    # Nor can li reuse zhang's file.
    zhang_file = upload(client, zhang, app["id"], "id_card", jpeg()).get_json()["id"]
    mine = create(client, li, service_code=SS_CARD).get_json()
    reuse = client.post(
        f"{URL}/{mine['id']}/materials/id_card/reuse", json={"file_id": zhang_file}, headers=li["headers"]
    )
    assert reuse.status_code == 404 and error_code(reuse) == "application.file_not_found"


def test_submission_idempotency(client, zhang, db_session):
    app = _ready(client, zhang)
    no_key = client.post(f"{URL}/{app['id']}/submit", json={}, headers=zhang["headers"])
    assert no_key.status_code == 428 and error_code(no_key) == "idempotency.key_required"
    k = key()
    first = submit(client, zhang, app, headers=k)
    assert first.status_code == 200
    replay = submit(client, zhang, app, headers=k)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    assert (
        first.headers["ETag"] and replay.headers["ETag"] == first.headers["ETag"]
    )  # the version to edit next
    other_body = client.post(f"{URL}/{app['id']}/submit", json={}, headers=zhang["headers"] | k)
    assert other_body.status_code == 422 and error_code(other_body) == "idempotency.key_reused"
    twice = submit(client, zhang, app)  # a new key: a second submission, refused
    assert twice.status_code == 409 and error_code(twice) == "application.illegal_transition"
    rows = db_session.scalar(
        select(func.count()).select_from(ForwardingOutbox).where(ForwardingOutbox.application_id == app["id"])
    )
    assert rows == 1


def test_a_resent_submission_with_its_keys_in_another_order_replays(client, zhang, db_session):
    """An app restarted before it learnt the answer resends the stored request with its key; a
    serializer that does not keep key order (Swift's JSONEncoder without .sortedKeys) writes the
    same value in other bytes: it is the same request, replayed. Another value is not."""
    app = _ready(client, zhang)
    k = key()
    version = app["consent"]["text_version"]
    url, headers = f"{URL}/{app['id']}/submit", zhang["headers"] | k | {"Content-Type": "application/json"}
    first = client.post(url, data=f'{{"consent": {{"accepted": true, "text_version": "{version}"}}}}',
                        headers=headers)  # fmt: skip
    assert first.status_code == 200, first.get_json()
    again = client.post(url, data=f'{{ "consent":{{"text_version":"{version}",  "accepted":true }} }}\n',
                        headers=headers)  # fmt: skip
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true", again.get_json()
    assert again.get_json()["case_number"] == first.get_json()["case_number"]
    other = client.post(url, data=f'{{"consent": {{"accepted": false, "text_version": "{version}"}}}}',
                        headers=headers)  # fmt: skip
    assert other.status_code == 422 and error_code(other) == "idempotency.key_reused"
    rows = db_session.scalar(
        select(func.count()).select_from(ForwardingOutbox).where(ForwardingOutbox.application_id == app["id"])
    )
    assert rows == 1


def test_the_same_key_while_the_first_submission_runs_is_409_then_replays_it(
    client, app, zhang, services, monkeypatch
):
    """A phone that times out and retries while the first request is still being processed
    learns to wait (409), not a second case; later the key replays the first answer, and the
    key is kept at least a day."""
    ready = _ready(client, zhang)
    k = key()
    numbers = services.applications.case_numbers
    entered, release = threading.Event(), threading.Event()
    real_next = numbers.next

    def slow_next(*args, **kwargs):
        entered.set()
        assert release.wait(10)
        return real_next(*args, **kwargs)

    monkeypatch.setattr(numbers, "next", slow_next)
    first: list = []
    worker = threading.Thread(target=lambda: first.append(submit(app.test_client(), zhang, ready, headers=k)))
    worker.start()
    try:
        assert entered.wait(10), "the first submission never got to its case number"
        busy = submit(client, zhang, ready, headers=k)
    finally:
        release.set()
        worker.join(10)
    assert busy.status_code == 409 and error_code(busy) == "idempotency.in_progress"
    assert first and first[0].status_code == 200, first and first[0].get_json()
    retry = submit(client, zhang, ready, headers=k)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.get_json()["case_number"] == first[0].get_json()["case_number"]
    redis = get_redis()
    ttls = [redis.ttl(name) for name in redis.scan_iter("idem:*")]
    assert ttls and min(ttls) > 86400 - 60, ttls


def test_withdrawn_and_completed_cases_cannot_be_submitted_or_withdrawn(client, zhang, officer):
    app = _ready(client, zhang)
    assert submit(client, zhang, app).status_code == 200
    # A reason with a control character (NUL) is bad input and changes nothing.
    nul = client.post(f"{URL}/{app['id']}/withdraw", json={"reason": "a\u0000b"}, headers=zhang["headers"])
    assert nul.status_code == 422 and "reason" in nul.get_json()["error"]["fields"], nul.get_json()
    assert get(client, zhang, app["id"]).get_json()["status"] == "submitted"
    withdrawn = client.post(
        f"{URL}/{app['id']}/withdraw", json={"reason": "材料准备有误"}, headers=zhang["headers"]
    )
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    assert error_code(submit(client, zhang, app)) == "application.illegal_transition"
    assert error_code(stage(client, officer, app["id"], "received")) == "application.illegal_transition"

    done = _ready(client, zhang)
    assert submit(client, zhang, done).status_code == 200
    for to in ("received", "accepted"):
        assert stage(client, officer, done["id"], to).status_code == 200
    late = client.post(f"{URL}/{done['id']}/withdraw", json={}, headers=zhang["headers"])
    assert late.status_code == 409  # accepted: too late to withdraw
    no_result = stage(client, officer, done["id"], "completed")
    assert no_result.status_code == 422
    assert stage(client, officer, done["id"], "completed", result="denied").status_code == 200
    assert error_code(submit(client, zhang, done)) == "application.illegal_transition"
    assert (
        error_code(patch(client, zhang, get(client, zhang, done["id"]).get_json(), {}))
        == "application.not_editable"
    )
    backwards = stage(client, officer, done["id"], "accepted")
    assert backwards.status_code == 409
    unknown = stage(client, officer, done["id"], "draft")
    assert unknown.status_code == 422


def test_a_supplement_is_withdrawable_only_if_the_case_was_never_accepted(client, zhang, officer, db_session):
    early = _ready(client, zhang)
    assert submit(client, zhang, early).status_code == 200
    assert stage(client, officer, early["id"], "received").status_code == 200
    asked = stage(client, officer, early["id"], "supplement_requested", materials=["insurance"])
    assert asked.status_code == 200
    gone = client.post(f"{URL}/{early['id']}/withdraw", json={}, headers=zhang["headers"])
    assert gone.status_code == 200 and gone.get_json()["status"] == "withdrawn"

    late = _ready(client, zhang)
    assert submit(client, zhang, late).status_code == 200
    for to in ("received", "accepted"):
        assert stage(client, officer, late["id"], to).status_code == 200
    asked = stage(client, officer, late["id"], "supplement_requested", materials=["insurance"])
    assert asked.status_code == 200
    refused = client.post(f"{URL}/{late['id']}/withdraw", json={}, headers=zhang["headers"])
    assert error_code(refused) == "application.illegal_transition"
    assert get(client, zhang, late["id"]).get_json()["status"] == "supplement_requested"
    kinds = db_session.scalars(
        select(ForwardingOutbox.kind).where(ForwardingOutbox.application_id == late["id"])
    ).all()
    assert kinds == ["submit"]  # nothing about a withdrawal went to the province


def test_files_that_lie_empty_and_oversized_files_leave_nothing(client, zhang, db_session, services):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    text = upload(client, zhang, app["id"], "id_card", "我的身份证".encode() * 50, "id.jpg")
    assert text.status_code == 422 and error_code(text) == "file.unsupported_type"
    fake = upload(client, zhang, app["id"], "id_card", b"\xff\xd8\xff\xe0" + b"\x00garbage" * 100, "id.jpg")
    assert fake.status_code == 422 and error_code(fake) == "file.corrupt"
    html = upload(client, zhang, app["id"], "id_card", b"<html><script>alert(1)</script></html>", "id.pdf")
    assert error_code(html) == "file.unsupported_type"
    empty = upload(client, zhang, app["id"], "id_card", b"", "id.jpg")
    assert empty.status_code == 422 and error_code(empty) == "file.empty"
    big = upload(client, zhang, app["id"], "id_card", b"%PDF-" + b"0" * services.applications.max_file_bytes)
    assert big.status_code == 413 and error_code(big) == "file.too_large"
    raw = client.post(
        f"{URL}/{app['id']}/materials/id_card/files",
        data=b"",
        headers=zhang["headers"] | {"Content-Type": "image/jpeg"},
    )
    assert raw.status_code == 422
    unknown = upload(client, zhang, app["id"], "no_such_material", jpeg())
    assert unknown.status_code == 404 and error_code(unknown) == "application.material_unknown"
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 0
    assert list(services.applications.storage.iter_keys(f"materials/{zhang['account_id']}/")) == []


def test_a_material_holds_a_bounded_number_of_files(client, zhang, db_session, services, monkeypatch):
    """Without a bound one account could fill the storage with 10 MB files on a single draft."""
    monkeypatch.setattr(services.applications, "max_files_per_material", 3)
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for _ in range(3):
        assert upload(client, zhang, app["id"], "photo", jpeg()).status_code == 201
    fourth = upload(client, zhang, app["id"], "photo", jpeg())
    assert fourth.status_code == 409 and error_code(fourth) == "application.too_many_files"
    assert "3" in fourth.get_json()["error"]["message"]
    earlier = create(client, zhang, service_code=SS_CARD).get_json()  # a reuse counts too
    file_id = upload(client, zhang, earlier["id"], "photo", jpeg()).get_json()["id"]
    reused = client.post(
        f"{URL}/{app['id']}/materials/photo/reuse", json={"file_id": file_id}, headers=zhang["headers"]
    )
    assert reused.status_code == 409 and error_code(reused) == "application.too_many_files"
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 4  # 3 + the earlier one
    assert len(list(services.applications.storage.iter_keys(f"materials/{zhang['account_id']}/"))) == 4
    # Another material of the same draft has room of its own.
    assert upload(client, zhang, app["id"], "id_card", jpeg()).status_code == 201


def test_a_file_over_a_limit_under_one_megabyte_is_told_the_limit_as_read(
    client, zhang, db_session, services, monkeypatch
):
    """A province may allow only 500 KB for a photo: the refusal says so, not "0 MB"."""
    monkeypatch.setattr(services.applications, "max_file_bytes", 500 * 1024)
    app = create(client, zhang, service_code=SS_CARD).get_json()
    big = upload(client, zhang, app["id"], "photo", b"%PDF-" + b"0" * 600 * 1024)
    error = big.get_json()["error"]
    assert big.status_code == 413 and error["code"] == "file.too_large"
    assert error["message"] == "文件不能超过 500 KB"
    assert error["details"] == {"limit_bytes": 500 * 1024}
    english = client.post(
        f"{URL}/{app['id']}/materials/photo/files",
        data={"file": (io.BytesIO(b"%PDF-" + b"0" * 600 * 1024), "photo.pdf")},
        content_type="multipart/form-data",
        headers=zhang["headers"] | {"Accept-Language": "en"},
    )
    assert english.get_json()["error"]["message"] == "The file must not exceed 500 KB"
    monkeypatch.setattr(services.applications, "max_file_bytes", 3 * 1024 * 1024 // 2)
    assert (
        upload(client, zhang, app["id"], "photo", b"%PDF-" + b"0" * 2 * 1024 * 1024).get_json()["error"][
            "message"
        ]
        == "文件不能超过 1.5 MB"
    )
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 0


def test_a_pdf_named_jpg_is_stored_as_a_pdf_and_exif_is_removed(client, zhang, services, db_session):
    from domain.applications.materials import read_file

    app = create(client, zhang, service_code=SS_CARD).get_json()
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x8825] = {2: (23.0, 7.0, 30.0)}  # GPS latitude
    out = io.BytesIO()
    Image.new("RGB", (32, 32), "green").save(out, "JPEG", exif=exif)
    assert b"SecretCam" in out.getvalue()
    resp = upload(client, zhang, app["id"], "id_card", out.getvalue())
    assert resp.status_code == 201 and resp.get_json()["media_type"] == "image/jpeg"
    row, data = read_file(
        db_session, services.applications, account_id=zhang["account_id"], file_id=resp.get_json()["id"]
    )
    assert b"SecretCam" not in data and b"Exif" not in data
    import hashlib

    assert hashlib.sha256(data).hexdigest() == row.sha256
    stored = services.applications.storage.get(row.storage_key)
    assert b"\xff\xd8" not in stored[:4]  # encrypted at rest
    pdf_named_jpg = upload(client, zhang, app["id"], "insurance", b"%PDF-1.4\n%%EOF\n", "photo.jpg")
    assert pdf_named_jpg.status_code == 201 and pdf_named_jpg.get_json()["media_type"] == "application/pdf"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_raw_body_upload_with_an_idempotency_key_is_stored_and_replayed(client, zhang, chunked):
    """The app's other way to upload: the file as the body (X-File-Name), chunked when the
    phone streams it. The key's fingerprint reads the body first; the file must still arrive."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    photo = jpeg()
    headers = zhang["headers"] | key() | {"X-File-Name": "id.jpg"}
    extra: dict = {}
    if chunked:  # no Content-Length, as gunicorn hands a chunked body on
        headers |= {"Transfer-Encoding": "chunked"}
        extra = {"environ_overrides": {"wsgi.input_terminated": True}}

    def send():
        return client.post(f"{URL}/{app['id']}/materials/id_card/files", input_stream=io.BytesIO(photo),
                           content_type="image/jpeg", headers=headers, **extra)  # fmt: skip

    first = send()
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["media_type"] == "image/jpeg" and first.get_json()["size"] > 0
    again = send()  # the phone retries after losing the answer
    assert again.status_code == 201 and again.get_json()["id"] == first.get_json()["id"]
    materials = get(client, zhang, app["id"]).get_json()["materials"]
    assert [len(m["satisfied_by"]) for m in materials if m["id"] == "id_card"] == [1]


def test_a_retried_multipart_upload_replays_though_its_boundary_differs(client, zhang):
    """wx.uploadFile and the phones' HTTP libraries send a file as multipart/form-data with a new
    random boundary each time: the retry after a lost answer is the same upload, replayed, not a
    key reused for another request. Another file, or the same file under another name, is."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    photo, other, k = jpeg(), jpeg(color="blue"), key()

    def send(data: bytes, name: str = "photo.jpg") -> Any:  # the test client draws a boundary each time
        return client.post(
            f"{URL}/{app['id']}/materials/id_card/files", data={"file": (io.BytesIO(data), name)},
            content_type="multipart/form-data", headers=zhang["headers"] | k,
        )  # fmt: skip

    first = send(photo)
    assert first.status_code == 201, first.get_json()
    again = send(photo)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    for changed in (send(other), send(photo, name="other.jpg")):
        assert changed.status_code == 422 and error_code(changed) == "idempotency.key_reused"
    materials = get(client, zhang, app["id"]).get_json()["materials"]
    assert [len(m["satisfied_by"]) for m in materials if m["id"] == "id_card"] == [1]


def test_a_raw_upload_under_another_name_is_another_request(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    photo, k = jpeg(), key()

    def send(name: str) -> Any:
        headers = zhang["headers"] | k | {"X-File-Name": name}
        url = f"{URL}/{app['id']}/materials/id_card/files"
        return client.post(url, data=photo, content_type="image/jpeg", headers=headers)

    assert send("id.jpg").status_code == 201
    assert send("id.jpg").headers.get("Idempotent-Replayed") == "true"
    renamed = send("back.jpg")
    assert renamed.status_code == 422 and error_code(renamed) == "idempotency.key_reused"


@pytest.mark.parametrize("with_key", [False, True])
@pytest.mark.parametrize("multipart", [False, True])
def test_an_oversized_chunked_upload_is_413_whether_or_not_it_has_a_key(
    client, app, zhang, db_session, multipart, with_key
):
    """A phone streaming a file larger than the request limit (no Content-Length): reading the
    body stops at the limit, and what was read must not pass for the whole body (the key's
    fingerprint reads it first)."""
    draft = create(client, zhang, service_code=SS_CARD).get_json()
    content = b"\xff\xd8\xff" + b"\x00" * (app.config["MAX_CONTENT_LENGTH"] + 10)
    content_type = "image/jpeg"
    if multipart:
        content = (
            b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="id.jpg"\r\n\r\n'
            + content + b"\r\n--zzz--\r\n"
        )  # fmt: skip
        content_type = "multipart/form-data; boundary=zzz"
    headers = zhang["headers"] | {"Transfer-Encoding": "chunked"} | (key() if with_key else {})
    resp = client.post(
        f"{URL}/{draft['id']}/materials/id_card/files", input_stream=io.BytesIO(content),
        content_type=content_type, headers=headers, environ_overrides={"wsgi.input_terminated": True},
    )  # fmt: skip
    assert resp.status_code == 413, resp.get_json()
    assert resp.get_json()["error"]["code"] in ("file.too_large", "request.too_large")
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 0


def test_draft_deletion_and_only_drafts(client, zhang, db_session):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    assert client.delete(f"{URL}/{app['id']}", headers=zhang["headers"]).status_code == 204
    assert get(client, zhang, app["id"]).status_code == 404
    ready = _ready(client, zhang)
    assert submit(client, zhang, ready).status_code == 200
    assert client.delete(f"{URL}/{ready['id']}", headers=zhang["headers"]).status_code == 409
    assert db_session.scalar(select(func.count()).select_from(Application)) == 1


def test_storage_down_is_a_503_and_writes_nothing(client, zhang, services, monkeypatch, db_session):
    from integrations.storage.base import StorageUnavailable

    app = create(client, zhang, service_code=SS_CARD).get_json()

    def down(key, data):
        raise StorageUnavailable("connection refused")

    monkeypatch.setattr(services.applications.storage, "put", down)
    resp = upload(client, zhang, app["id"], "id_card", jpeg())
    assert resp.status_code == 503 and error_code(resp) == "service_unavailable"
    assert int(resp.headers["Retry-After"]) > 0  # the phone is told when to try again
    assert db_session.scalar(select(func.count()).select_from(ApplicationFile)) == 0


def test_a_refused_submission_can_be_retried_with_the_same_key_after_fixing(client, zhang):
    app = create(client, zhang, service_code=SS_CARD).get_json()
    k = key()
    refused = submit(client, zhang, app, headers=k)
    assert refused.status_code == 422  # nothing changed, so nothing is replayed
    app = _ready_from(client, zhang, app)
    accepted = submit(client, zhang, app, headers=k)
    assert accepted.status_code == 200 and "Idempotent-Replayed" not in accepted.headers


def _ready_from(client, who, app):
    app = patch(
        client, who, app, {"ss_card_application": {"bank": "icbc"}, "delivery": {"method": "window"}}
    ).get_json()
    for material in ("id_card", "insurance"):
        upload(client, who, app["id"], material, jpeg())
    return get(client, who, app["id"]).get_json()


@pytest.mark.parametrize("looks_true", ["yes", "true", 1, "1", "on"])
def test_a_consent_is_given_by_json_true_only(client, zhang, looks_true):
    """marshmallow's Boolean would take these as true: a consent must be explicit."""
    app = _ready(client, zhang)
    body = {"consent": {"accepted": looks_true, "text_version": app["consent"]["text_version"]}}
    refused = client.post(f"{URL}/{app['id']}/submit", json=body, headers=zhang["headers"] | key())
    assert refused.status_code == 422, refused.get_json()
    assert "consent" in str(refused.get_json()["error"].get("fields"))
    assert get(client, zhang, app["id"]).get_json()["status"] == "draft"
    assert submit(client, zhang, app).status_code == 200  # JSON true still gives it


def test_a_pattern_is_read_as_the_phone_reads_it(client, zhang):
    """JSON Schema patterns are ECMA-262 (what the phone checks): \\d is 0-9 and $ the end of
    the text. Other scripts' digits and a final newline used to pass (Python's `re`)."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    for odd in ("１３９００１３９０００", "١٣٩٠٠١٣٩٠٠٠", "13900139000\n", "139００139000"):
        refused = patch(client, zhang, app, {"applicant": {"phone": odd}})
        assert refused.status_code == 422 and error_code(refused) == "application.invalid_patch", odd
        assert set(refused.get_json()["error"]["fields"]) == {"data.applicant.phone"}
    assert get(client, zhang, app["id"]).get_json()["revision"] == app["revision"]  # nothing written
    assert patch(client, zhang, app, {"applicant": {"phone": "13900139000"}}).status_code == 200


@pytest.mark.parametrize("material", ["x" * 5000, "%ff%fe", "no_such_material", "ID_CARD", "id_card%20"])
def test_reusable_files_of_a_material_the_service_has_not_are_not_found(client, zhang, material):
    """As an upload or a reuse for the same path: 404 application.material_unknown, not an empty list."""
    app = create(client, zhang, service_code=SS_CARD).get_json()
    resp = client.get(f"{URL}/{app['id']}/materials/{material}/files", headers=zhang["headers"])
    assert resp.status_code == 404 and error_code(resp) == "application.material_unknown", material
    known = client.get(f"{URL}/{app['id']}/materials/id_card/files", headers=zhang["headers"])
    assert known.status_code == 200 and known.get_json() == {"reusable": []}
