"""A small real documents folder for the RAG tests: every supported kind, plus files that must be skipped."""

from __future__ import annotations

import json
from pathlib import Path

DOCS = {
    "vpn.txt": "The VPN client disconnects every few minutes on the office wifi.\n\nReinstall the VPN client and "
    "switch its protocol to IKEv2; the tunnel then stays up all day.",
    "notes/printer.md": "# Printer\n\nThe printer on floor two jams when the paper tray is overfilled. Take out half "
    "of the paper and restart it.",
    "faq.jsonl": [
        {"text": "To reset a forgotten password, open the self-service portal and follow the e-mail link."},
        {"text": "Shared mailboxes appear in Outlook after a restart of the mail client."},
    ],
    "kitchen.csv": [{"title": "bread", "text": "Bake the sourdough bread at 220 degrees for forty minutes."}],
}
PDF_TEXT = "The coffee machine in the kitchen needs descaling every month."


def text_pdf(text: str) -> bytes:
    """A minimal one-page PDF whose text layer holds `text` (built by hand: pypdf reads but does not typeset)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def blank_pdf() -> bytes:
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(612, 792)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def make_documents(root: Path, bad: bool = True) -> Path:
    """The good documents, and with `bad` one of each kind of file a build must skip (with its reason)."""
    for name, content in DOCS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".jsonl"):
            path.write_text("".join(json.dumps(r) + "\n" for r in content), encoding="utf-8")
        elif name.endswith(".csv"):
            path.write_text(
                "title,text\n" + "".join(f'{r["title"]},"{r["text"]}"\n' for r in content), encoding="utf-8"
            )
        else:
            path.write_text(content, encoding="utf-8")
    (root / "manual.pdf").write_bytes(text_pdf(PDF_TEXT))
    if bad:
        (root / "scan.pdf").write_bytes(blank_pdf())
        (root / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
        (root / "dump.txt").write_bytes(b"abc\x00\x01\x02 binary")
        (root / "latin1.txt").write_bytes("Caf\xe9 au lait, cr\xe8me br\xfbl\xe9e".encode("latin-1"))
        (root / "empty.md").write_text("", encoding="utf-8")
        (root / "huge.txt").write_text("lorem ipsum dolor " * 2000, encoding="utf-8")  # 36 KB > the tests' 0.02 MB
        (root / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a PDF")
        (root / "broken.jsonl").write_text('{"text": "fine"}\n{not json\n', encoding="utf-8")
    return root
