"""Lossless metadata removal for JPEG and PNG: segments and chunks are dropped, pixels untouched.

JPEG: keeps APP0 (JFIF), APP2 ICC profiles and APP14 (Adobe colour transform); drops APP1 (Exif,
XMP), other APP2 (MPF, FlashPix), APP3-APP13 (APP13: IPTC/Photoshop), APP15, COM and anything
after EOI. The walk goes through every scan (progressive files have tables between scans), so
the end of the image is known. PNG: drops eXIf, tEXt, zTXt, iTXt, tIME and anything after IEND;
keeps every other chunk; checks every CRC. A structural fault raises MalformedImage; the caller
(`domain.applications.files`) turns it into CorruptFile and decodes the result with Pillow.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers with a frame header (SOF0-SOF15 except DHT C4, JPG C8, DAC CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# APP1, APP3-APP12, APP13, APP15, COM. APP2 is dropped too unless it is an ICC profile.
_JPEG_DROP = frozenset({0xE1, *range(0xE3, 0xEE), 0xEF, 0xFE})
_ICC_ID = b"ICC_PROFILE\x00"
_EXIF_ID = b"Exif\x00\x00"
_PNG_DROP = frozenset({b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"})


class MalformedImage(ValueError):
    """The bytes do not follow the JPEG or PNG structure."""


class Stripped(NamedTuple):
    data: bytes
    width: int
    height: int
    orientation: int | None  # EXIF orientation 2-8 of the original, None when absent or 1
    removed: tuple[str, ...]  # names of what was dropped: "APP1", "COM", "tEXt", "trailing data"


def _orientation(tiff: bytes) -> int | None:
    from PIL import Image  # imported when a file is checked: workers that never do stay smaller

    try:
        exif = Image.Exif()
        exif.load(tiff)
        value = exif.get(0x0112)
    except Exception:  # unreadable Exif: it is dropped anyway, only the note is lost
        return None
    return value if isinstance(value, int) and 2 <= value <= 8 else None


def strip_jpeg(data: bytes) -> Stripped:
    """Copy a JPEG without its metadata segments; a frame height of 0 (DNL) is refused."""
    out = bytearray(b"\xff\xd8")
    removed: list[str] = []
    size: tuple[int, int] | None = None
    orientation: int | None = None
    pos, n = 2, len(data)
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise MalformedImage(f"no JPEG marker at offset {pos}")
        while pos < n and data[pos] == 0xFF:  # fill bytes may precede any marker
            pos += 1
        if pos >= n:
            raise MalformedImage("JPEG ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: whatever follows is not part of the image
            out += b"\xff\xd9"
            if pos < n:
                removed.append("trailing data")
            break
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # TEM, RSTn: no length
            out += bytes((0xFF, marker))
            continue
        if marker < 0xC0 or marker == 0xD8:
            raise MalformedImage(f"unexpected JPEG marker 0x{marker:02X}")
        if pos + 2 > n:
            raise MalformedImage("JPEG ends inside a segment length")
        end = pos + int.from_bytes(data[pos : pos + 2], "big")
        if end < pos + 2 or end > n:
            raise MalformedImage(f"JPEG segment 0x{marker:02X} runs past the end")
        payload = data[pos + 2 : end]
        if marker in _SOF:
            if len(payload) < 6:
                raise MalformedImage("short JPEG frame header")
            height, width = struct.unpack(">HH", payload[1:5])
            if size is None:
                size = (width, height)
        if marker in _JPEG_DROP or (marker == 0xE2 and not payload.startswith(_ICC_ID)):
            removed.append("COM" if marker == 0xFE else f"APP{marker - 0xE0}")
            if marker == 0xE1 and orientation is None and payload.startswith(_EXIF_ID):
                orientation = _orientation(payload[len(_EXIF_ID) :])
            pos = end
            continue
        out += bytes((0xFF, marker))
        out += data[pos:end]
        pos = end
        if marker == 0xDA:  # SOS: copy the entropy-coded data up to the next real marker
            if size is None:
                raise MalformedImage("JPEG scan before any frame header")
            scan_end = _entropy_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end
    if size is None or 0 in size:
        raise MalformedImage("JPEG without a usable frame header")
    return Stripped(bytes(out), size[0], size[1], orientation, tuple(removed))


def _entropy_end(data: bytes, pos: int) -> int:
    """Offset of the marker ending a scan: 0xFF not followed by 0x00 (stuffing) or RST0-RST7."""
    n = len(data)
    while True:
        i = data.find(b"\xff", pos)
        if i < 0 or i + 1 >= n:
            raise MalformedImage("JPEG scan data runs to the end without EOI")
        following = data[i + 1]
        if following == 0xFF:  # a fill byte before a marker
            pos = i + 1
        elif following == 0x00 or 0xD0 <= following <= 0xD7:
            pos = i + 2
        else:
            return i


def strip_png(data: bytes) -> Stripped:
    """Copy a PNG without its metadata chunks, checking the chunk layout and every CRC."""
    view = memoryview(data)
    out = bytearray(PNG_SIGNATURE)
    removed: list[str] = []
    orientation: int | None = None
    size: tuple[int, int] | None = None
    pos, n = len(PNG_SIGNATURE), len(data)
    while True:
        if pos + 12 > n:
            raise MalformedImage("PNG ends before IEND")
        length, kind = struct.unpack(">I4s", view[pos : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise MalformedImage(f"PNG chunk {kind!r} runs past the end")
        if not kind.isalpha():
            raise MalformedImage(f"invalid PNG chunk type {kind!r}")
        body = view[pos + 8 : end - 4]
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(view[end - 4 : end], "big"):
            raise MalformedImage(f"bad CRC in PNG chunk {kind!r}")
        if size is None:
            if kind != b"IHDR" or length != 13:
                raise MalformedImage("PNG does not start with IHDR")
            size = struct.unpack(">II", body[:8])
        if kind in _PNG_DROP:
            removed.append(kind.decode("ascii"))
            if kind == b"eXIf" and orientation is None:
                orientation = _orientation(bytes(body))
        else:
            out += view[pos:end]
        pos = end
        if kind == b"IEND":
            if pos < n:
                removed.append("trailing data")
            break
    if 0 in size:
        raise MalformedImage("PNG with zero width or height")
    return Stripped(bytes(out), size[0], size[1], orientation, tuple(removed))
