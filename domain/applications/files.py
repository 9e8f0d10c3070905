"""What an uploaded material really is, whether it opens, and the same file without metadata.

Pure functions on bytes: no database, no Flask, no file names (only magic bytes count).
`sniff` names JPEG, PNG, PDF or OFD (GB/T 33190: a ZIP whose root holds `OFD.xml`; only the
central directory is read, so a zip bomb costs nothing). PDF readers accept `%PDF-` anywhere in
the first 1024 bytes; we require it at offset 0 so nothing can hide in front of the header.

`inspect` also proves the file opens. Images lose their metadata without re-encoding
(`imagemeta.py` lists what goes and what stays) and the result is fully decoded with Pillow; the
pixel count is checked from the header first, so a decompression bomb is refused before any
pixel memory is allocated. Of Exif only the orientation stays (a value other than 1, in an
Exif segment of its own, also reported in `Inspected.orientation`), so a photo a phone rotated
by the tag reaches the department upright. PDF (header at 0, `%%EOF` in the last 1024 bytes)
and OFD are checked for structure only and returned unchanged: their document metadata is kept.

Errors are plain exceptions (the API maps them) with a stable `code` and `message_zh`/`message_en`.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from typing import ClassVar

from domain.applications.imagemeta import PNG_SIGNATURE, MalformedImage, Stripped, strip_jpeg, strip_png

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"
OFD = "application/ofd"
MEDIA_TYPES = (JPEG, PNG, PDF, OFD)

_ZIP = "zip"  # a ZIP container: OFD or not, decided by its central directory
_EOF_WINDOW = 1024  # "%%EOF" must appear within the last 1024 bytes of a PDF
_PILLOW_FORMATS = {JPEG: ("JPEG", "MPO"), PNG: ("PNG",)}


class FileRejected(Exception):
    """Base of every refusal; `detail` is a technical note for logs, never shown to citizens."""

    code: ClassVar[str] = "file.rejected"
    message_zh: ClassVar[str] = "文件无法接收，请重新选择文件上传"
    message_en: ClassVar[str] = "The file cannot be accepted"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.code}: {detail}" if detail else self.code)
        self.detail = detail


class EmptyFile(FileRejected):
    code = "file.empty"
    message_zh = "文件是空的，请重新选择文件上传"
    message_en = "The file is empty"


class UnsupportedType(FileRejected):
    code = "file.unsupported_type"
    message_zh = "文件内容不是 JPG、PNG、PDF 或 OFD 格式"
    message_en = "The file is not a JPG, PNG, PDF or OFD file"


class CorruptFile(FileRejected):
    code = "file.corrupt"
    message_zh = "文件已损坏或不完整，无法打开，请重新拍照或扫描后上传"
    message_en = "The file is damaged or incomplete and cannot be opened"


class TooManyPixels(FileRejected):
    code = "file.too_many_pixels"
    message_zh = "图片尺寸过大，请缩小后重新上传"
    message_en = "The image has too many pixels; reduce its size and upload it again"


@dataclass(frozen=True, slots=True)
class Inspected:
    """A checked material. `cleaned` is what to store; `size` and `sha256` describe `cleaned`."""

    media_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    orientation: int | None  # EXIF orientation 2-8 of the original (kept, the one Exif tag that is)
    removed: tuple[str, ...]  # e.g. ("APP1", "COM") or ("tEXt", "eXIf"); for audit and tests
    cleaned: bytes = field(repr=False)


def sniff(data: bytes) -> str | None:
    """The media type by magic bytes (one of MEDIA_TYPES), or None."""
    kind = _magic(data)
    if kind != _ZIP:
        return kind
    try:
        return OFD if _zip_is_ofd(data) else None
    except CorruptFile:
        return None


def inspect(data: bytes, *, max_pixels: int = 40_000_000) -> Inspected:
    """Check an upload and return it cleaned; raises a FileRejected subclass."""
    if not data:
        raise EmptyFile()
    kind = _magic(data)
    if kind is None:
        raise UnsupportedType("magic bytes of no accepted type")
    if kind == _ZIP:
        if not _zip_is_ofd(data):
            raise UnsupportedType("ZIP without OFD.xml at its root")
        return _unchanged(OFD, data)
    if kind == PDF:
        if b"%%EOF" not in data[-_EOF_WINDOW:]:
            raise CorruptFile("PDF without %%EOF in its last 1024 bytes")
        return _unchanged(PDF, data)
    try:
        stripped = strip_jpeg(data) if kind == JPEG else strip_png(data)
    except MalformedImage as exc:
        raise CorruptFile(str(exc)) from exc
    _decode(stripped, kind, _pixel_limit(max_pixels))
    return Inspected(
        media_type=kind,
        size=len(stripped.data),
        sha256=hashlib.sha256(stripped.data).hexdigest(),
        width=stripped.width,
        height=stripped.height,
        orientation=stripped.orientation,
        removed=stripped.removed,
        cleaned=stripped.data,
    )


def _magic(data: bytes) -> str | None:
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(PNG_SIGNATURE):
        return PNG
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        return _ZIP
    return None


def _zip_is_ofd(data: bytes) -> bool:
    """Whether the ZIP's root holds OFD.xml; reads the central directory only, decompresses nothing."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    # NotImplementedError: an entry claims to need a newer ZIP version than Python reads.
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
    ) as exc:
        raise CorruptFile(f"unreadable ZIP central directory: {exc}") from exc
    return "OFD.xml" in names


def _unchanged(media_type: str, data: bytes) -> Inspected:
    digest = hashlib.sha256(data).hexdigest()
    return Inspected(media_type, len(data), digest, None, None, None, (), data)


def _pixel_limit(max_pixels: int) -> int:
    from PIL import Image  # imported when a file is checked: workers that never do stay smaller

    # Pillow warns above its process-wide MAX_IMAGE_PIXELS and raises above twice that. Staying
    # at or below it means Pillow never warns; the global is read, never changed (not thread-safe).
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_limit is None else min(max_pixels, int(pillow_limit))


def _decode(stripped: Stripped, media_type: str, limit: int) -> None:
    """Prove the cleaned bytes are a whole image; the size is checked before any pixel is decoded."""
    from PIL import Image  # imported when a file is checked: workers that never do stay smaller

    if stripped.width * stripped.height > limit:
        raise TooManyPixels(f"{stripped.width}x{stripped.height} is over {limit} pixels")
    try:
        with Image.open(io.BytesIO(stripped.data), formats=_PILLOW_FORMATS[media_type]) as image:
            if image.size != (stripped.width, stripped.height):
                raise CorruptFile(f"Pillow reads {image.size}, the header says otherwise")
            image.load()
    except FileRejected:
        raise
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(str(exc)) from exc
    except Exception as exc:  # any failure of a parser on untrusted input means "does not open"
        raise CorruptFile(f"Pillow cannot decode it: {exc!r}") from exc
