"""A lenient reading of a multipart/form-data body, for what werkzeug refuses whole.

werkzeug drops the whole form when a part header is not UTF-8 (a GBK file name from an older
Android HTTP stack), though the file is there. This reads the parts' headers as bytes and
decodes the names as UTF-8, else GBK, else Latin-1: the name is only a hint (the server
recognises a file by its content). A body that is not a complete form (no closing delimiter,
a part without a header block) gives None.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `name="value"` or `name=value` in a Content-Disposition header, on bytes. A quoted value ends
# at the next quote: browsers percent-encode quotes in names and do not escape backslashes, and
# a GBK character's second byte may be a backslash.
_PARAM = re.compile(rb';\s*([A-Za-z*-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')


@dataclass(frozen=True)
class Part:
    name: str | None
    filename: str | None  # None: a text field, not a file
    content_type: str | None
    data: bytes


def _text(raw: bytes) -> str:
    for encoding in ("utf-8", "gbk"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def parts(body: bytes, boundary: str) -> list[Part] | None:
    """The parts of `body`, or None when it is not a complete multipart form."""
    if not boundary:
        return None
    delimiter = b"\r\n--" + boundary.encode("latin-1", "replace")
    pieces = (b"\r\n" + body).split(delimiter)
    found: list[Part] = []
    for piece in pieces[1:]:  # the first is the preamble
        if piece.startswith(b"--"):  # the closing delimiter
            return found
        head, sep, data = piece.partition(b"\r\n\r\n")
        if not sep:
            return None
        headers: dict[str, bytes] = {}
        for line in head.split(b"\r\n")[1:]:  # the first is the rest of the delimiter line
            key, colon, value = line.partition(b":")
            if colon:
                headers[key.strip().lower().decode("latin-1")] = value.strip()
        disposition = headers.get("content-disposition")
        if disposition is None:
            return None
        params: dict[str, bytes] = {}
        for m in _PARAM.finditer(disposition):
            params.setdefault(
                m.group(1).lower().decode("latin-1"), m.group(2) if m.group(2) is not None else m.group(3)
            )
        found.append(
            Part(
                name=_text(params["name"]) if "name" in params else None,
                filename=_text(params["filename"]) if "filename" in params else None,
                content_type=_text(headers["content-type"]) if "content-type" in headers else None,
                data=data,
            )
        )
    return None  # no closing delimiter: the body was cut
