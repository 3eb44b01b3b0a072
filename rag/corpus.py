"""Files -> Papers. Reads scraped paper listings and plain text/Markdown documents here, PDF and
BibTeX through rag/pdf.py and rag/readers.py, a Zotero library through rag/zotero.py; the format is told
from the content first, the file name second.

Listings come in two shapes (see seeds/): "title, author lines, abstract" records one line each, and
blank-line separated "title / abstract" pairs under some page chrome. One small state machine reads
both, because a line's role follows from what it looks like and what came before it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from rag import pdf, readers, zotero
from rag.pdf_cache import PdfCache
from rag.errors import InputError
from rag.papers import clean_text, looks_like_author, merge_papers, paper_id_for
from rag.types import Block, Paper

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
PAPER_SUFFIXES = TEXT_SUFFIXES | {".pdf", ".bib", ".bibtex"}  # what a folder walk picks up
MAX_FILE_BYTES = 64 * 1024 * 1024  # bigger inputs are skipped: no paper is that big, a data dump is

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec"
_CHROME = [
    re.compile(r"^(new|subscribe|trending|home|log ?in|sign ?in|sign ?up|share|upvote|see more)$", re.I),
    re.compile(r"^get trending papers\b", re.I),
    re.compile(r"\bemail inbox\b", re.I),
    re.compile(r"^by\S* and the research community$", re.I),
    re.compile(rf"^({_MONTHS})[a-z]*\.? \d{{1,2}}(, ?\d{{4}})?$", re.I),
    re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    re.compile(r"^[\d\s.,k+·•|-]*$"),  # vote counts, separators
]
ABSTRACT_MIN_CHARS = 160


def is_chrome(line: str) -> bool:
    return any(p.search(line) for p in _CHROME)


def looks_like_abstract(line: str) -> bool:
    # A scraped abstract may be cut short; the trailing ellipsis still marks it as body text.
    return len(line) >= ABSTRACT_MIN_CHARS or "(see more)" in line or line.endswith(("…", "..."))


@dataclass
class _Draft:
    title: str
    authors: list[str]
    abstract: str = ""


def parse_listing(text: str, source: str) -> list[Paper]:
    """Parse a scraped listing into papers, merging repeats of the same title."""
    drafts: list[_Draft] = []
    current: _Draft | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or is_chrome(line):
            continue
        if looks_like_abstract(line):
            body = clean_text(line)
            if current is None:
                continue  # text before any title cannot be attributed to a paper
            current.abstract = f"{current.abstract} {body}".strip() if current.abstract else body
        elif current is not None and not current.abstract and looks_like_author(line):
            current.authors.append(clean_text(line))
        else:
            current = _Draft(title=clean_text(line), authors=[])
            drafts.append(current)
    return merge_papers(_to_paper(d, source) for d in drafts)


def _to_paper(draft: _Draft, source: str) -> Paper:
    return Paper(
        paper_id=paper_id_for(draft.title),
        title=draft.title,
        authors=tuple(draft.authors),
        abstract=draft.abstract,
        source=source,
    )


def parse_document(text: str, source: str) -> Paper:
    """A plain text or Markdown file is one paper: title from the first heading or line."""
    lines = [l.strip() for l in text.splitlines()]
    lines = [l for l in lines if l]
    if not lines:
        raise InputError(f"{source}: the file is empty")
    headings = [l for l in lines if l.startswith("#")]
    title_line = headings[0] if headings else lines[0]
    title = clean_text(title_line.lstrip("#").strip()) or Path(source).stem
    rest = list(lines)
    rest.remove(title_line)
    body = clean_text(" ".join(l.lstrip("#").strip() for l in rest))
    blocks = document_blocks(text, title_line)
    return Paper(paper_id=paper_id_for(title), title=title, authors=(), abstract=body, source=source, blocks=blocks, kind="note")


def document_blocks(text: str, title_line: str) -> tuple[Block, ...]:
    """Paragraphs under their headings, so a long document is chunked along its sections. A short
    one-paragraph note gets no blocks and is chunked like an abstract, as before."""
    blocks: list[Block] = []
    section, para = "", []

    def close() -> None:
        joined = clean_text(" ".join(para))
        if joined:
            blocks.append(Block(joined, None, section))
        para.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if not line or line == title_line:
            close()
        elif re.match(r"#{1,6}\s", line):
            close()
            section = clean_text(line.lstrip("#"))
        else:
            para.append(line)
    close()
    return tuple(blocks) if len(blocks) > 1 else ()


def looks_like_listing(text: str) -> bool:
    """A listing has many title-then-abstract pairs; a document has paragraphs after paragraphs."""
    lines = [l.strip() for l in text.splitlines() if l.strip() and not is_chrome(l.strip())]
    if "(see more)" in text:
        return True
    long_idx = [i for i, l in enumerate(lines) if looks_like_abstract(l)]
    if len(long_idx) < 2:
        return False
    after_short = sum(1 for i in long_idx if i > 0 and not looks_like_abstract(lines[i - 1]))
    return after_short / len(long_idx) >= 0.8


def decode_text(data: bytes, source: str) -> str:
    """UTF-8, else Windows-1252 (what most non-UTF-8 papers and notes are), else Latin-1, which
    decodes any bytes; control characters then tell a binary file from text."""
    if b"\x00" in data[:8192]:
        raise InputError(f"{source}: not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    controls = sum(1 for c in text[:8192] if ord(c) < 32 and c not in "\n\r\t\f")
    if controls > len(text[:8192]) * 0.05:
        raise InputError(f"{source}: not a text file")
    return text


@dataclass(frozen=True)
class SourceFile:
    """A file read for ingest: its hash lets re-ingest skip it when nothing changed."""

    path: str
    file_hash: str
    papers: tuple[Paper, ...]
    problems: tuple[str, ...] = ()  # parts of the file that were skipped (a broken BibTeX entry)
    # Read whole, but something was guessed (a PDF titled from its file name): warned about like a
    # problem, yet unlike one it does not keep the papers the file held before (ingest.Seen.read_whole).
    warnings: tuple[str, ...] = ()
    attachments: tuple[tuple[str, str], ...] = ()  # (PDF path, title of the BibTeX entry that attaches it)
    pages: int = 0  # a PDF's pages


@dataclass(frozen=True)
class Skipped:
    """An input not read, or read only in part, and why: one warning line each."""

    path: str
    reason: str
    whole_file: bool = True  # False: the file was read, one part of it was not

    def line(self) -> str:
        return f"{self.path}: {self.reason}" + ("; file skipped" if self.whole_file else "")


@dataclass
class Batch:
    files: list[SourceFile]
    skipped: list[Skipped]


def file_hash(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:16]


def read_file(path: Path, cache: PdfCache | None = None) -> SourceFile:
    """One file -> its papers; an `InputError` naming the file if it cannot be read at all. A PDF
    whose bytes `cache` has seen is not parsed again."""

    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO hung the ingest and /dev/zero filled memory: only regular files are read.
            raise InputError(f"{path}: not a regular file (only files and folders of papers are read)")
        if info.st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: file too large ({info.st_size / 2**20:.0f} MB, limit {MAX_FILE_BYTES / 2**20:.0f} MB)")
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # a file growing while read stops at the limit
        if len(data) > MAX_FILE_BYTES:
            raise InputError(f"{path}: file too large (limit {MAX_FILE_BYTES / 2**20:.0f} MB)")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc.__class__.__name__})") from None
    source = str(path.resolve())
    if not data.strip():
        raise InputError(f"{path}: the file is empty")
    kind = readers.detect_format(data, path.suffix.lower())
    if kind == "gzip":  # corpus.jsonl.gz: read as what it holds
        data = _gunzip(data, path)
        kind = readers.detect_format(data, Path(path.stem).suffix.lower())
    if kind == "pdf":
        digest = file_hash(data)
        read = cache.get(digest, str(path), source) if cache else None
        if read is None:
            read = pdf.read_pdf(data, source, str(path))
            if cache:
                cache.put(digest, str(path), read)
        return SourceFile(path=source, file_hash=digest, papers=(read.paper,), warnings=read.warnings, pages=read.pages)
    text = decode_text(data, str(path))
    if not text.strip():
        raise InputError(f"{path}: the file is empty")
    if kind in ("bibtex", "jsonl", "jsonlist", "csv"):
        read = {"bibtex": readers.read_bibtex, "jsonl": readers.read_jsonl, "jsonlist": readers.read_json_list, "csv": readers.read_csv}[kind]
        return _records(source, file_hash(data), read(text, source, str(path)))
    markdown = path.suffix.lower() in {".md", ".markdown"} or re.search(r"(?m)^#{1,6}\s", text)
    if not markdown and looks_like_listing(text):
        papers = parse_listing(text, source)
    else:
        papers = [parse_document(text, source)]
    return SourceFile(path=source, file_hash=file_hash(data), papers=tuple(papers))


def _records(source: str, digest: str, bib: readers.BibResult) -> SourceFile:
    """A file of bibliographic records (BibTeX, JSON lines, a Zotero library) with the PDFs they attach."""
    return SourceFile(source, digest, tuple(merge_papers(bib.papers)), tuple(bib.problems), tuple(bib.warnings), tuple(bib.attachments.items()))


def read_zotero(folder: Path) -> SourceFile:
    """A Zotero library (`folder/zotero.sqlite`, read-only) as one source file, read like a .bib
    export: its items, and the PDFs they attach from storage/. Its hash is that of what was read,
    so Zotero's own bookkeeping writes do not count as a change."""
    db = zotero.library_file(folder)
    source = str(db.resolve())
    lib = zotero.read_library(db, source)
    return _records(source, file_hash(repr((lib.papers, sorted(lib.attachments.items()))).encode()), lib)


def _gunzip(data: bytes, path: Path) -> bytes:
    """The file's content, held to the same size limit as any file."""
    import gzip
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: a damaged gzip file ({exc.__class__.__name__})") from None
    if len(out) > MAX_FILE_BYTES:
        raise InputError(f"{path}: file too large once unpacked (limit {MAX_FILE_BYTES / 2**20:.0f} MB)")
    return out


def discover(paths: list[Path]) -> list[Path]:
    """Expand folders recursively; a path that does not exist is an input error before any work."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PAPER_SUFFIXES))
        else:
            files.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in files))
    return unique


def load(paths: list[Path]) -> list[SourceFile]:
    """Strict: the first file that cannot be read is an error (for library callers that want that)."""
    return [read_file(p) for p in discover(paths)]


def load_batch(paths: list[Path], cache: PdfCache | None = None, zotero_dir: Path | None = None) -> Batch:
    """Every readable file; each bad one is skipped with its reason instead of failing the batch.
    A path that does not exist is still an error, before anything is read, and so is a Zotero
    library (`zotero_dir`) that cannot be read: it was asked for by name."""
    batch = Batch([], [])
    found = discover(paths)
    if zotero_dir is not None:
        batch.files.append(read_zotero(zotero_dir))
    for path in found:
        _read_into(batch, path, cache)
    # A PDF a BibTeX entry (or a Zotero item) attaches is read even when only the .bib was given,
    # and becomes that entry's paper: its title is the entry's, so the two merge into one paper.
    attached = dict(pair for f in batch.files for pair in f.attachments)
    for path in sorted(set(attached) - {str(p) for p in found}):
        _read_into(batch, Path(path), cache)
    batch.files = [_titled(f, attached[f.path]) if f.path in attached else f for f in batch.files]
    for f in batch.files:
        batch.skipped.extend(Skipped(f.path, p, whole_file=False) for p in f.problems + f.warnings)
    return batch


def _read_into(batch: Batch, path: Path, cache: PdfCache | None) -> None:
    try:
        f = read_file(path, cache)
    except InputError as exc:
        reason = str(exc)
        prefix = f"{path}: "
        batch.skipped.append(Skipped(str(path), reason[len(prefix):] if reason.startswith(prefix) else reason))
        return
    batch.files.append(f)


def _titled(f: SourceFile, title: str) -> SourceFile:
    """The attached PDF's paper under its entry's title (the PDF's own guess at it is dropped)."""
    papers = tuple(dataclasses.replace(p, title=title, paper_id=paper_id_for(title)) for p in f.papers if p.kind == "pdf")
    if not papers:
        return f
    return dataclasses.replace(f, papers=papers, warnings=tuple(w for w in f.warnings if not w.startswith(pdf.NO_TITLE)))


def corpus_titles(path: Path) -> dict[str, str]:
    """A JSON-lines corpus's ids and titles (plain or .gz), as ingest stores the titles."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the corpus ({exc.strerror or exc.__class__.__name__})") from None
    if readers.detect_format(data, path.suffix.lower()) == "gzip":
        data = _gunzip(data, path)
    titles = readers.jsonl_titles(decode_text(data, str(path)))
    if not titles:
        raise InputError(f"{path}: no JSON lines with an `_id` and a `title`; the claims' papers cannot be named")
    return titles
