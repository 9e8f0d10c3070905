"""Certificate files as the library serves them: a one-page PDF and an OFD package (GB/T 33190).

Small but well formed: the PDF has a correct cross-reference table (its text is the
certificate's identifier, type code, number and dates, in ASCII, as PDF's standard fonts carry
no Chinese); the OFD is the zip container with OFD.xml, Document.xml and one page whose text
objects carry the Chinese fields.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.sax.saxutils import escape


def _pdf_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def pdf_bytes(cert: Any) -> bytes:
    lines = [
        f"E-certificate {cert.type_code}",
        f"Identifier: {cert.identifier}",
        f"Number: {cert.number}",
        f"Issued: {cert.issued_on.isoformat()}",
        f"Valid until: {cert.valid_until or '-'}",
        f"State: {cert.state}",
    ]
    text = "BT /F1 11 Tf 40 780 Td 14 TL " + " ".join(f"({_pdf_text(s)}) '" for s in lines) + " ET"
    stream = text.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",  # noqa: E501
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def ofd_bytes(cert: Any) -> bytes:
    fields = [
        cert.type_name,
        f"持证人：{cert.holder_name}",
        f"证照编号：{cert.number}",
        f"发证机关：{cert.issuer}",
        f"签发日期：{cert.issued_on.isoformat()}",
        f"有效期至：{cert.valid_until or '长期'}",
        f"证照标识：{cert.identifier}",
    ]
    texts = "".join(
        f'<ofd:TextObject ID="{10 + i}" Boundary="10 {20 + i * 12} 190 10" Font="2" Size="4">'
        f'<ofd:TextCode X="0" Y="4">{escape(s)}</ofd:TextCode></ofd:TextObject>'
        for i, s in enumerate(fields)
    )
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    files = {
        "OFD.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:OFD {ns} Version="1.0" DocType="OFD"><ofd:DocBody>'  # noqa: E501
        f"<ofd:DocInfo><ofd:DocID>{escape(cert.identifier)}</ofd:DocID><ofd:Title>{escape(cert.type_name)}</ofd:Title>"
        "</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        "Doc_0/Document.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:Document {ns}><ofd:CommonData>'
        "<ofd:MaxUnitID>30</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 210 140</ofd:PhysicalBox></ofd:PageArea>"  # noqa: E501
        '</ofd:CommonData><ofd:Pages><ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/></ofd:Pages></ofd:Document>',  # noqa: E501
        "Doc_0/Pages/Page_0/Content.xml": f'<?xml version="1.0" encoding="UTF-8"?><ofd:Page {ns}><ofd:Content>'  # noqa: E501
        f'<ofd:Layer ID="3">{texts}</ofd:Layer></ofd:Content></ofd:Page>',
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content.encode("utf-8"))
    return out.getvalue()
