"""Lossless metadata removal for JPEG and PNG: segments and chunks are dropped, pixels untouched.

What stays is listed (an allow-list: metadata in a segment or chunk nobody thought of goes too).
JPEG: the coding segments (frame headers, tables, scans, restart interval); APP0 only as a plain
JFIF header (its thumbnail, which may show the uncropped original, is cut); APP2 only as an ICC
profile; APP14 only as Adobe's 12-byte colour-transform header; and, when the photo has an EXIF
orientation other than 1, a new APP1 holding that one tag, so the department sees a portrait
photo upright (phones often rotate by the tag instead of the pixels). Everything else goes:
Exif and XMP (APP1), MPF and FlashPix (APP2), APP3-APP13 (APP13: IPTC/Photoshop), APP15, COM,
the JPEG extension markers and anything after EOI. The walk goes through every scan (progressive
files have tables between scans), so the end of the image is known. PNG: keeps the chunks that
draw the image (IHDR, PLTE, IDAT, IEND, tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, pHYs, bKGD and the
APNG frames acTL, fcTL, fdAT); drops every other (eXIf, text, time, C2PA manifests, private
chunks) and anything after IEND, writing back, as for JPEG, an eXIf chunk with the orientation
alone (before the image data) when the original's said 2-8; checks every CRC. A structural
fault raises MalformedImage; the caller (`domain.applications.files`) turns it into
CorruptFile and decodes the result with Pillow.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers with a frame header (SOF0-SOF15 except DHT C4, JPG C8, DAC CC).
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Segments that code the image: SOFn, DHT, JPG, DAC, SOS, DQT, DNL, DRI, DHP, EXP. APP0, APP2 and
# APP14 are kept only in their plain form (below); every other marker with a length is dropped.
_JPEG_CODING = frozenset({*range(0xC0, 0xD0), *range(0xDA, 0xE0)})
_JFIF_ID = b"JFIF\x00"
_JFIF_HEADER = 14  # identifier, version, units, densities, thumbnail width and height
_ICC_ID = b"ICC_PROFILE\x00"
_ADOBE_ID = b"Adobe"
_ADOBE_HEADER = 12  # identifier, version, two flag words, colour transform
_EXIF_ID = b"Exif\x00\x00"
_PNG_KEEP = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"pHYs", b"bKGD", b"acTL", b"fcTL", b"fdAT",
})  # fmt: skip


def _orientation_tiff(orientation: int) -> bytes:
    """Exif data holding the orientation tag alone (big-endian TIFF, one IFD entry)."""
    tiff = b"MM\x00*" + struct.pack(">I", 8) + struct.pack(">H", 1)
    return tiff + struct.pack(">HHIH2x", 0x0112, 3, 1, orientation) + struct.pack(">I", 0)


def _orientation_segment(orientation: int) -> bytes:
    """An APP1 Exif segment holding the orientation tag alone."""
    payload = _EXIF_ID + _orientation_tiff(orientation)
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def _orientation_chunk(orientation: int) -> bytes:
    """A PNG eXIf chunk holding the orientation tag alone."""
    body = _orientation_tiff(orientation)
    crc = zlib.crc32(body, zlib.crc32(b"eXIf"))
    return struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", crc)


def _kept_jpeg_payload(marker: int, payload: bytes) -> bytes | None:
    """The payload of an APPn segment as it may stay, or None when it goes."""
    if marker == 0xE0 and payload.startswith(_JFIF_ID) and len(payload) >= _JFIF_HEADER:
        return payload[: _JFIF_HEADER - 2] + b"\x00\x00"  # without a thumbnail
    if marker == 0xE2 and payload.startswith(_ICC_ID):
        return payload
    if marker == 0xEE and payload.startswith(_ADOBE_ID) and len(payload) >= _ADOBE_HEADER:
        return payload[:_ADOBE_HEADER]
    return None


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
        if marker not in _JPEG_CODING:
            kept = _kept_jpeg_payload(marker, payload)
            if kept is None:
                removed.append(_segment_name(marker))
                if marker == 0xE1 and orientation is None and payload.startswith(_EXIF_ID):
                    orientation = _orientation(payload[len(_EXIF_ID) :])
            else:
                if len(kept) < len(payload):
                    removed.append(f"{_segment_name(marker)} extension")
                out += bytes((0xFF, marker)) + struct.pack(">H", len(kept) + 2) + kept
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
    if orientation is not None:  # right after SOI, or after a JFIF APP0, which must come first
        at = 2 + (2 + int.from_bytes(out[4:6], "big") if out[2:4] == b"\xff\xe0" else 0)
        out[at:at] = _orientation_segment(orientation)
    return Stripped(bytes(out), size[0], size[1], orientation, tuple(removed))


def _segment_name(marker: int) -> str:
    if marker == 0xFE:
        return "COM"
    return f"APP{marker - 0xE0}" if 0xE0 <= marker <= 0xEF else f"0x{marker:02X}"


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
    seen_idat = False
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
        if kind not in _PNG_KEEP:
            removed.append(kind.decode("ascii"))
            if kind == b"eXIf" and orientation is None and not seen_idat:
                orientation = _orientation(bytes(body))
        else:
            if kind == b"IDAT" and not seen_idat:
                seen_idat = True
                if orientation is not None:  # kept alone, before the image data, as JPEG's is
                    out += _orientation_chunk(orientation)
            out += view[pos:end]
        pos = end
        if kind == b"IEND":
            if pos < n:
                removed.append("trailing data")
            break
    if 0 in size:
        raise MalformedImage("PNG with zero width or height")
    return Stripped(bytes(out), size[0], size[1], orientation, tuple(removed))
