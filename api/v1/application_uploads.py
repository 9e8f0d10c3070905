"""Reading a material upload from the request: one file, from a multipart form or the raw body."""

from __future__ import annotations

from flask import request

from api.request_body import whole_body
from core.errors import Text
from domain.applications.errors import FileTooLarge, UploadInvalid
from domain.applications.models import ApplicationFile

ONE_FILE = Text("Send one file per upload", "每次只能上传一个文件")
NO_FILE_FIELD = Text("Send the file in the form field `file`", "请在表单字段 file 中上传文件")
# werkzeug drops a whole form it cannot read (a part header not in UTF-8, such as a GBK file
# name, or a body that is no multipart form): the file was sent, it just could not be found.
UNREADABLE = Text(
    "No file could be read from the upload: send it as multipart/form-data, its name in UTF-8",
    "未能从上传内容中读取到文件，请重新选择文件上传（文件名须为 UTF-8 编码）",
)


def upload_bytes(limit: int) -> tuple[bytes, str | None]:
    """The file from multipart/form-data (field `file`) or the raw body, at most `limit` bytes."""
    if (request.content_length or 0) > limit + 256 * 1024:
        raise FileTooLarge.of(limit)
    if request.mimetype == "multipart/form-data":
        uploads = request.files.getlist("file")
        if len(uploads) != 1:  # two files: taking the first would drop the other unseen
            why = ONE_FILE if uploads else NO_FILE_FIELD if request.files or request.form else UNREADABLE
            raise UploadInvalid(fields={"file": [why]})
        data = uploads[0].stream.read(limit + 1)
        name = uploads[0].filename
    else:
        # The cached body, not the stream: an Idempotency-Key's fingerprint has read it already.
        data = whole_body()
        name = request.headers.get("X-File-Name")
    if len(data) > limit:
        raise FileTooLarge.of(limit)
    return data, name


def file_body(row: ApplicationFile) -> dict:
    return {
        "id": row.id,
        "material_id": row.material_id,
        "media_type": row.media_type,
        "size": row.size,
        "sha256": row.sha256,
        "created_at": row.created_at.isoformat(),
    }
