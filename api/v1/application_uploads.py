"""Reading a material upload from the request: one file, from a multipart form or the raw body."""

from __future__ import annotations

from flask import request

from api import multipart
from api.request_body import whole_body
from core.errors import Text
from domain.applications.errors import FileTooLarge, UploadInvalid
from domain.applications.models import ApplicationFile

ONE_FILE = Text("Send one file per upload", "每次只能上传一个文件")
NO_FILE_FIELD = Text("Send the file in the form field `file`", "请在表单字段 file 中上传文件")
# A body that is no multipart form (cut short, no parts): the file was sent, it just could not
# be found. A form werkzeug cannot read for its part headers (a GBK file name) is read leniently.
UNREADABLE = Text(
    "No file could be read from the upload: send it again as multipart/form-data",
    "未能从上传内容中读取到文件，请重新选择文件上传",
)


def upload_bytes(limit: int) -> tuple[bytes, str | None]:
    """The file from multipart/form-data (field `file`) or the raw body, at most `limit` bytes."""
    if (request.content_length or 0) > limit + 256 * 1024:
        raise FileTooLarge.of(limit)
    if request.mimetype == "multipart/form-data":
        data, name = _form_file(limit)
    else:
        # The cached body, not the stream: an Idempotency-Key's fingerprint has read it already.
        data = whole_body()
        name = request.headers.get("X-File-Name")
    if len(data) > limit:
        raise FileTooLarge.of(limit)
    return data, name


def _form_file(limit: int) -> tuple[bytes, str | None]:
    # Read first (at most MAX_CONTENT_LENGTH, the Content-Length checked above): werkzeug then
    # parses the cached body, and the lenient reading below still has it when werkzeug gave up.
    body = whole_body()
    uploads = request.files.getlist("file")
    if len(uploads) == 1:
        return uploads[0].stream.read(limit + 1), uploads[0].filename
    if uploads:  # two files: taking the first would drop the other unseen
        raise UploadInvalid(fields={"file": [ONE_FILE]})
    if request.files or request.form:
        raise UploadInvalid(fields={"file": [NO_FILE_FIELD]})
    # werkzeug drops the whole form when a part header is not UTF-8 (a GBK file name).
    found = multipart.parts(body, request.mimetype_params.get("boundary", ""))
    if not found:
        raise UploadInvalid(fields={"file": [UNREADABLE]})
    files = [p for p in found if p.name == "file" and p.filename is not None]
    if len(files) != 1:
        raise UploadInvalid(fields={"file": [ONE_FILE if files else NO_FILE_FIELD]})
    return files[0].data[: limit + 1], files[0].filename


def file_body(row: ApplicationFile) -> dict:
    return {
        "id": row.id,
        "material_id": row.material_id,
        "media_type": row.media_type,
        "size": row.size,
        "sha256": row.sha256,
        "created_at": row.created_at.isoformat(),
    }
