"""Documents for a search index: read a folder (recursively) or one file, and cut each text into chunks of at most
`max_tokens` tokens of the model's own tokenizer, breaking at paragraphs, then sentences, then words.

A file that cannot be used (binary, not UTF-8, empty, a PDF without a text layer, too large, an unknown type) is
skipped with its reason; reading never raises on bad content."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from core.data.validate import SUFFIXES, read_texts

TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".rst")
DOC_SUFFIXES = TEXT_SUFFIXES + SUFFIXES + (".pdf",)
MAX_FILE_MB = 50.0  # a larger file is skipped: one stray dump must not stall a build for an hour
SEGMENT_CHARS = 200_000  # texts are tokenized in pieces of about this many characters
SENTENCE_END = re.compile(r"[.!?。！？:;]['\")\]]*$")


@dataclass
class Document:
    source: str  # path relative to the documents root (the file name for a single file)
    text: str
    record: int | None = None  # 1-based row of a tabular file (distinct texts, in file order)


@dataclass
class Skipped:
    source: str
    reason: str


@dataclass
class Chunk:
    text: str
    source: str
    record: int | None
    start: int  # character offsets of the chunk in its document's text
    end: int
    hash: str
    doc_hash: str = ""  # of the whole document: an unchanged document's chunks are reused without re-tokenizing


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for p in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            continue  # .git, .DS_Store, editor swap files
        if p.is_file() or p.is_symlink():
            yield p


def _decode(path: Path) -> tuple[str | None, str | None]:
    """(text, None) or (None, reason): UTF-8 only (BOM optional), no NUL bytes, not blank."""
    data = path.read_bytes()
    if not data.strip():
        return None, "empty file"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, "UTF-16 text: save it as UTF-8"
    if b"\x00" in data[:65536]:
        return None, "binary content (NUL bytes): not a text file"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}): save it as UTF-8"


def _read_pdf(path: Path) -> tuple[str | None, str | None]:
    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable PDFs warn per object
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except Exception as exc:  # pypdf raises many kinds on damaged files; any of them only skips this file
        return None, f"unreadable PDF ({type(exc).__name__}: {str(exc)[:120]})"
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        return None, f"PDF without extractable text ({len(pages)} pages; a scan needs OCR first)"
    return text, None


def _read_file(path: Path, source: str) -> tuple[list[Document], str | None]:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text, reason = _read_pdf(path)
        return ([Document(source, text)] if text else []), reason
    if suffix in TEXT_SUFFIXES:
        text, reason = _decode(path)
        return ([Document(source, text)] if text else []), reason
    if suffix in (".csv", ".tsv", ".json", ".jsonl", ".ndjson"):
        text, reason = _decode(path)  # the table reader's own message for these is less specific
        if text is None:
            return [], reason
    try:
        texts = read_texts(path)
    except ValueError as exc:
        return [], str(exc).replace("cannot read corpus ", "").replace(f"{path}: ", "").replace(str(path), path.name)
    return [Document(source, t, i) for i, t in enumerate(texts, start=1)], None


def read_documents(path: str | Path, max_file_mb: float = MAX_FILE_MB) -> tuple[list[Document], list[Skipped]]:
    """Every usable document under `path` (a folder, read recursively, or one file) and the files skipped, each
    with its reason. Raises FileNotFoundError only when `path` itself does not exist."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"documents not found: {root}")
    docs: list[Document] = []
    skipped: list[Skipped] = []
    for f in _files(root):
        source = f.name if root.is_file() else f.relative_to(root).as_posix()
        if f.is_symlink() and not f.exists():
            skipped.append(Skipped(source, "broken symbolic link"))
            continue
        if f.suffix.lower() not in DOC_SUFFIXES:
            skipped.append(
                Skipped(
                    source, f"unsupported file type '{f.suffix or '(none)'}': supported are {', '.join(DOC_SUFFIXES)}"
                )
            )
            continue
        size_mb = f.stat().st_size / 1e6
        if size_mb > max_file_mb:
            skipped.append(Skipped(source, f"too large ({size_mb:.3g} MB > {max_file_mb:g} MB limit)"))
            continue
        try:
            found, reason = _read_file(f, source)
        except OSError as exc:
            found, reason = [], f"unreadable ({exc.strerror or exc})"
        except Exception as exc:  # a reader library's error on odd content skips the file, never the build
            found, reason = [], f"unreadable ({type(exc).__name__}: {str(exc)[:160]})"
        if reason:
            skipped.append(Skipped(source, reason))
        docs.extend(found)
    return docs, skipped


# ---------------------------------------------------------------- chunking


def _break_rank(text: str, prev_end: int, start: int, prev_token: str) -> int:
    """How good a chunk boundary lies before a token: 3 paragraph, 2 sentence, 1 word, 0 inside a word."""
    gap = text[prev_end:start]
    if not gap:
        return 0
    if gap.count("\n") >= 2 or re.search(r"\n\s*\n", gap):
        return 3
    if SENTENCE_END.search(prev_token) or "\n" in gap:
        return 2
    return 1


def _segments(text: str, size: int) -> list[tuple[int, int]]:
    """Spans of at most ~`size` characters, cut at a paragraph (else a line, else a space) break."""
    out, start = [], 0
    while len(text) - start > size:
        cut = max(text.rfind(sep, start + size // 2, start + size) for sep in ("\n\n", "\n", " "))
        cut = cut if cut > start else start + size
        out.append((start, cut))
        start = cut
    return out + [(start, len(text))]


def chunk_spans(text: str, tokenizer, max_tokens: int, overlap: int = 0) -> list[tuple[int, int]]:
    """Character spans of chunks of `text`, each at most `max_tokens` tokens (special tokens excluded), consecutive
    chunks sharing about `overlap` tokens. Ends are placed at the best boundary in the last half of a window. A long
    text is tokenized in paragraph-aligned segments: one 50 MB file would otherwise hold ~10M offsets in memory."""
    if max_tokens < 1:
        raise ValueError(f"chunk size must be at least 1 token, got {max_tokens}")
    if len(text) > SEGMENT_CHARS:
        return [
            (s + a, s + b)
            for s, e in _segments(text, SEGMENT_CHARS)
            for a, b in _segment_spans(text[s:e], tokenizer, max_tokens, overlap)
        ]
    return _segment_spans(text, tokenizer, max_tokens, overlap)


def _segment_spans(text: str, tokenizer, max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    overlap = max(0, min(overlap, max_tokens // 2))
    # Documents are longer than the model reads by design: its one-off "sequence too long" warning does not apply.
    getattr(tokenizer, "deprecation_warnings", {})["sequence-length-is-longer-than-the-specified-maximum"] = True
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    n = len(offsets)
    if n == 0:
        return []
    rank = [3] + [
        _break_rank(text, offsets[j - 1][1], offsets[j][0], text[offsets[j - 1][0] : offsets[j - 1][1]])
        for j in range(1, n)
    ]
    spans, i = [], 0
    while i < n:
        if n - i <= max_tokens:
            j = n
        else:
            window = range(i + max_tokens, i + max(1, max_tokens // 2), -1)  # token j starts the next chunk
            j = max(window, key=lambda t: (rank[t], t))
        spans.append((offsets[i][0], offsets[j - 1][1]))
        if j >= n:
            break
        nxt = max(i + 1, j - overlap)
        # An overlap starts at a word (or better) boundary, never inside a word.
        while nxt < j and rank[nxt] == 0:
            nxt += 1
        i = nxt
    return spans


def chunk_documents(
    docs: list[Document], tokenizer, max_tokens: int, overlap: int = 0, known: dict[tuple, list[Chunk]] | None = None
) -> list[Chunk]:
    """Chunks of every document; `known` maps (source, record, doc_hash) to the chunks of a previous build made with
    the same tokenizer and settings, reused as they are."""
    chunks = []
    for d in docs:
        doc_hash = content_hash(d.text)
        reuse = (known or {}).get((d.source, d.record, doc_hash))
        if reuse is not None:
            chunks.extend(reuse)
            continue
        for s, e in chunk_spans(d.text, tokenizer, max_tokens, overlap):
            piece = d.text[s:e].strip()
            if piece:
                chunks.append(Chunk(piece, d.source, d.record, s, e, content_hash(piece), doc_hash))
    return chunks


# ---------------------------------------------------------------- uploaded archives

MAX_ZIP_MEMBERS = 5000
MAX_ZIP_MB = 500.0


def safe_extract_zip(
    archive: str | Path, dest: str | Path, max_members: int = MAX_ZIP_MEMBERS, max_mb: float = MAX_ZIP_MB
) -> list[Path]:
    """Extract a zip of documents into `dest`, refusing (ValueError, nothing written) absolute or `..` member paths,
    symbolic links, more than `max_members` members or more than `max_mb` uncompressed; sizes are counted on the
    bytes actually written too, so a lying header cannot overrun the cap (what was written is then removed)."""
    import stat
    import zipfile

    dest = Path(dest).resolve()
    name = Path(archive).name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{name} is not a readable zip file ({exc})") from None
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > max_members:
            raise ValueError(f"{name} has {len(members)} files; at most {max_members} are accepted")
        for m in members:
            parts = Path(m.filename.replace("\\", "/")).parts
            if m.filename.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", m.filename) or ".." in parts:
                raise ValueError(f"{name} refused: member '{m.filename}' points outside the archive's folder")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise ValueError(f"{name} refused: member '{m.filename}' is a symbolic link")
        if sum(m.file_size for m in members) > max_mb * 1e6:
            raise ValueError(f"{name} unpacks to more than {max_mb:g} MB")
        written: list[Path] = []
        try:
            _write_members(zf, members, dest, name, max_mb, written)
        except BaseException:
            for f in written:
                f.unlink(missing_ok=True)
            raise
    return written


def _write_members(zf, members, dest: Path, name: str, max_mb: float, written: list[Path]) -> None:
    total = 0
    for m in members:
        target = (dest / m.filename).resolve()
        if not target.is_relative_to(dest):
            raise ValueError(f"{name} refused: member '{m.filename}' points outside the archive's folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        written.append(target)
        with zf.open(m) as src, open(target, "wb") as out:
            while block := src.read(1 << 20):
                total += len(block)
                if total > max_mb * 1e6:
                    raise ValueError(f"{name} unpacks to more than {max_mb:g} MB")
                out.write(block)


__all__ = [
    "Chunk",
    "Document",
    "Skipped",
    "chunk_documents",
    "chunk_spans",
    "content_hash",
    "read_documents",
    "safe_extract_zip",
]
