"""domain.applications.files: real files made with Pillow, hand-made PDF/OFD, and files that lie."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib

import pytest
from PIL import Image, ImageCms, ImageOps
from PIL.PngImagePlugin import PngInfo

from core.errors import AppError
from domain.applications import files
from domain.applications.files import (
    OFD,
    PDF,
    PNG,
    CorruptFile,
    EmptyFile,
    TooManyPixels,
    UnsupportedType,
    inspect,
    sniff,
)
from tests.domain.applications import samples

# --- JPEG ---------------------------------------------------------------------------------------


def test_jpeg_loses_exif_gps_and_other_metadata_but_keeps_pixels_and_icc_profile():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    extra = (
        samples.segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SECRETXMP</x:xmpmeta>")
        + samples.segment(0xED, b"Photoshop 3.0\x008BIM\x04\x04SECRETIPTC")
        + samples.segment(0xE2, b"FPXR\x00flashpix")
        + samples.segment(0xEF, b"vendor")
        + samples.segment(0xFE, b"SECRETCOMMENT")
    )
    original = samples.jpeg(
        samples.picture(), extra=extra, trailing=b"SECRETTAIL", exif=samples.exif(6), icc_profile=icc
    )
    assert all(secret in original for secret in samples.SECRETS)

    result = inspect(original)

    assert result.media_type == files.JPEG
    assert (result.width, result.height) == (67, 45)
    assert result.orientation == 6
    for secret in (*samples.SECRETS, b"FPXR"):
        assert secret not in result.cleaned
    assert {"APP1", "APP2", "APP13", "APP15", "COM", "trailing data"} <= set(result.removed)
    assert samples.pixels(result.cleaned) == samples.pixels(original)
    with Image.open(io.BytesIO(result.cleaned)) as cleaned:
        assert cleaned.info.get("icc_profile") == icc
        assert b"JFIF" in result.cleaned
        # Of Exif only the orientation stays: the portrait photo is shown upright.
        assert dict(cleaned.getexif()) == {0x0112: 6}
        assert ImageOps.exif_transpose(cleaned).size == (45, 67)
    assert result.size == len(result.cleaned) < len(original)
    assert result.sha256 == hashlib.sha256(result.cleaned).hexdigest()


@pytest.mark.parametrize(
    ("mode", "save"),
    [
        ("RGB", {"progressive": True}),
        ("RGB", {"restart_marker_blocks": 4}),
        ("L", {}),
        ("CMYK", {}),  # libjpeg writes an Adobe APP14 segment, which must stay
    ],
)
def test_jpeg_variants_decode_to_the_same_pixels(mode, save):
    original = samples.jpeg(samples.picture(mode), exif=samples.exif(1), **save)
    result = inspect(original)
    assert result.orientation is None  # orientation 1 needs no note
    assert b"YiwangTestCam" not in result.cleaned
    assert samples.pixels(result.cleaned) == samples.pixels(original)
    if mode == "CMYK":
        assert b"Adobe" in result.cleaned


def test_jpeg_metadata_in_segments_nobody_listed_goes_too():
    """An allow-list: a JFIF thumbnail (it may show the uncropped original), a JFXX extension,
    text after Adobe's header, an APP14 of another vendor, a JPEG extension marker."""
    jfif = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x02\x01" + b"\x80SECRETTHUMB"  # a 2x1 thumbnail
    extra = (
        samples.segment(0xE0, b"JFXX\x00\x13SECRETJFXX")
        + samples.segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01SECRETADOBE")
        + samples.segment(0xEE, b"VendorSECRETVENDOR")
        + samples.segment(0xF1, b"SECRETEXT")
    )
    plain = samples.jpeg(samples.picture(), extra=extra)
    original = plain[:2] + samples.segment(0xE0, jfif) + plain[4 + int.from_bytes(plain[4:6], "big") :]

    result = inspect(original)

    for secret in (b"SECRETTHUMB", b"SECRETJFXX", b"SECRETADOBE", b"SECRETVENDOR", b"SECRETEXT"):
        assert secret not in result.cleaned, secret
    assert b"JFIF\x00" in result.cleaned and b"Adobe\x00\x64" in result.cleaned
    assert samples.pixels(result.cleaned) == samples.pixels(samples.jpeg(samples.picture()))


def test_jpeg_without_metadata_is_unchanged():
    original = samples.jpeg(samples.picture())
    result = inspect(original)
    assert result.cleaned == original and result.removed == () and result.orientation is None


# --- PNG ----------------------------------------------------------------------------------------


def test_png_loses_text_exif_and_time_chunks_and_keeps_exact_pixels():
    info = PngInfo()
    info.add_text("Author", "SECRETAUTHOR")
    info.add_text("Comment", "SECRETZIPPED " * 20, zip=True)
    info.add_itxt("Description", "秘密 SECRETITXT", lang="zh")
    buf = io.BytesIO()
    samples.picture("RGBA").save(buf, "PNG", pnginfo=info, exif=samples.exif(8), dpi=(300, 300))
    plain = buf.getvalue()
    time_chunk = samples.png_chunk(b"tIME", struct.pack(">HBBBBB", 2026, 1, 2, 3, 4, 5))
    original = plain[:33] + time_chunk + plain[33:] + b"SECRETTAIL"
    assert {"tEXt", "zTXt", "iTXt", "eXIf", "tIME"} <= set(
        samples.chunk_types(original[: -len(b"SECRETTAIL")])
    )

    result = inspect(original)

    assert result.media_type == PNG
    assert (result.width, result.height, result.orientation) == (67, 45, 8)
    # Of Exif only the orientation stays, before the image data: the photo is shown turned right.
    assert set(samples.chunk_types(result.cleaned)) == {"IHDR", "pHYs", "eXIf", "IDAT", "IEND"}
    types = samples.chunk_types(result.cleaned)
    assert types.index("eXIf") < types.index("IDAT")
    with Image.open(io.BytesIO(result.cleaned)) as stored:
        assert dict(stored.getexif()) == {0x0112: 8}
    for secret in (*samples.SECRETS, b"SECRETAUTHOR", b"SECRETITXT"):
        assert secret not in result.cleaned
    assert samples.pixels(result.cleaned) == samples.pixels(original)
    assert samples.pixels(result.cleaned)[2] == samples.picture("RGBA").tobytes()  # lossless, exact
    assert result.sha256 == hashlib.sha256(result.cleaned).hexdigest()


def test_png_chunks_nobody_listed_go_too():
    """C2PA manifests (caBX), legacy Exif (zxIf) and private chunks may carry the device and the
    place: only the chunks that draw the image stay."""
    plain = samples.png_bytes()
    extra = b"".join(
        samples.png_chunk(kind, b"SECRET " + kind) for kind in (b"caBX", b"zxIf", b"prVt", b"vpAg", b"meTa")
    )
    original = plain[:33] + extra + plain[33:]

    result = inspect(original)

    assert b"SECRET" not in result.cleaned
    assert {"caBX", "zxIf", "prVt", "vpAg", "meTa"} <= set(result.removed)
    assert samples.pixels(result.cleaned) == samples.pixels(original)


def test_palette_png_keeps_palette_and_transparency():
    image = samples.picture("L").convert("P")
    buf = io.BytesIO()
    image.save(buf, "PNG", transparency=0)
    result = inspect(buf.getvalue())
    assert {"PLTE", "tRNS"} <= set(samples.chunk_types(result.cleaned))
    assert samples.pixels(result.cleaned) == samples.pixels(buf.getvalue())


# --- PDF and OFD --------------------------------------------------------------------------------


def test_pdf_is_accepted_unchanged_and_sniffed_without_names():
    pdf = samples.pdf()
    assert sniff(pdf) == PDF  # a PDF "renamed .jpg" is still a PDF: there is no name to trust
    result = inspect(pdf)
    assert (result.media_type, result.cleaned, result.width, result.height) == (PDF, pdf, None, None)


def test_pdf_rules_are_strict():
    assert sniff(b"junk\n" + samples.pdf()) is None  # %PDF- only at offset 0
    with pytest.raises(UnsupportedType):
        inspect(b"junk\n" + samples.pdf())
    with pytest.raises(CorruptFile):
        inspect(samples.pdf()[:-7])  # cut before %%EOF
    with pytest.raises(CorruptFile):
        inspect(samples.pdf() + b"\n" * 2000)  # %%EOF not within the last 1024 bytes


def test_ofd_is_accepted_unchanged():
    ofd = samples.ofd()
    assert sniff(ofd) == OFD
    assert inspect(ofd).cleaned == ofd


@pytest.mark.parametrize(
    "entries", [{"word/document.xml": b"<w/>"}, {"Doc_0/OFD.xml": b"<x/>"}], ids=["docx", "nested"]
)
def test_zip_without_ofd_xml_at_root_is_unsupported(entries):
    data = samples.zip(entries)
    assert sniff(data) is None
    with pytest.raises(UnsupportedType):
        inspect(data)


def test_zip_magic_with_garbage_is_corrupt():
    data = b"PK\x03\x04" + b"not really a zip" * 20
    assert sniff(data) is None
    with pytest.raises(CorruptFile):
        inspect(data)


def test_zip_claiming_a_newer_format_version_is_corrupt():
    """An entry that says it needs ZIP version 25.5 to extract: Python's zipfile refuses it with
    NotImplementedError, which must come out as a refused file, not a server error."""
    data = bytearray(samples.zip({"OFD.xml": b"<ofd:OFD/>"}))
    entry = data.find(b"PK\x01\x02")
    data[entry + 6] = 0xFF  # the central directory's "version needed to extract"
    with pytest.raises(CorruptFile):
        inspect(bytes(data))
    assert sniff(bytes(data)) is None


def test_ofd_zip_bomb_is_never_decompressed():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("OFD.xml", b"<ofd:OFD/>")
        with archive.open("Doc_0/bomb.bin", "w") as entry:
            block = bytes(1 << 20)
            for _ in range(64):
                entry.write(block)
    data = buf.getvalue()
    assert len(data) < 200_000
    assert inspect(data).media_type == OFD


# --- files that lie, are empty, broken or too big -----------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"hello, this is text\n", b"<html><body>hi</body></html>", b"GIF89a\x01\x00", b"\x00" * 64],
    ids=["text", "html", "gif", "zeros"],
)
def test_other_content_is_unsupported(data):
    assert sniff(data) is None
    with pytest.raises(UnsupportedType) as caught:
        inspect(data)
    assert caught.value.code == "file.unsupported_type"


def test_empty_file():
    with pytest.raises(EmptyFile):
        inspect(b"")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + b"this is not a jpeg" * 50,
        samples.jpeg(samples.picture())[:400],
        samples.jpeg(samples.picture())[:-2],  # no EOI
    ],
    ids=["garbage", "truncated", "no-eoi"],
)
def test_broken_jpeg_is_corrupt(data):
    assert sniff(data) == files.JPEG
    with pytest.raises(CorruptFile):
        inspect(data)


def test_broken_png_is_corrupt():
    good = samples.png_bytes()
    bad_crc = bytearray(good)
    bad_crc[45] ^= 0xFF  # inside the first IDAT's data
    short_idat = samples.png_with_idat(500, 500, zlib.compress(bytes(1000)))
    for data in (good[: len(good) // 2], bytes(bad_crc), short_idat, good[:8] + good[33:]):
        with pytest.raises(CorruptFile):
            inspect(data)


def test_decompression_bomb_is_refused_from_the_header(monkeypatch):
    opened = []
    monkeypatch.setattr("PIL.Image.open", lambda *a, **k: opened.append(a))
    png_bomb = samples.png_with_idat(50_000, 50_000, zlib.compress(b"\x00" * 1000))
    sof = samples.segment(0xC0, struct.pack(">BHHB", 8, 60_000, 60_000, 1) + b"\x01\x11\x00")
    jpeg_bomb = (
        b"\xff\xd8" + sof + samples.segment(0xDA, b"\x01\x01\x00\x00\x3f\x00") + b"\x00" * 16 + b"\xff\xd9"
    )
    for bomb in (png_bomb, jpeg_bomb):
        for limit in (40_000_000, 10**12):  # above Pillow's own limit, Pillow's limit applies
            with pytest.raises(TooManyPixels):
                inspect(bomb, max_pixels=limit)
    assert opened == []  # refused before Pillow saw it: no pixel memory


def test_max_pixels_applies_to_real_images():
    with pytest.raises(TooManyPixels):
        inspect(samples.png_bytes(), max_pixels=67 * 45 - 1)
    assert inspect(samples.png_bytes(), max_pixels=67 * 45).width == 67


def test_errors_have_stable_codes_and_both_languages():
    expected = {
        EmptyFile: "file.empty",
        UnsupportedType: "file.unsupported_type",
        CorruptFile: "file.corrupt",
        TooManyPixels: "file.too_many_pixels",
    }
    for cls, code in expected.items():
        error = cls("detail for logs")
        assert isinstance(error, files.FileRejected) and not isinstance(error, AppError)
        assert error.code == code and error.detail == "detail for logs"
        assert error.message_zh and error.message_en and error.message_zh != error.message_en
    assert UnsupportedType.message_zh == "文件内容不是 JPG、PNG、PDF 或 OFD 格式"
    assert not issubclass(TooManyPixels, CorruptFile)


def test_a_png_without_orientation_gets_no_exif_chunk():
    buf = io.BytesIO()
    samples.picture("RGB").save(buf, "PNG", exif=samples.exif(1))
    result = inspect(buf.getvalue())
    assert result.orientation is None and "eXIf" not in samples.chunk_types(result.cleaned)
