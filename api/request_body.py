"""The request body as bytes, whole or refused."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge


def whole_body() -> bytes:
    """The request body, read once and cached (`request.get_data`).

    A body without a Content-Length (chunked, as a phone streams a file) is read up to
    MAX_CONTENT_LENGTH, and werkzeug returns what it read without saying whether more followed:
    a body cut there is not the body the client sent. That is a 413, not a shorter body for
    the caller (a fingerprint of a prefix, a form whose file part never ends).
    """
    data = request.get_data()
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(data) >= limit:
        if request.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
    return data
