"""Sample files for the material checks: real JPEG/PNG made with Pillow, hand-made PDF and OFD."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib

from PIL import Image

from domain.applications.imagemeta import PNG_SIGNATURE

SECRETS = (b"YiwangTestCam", b"SECRETDATUM", b"SECRETXMP", b"SECRETIPTC", b"SECRETCOMMENT", b"SECRETTAIL")


def picture(mode: str = "RGB", size: tuple[int, int] = (67, 45)) -> Image.Image:
    rnd = random.Random(7)
    bands = len(mode)
    return Image.frombytes(mode, size, rnd.randbytes(size[0] * size[1] * bands))


def exif(orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "YiwangTestCam"  # Make
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 5.5), 3: "E", 4: (121.0, 28.0, 9.0), 0x12: "SECRETDATUM"}
    return exif.tobytes()


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def jpeg(image: Image.Image, *, extra: bytes = b"", trailing: bytes = b"", **save: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, **save)
    data = buf.getvalue()
    after_app0 = 2 + (2 + int.from_bytes(data[4:6], "big") if data[3] == 0xE0 else 0)
    return data[:after_app0] + extra + data[after_app0:] + trailing


def pixels(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def chunk_types(png: bytes) -> list[str]:
    types, pos = [], 8
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        types.append(kind.decode())
        pos += 12 + length
    return types


def pdf() -> bytes:
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return buf.getvalue()


def ofd() -> bytes:
    ofd_xml = (
        '<?xml version="1.0" encoding="UTF-8"?><ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016" '
        'Version="1.0" DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>a1</ofd:DocID></ofd:DocInfo>'
        "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    return zip({"OFD.xml": ofd_xml.encode(), "Doc_0/Document.xml": b"<ofd:Document/>"})


def png_bytes() -> bytes:
    buf = io.BytesIO()
    picture().save(buf, "PNG")
    return buf.getvalue()


def png_with_idat(width: int, height: int, idat: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
