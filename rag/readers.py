"""PDF and BibTeX files -> Papers, and telling formats apart by content.

Kept apart from corpus.py (the text listings) because each leans on its own library (pypdf,
bibtexparser) and has its own ways to fail: a PDF can be corrupt or a scan with no text layer, a
.bib file can hold one broken entry among good ones. Failures are `InputError`s naming the file,
so a batch can skip that file with one warning line and go on.
"""

from __future__ import annotations

import contextlib
import io
import logging
import json
import re
from dataclasses import dataclass

from rag.errors import InputError
from rag.papers import clean_text, looks_like_author, paper_id_for
from rag.types import Block, Paper

PDF_MAGIC = b"%PDF-"
GZIP_MAGIC = b"\x1f\x8b"
_BIB_ENTRY = re.compile(r"(?m)^\s*@\s*[A-Za-z]+\s*[{(]")
_HEADING = re.compile(r"^(?:(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+)?([A-Z][A-Za-z][A-Za-z \-&:,]{1,60})$")
_KNOWN_SECTIONS = {
    "abstract", "introduction", "background", "related work", "method", "methods", "methodology", "approach",
    "experiments", "experimental setup", "results", "evaluation", "discussion", "conclusion", "conclusions",
    "limitations", "future work", "acknowledgements", "acknowledgments", "appendix", "references", "bibliography",
}
_END_SECTIONS = {"references", "bibliography"}  # the reference list is not the paper's content
_YEAR = re.compile(r"\b(19[89]\d|20[0-4]\d)\b")


def detect_format(data: bytes, suffix: str) -> str:
    """'pdf', 'bibtex' or 'text': content decides where it can, the file name where it cannot.
    A `.pdf` without the PDF header is still 'pdf', so it is reported as a corrupt PDF."""
    if data[:1024].lstrip().startswith(PDF_MAGIC) or PDF_MAGIC in data[:1024]:
        return "pdf"
    if suffix == ".pdf":
        return "pdf"
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if suffix in (".bib", ".bibtex"):
        return "bibtex"
    head = data[:4096].decode("utf-8", errors="replace")
    if suffix == ".jsonl" or _looks_like_jsonl(head):
        return "jsonl"
    if _BIB_ENTRY.search(head) and head.lstrip().startswith(("@", "%")):
        return "bibtex"
    return "text"


def _looks_like_jsonl(head: str) -> bool:
    """A JSON object a line whose first line has a title: a corpus dump such as BEIR's corpus.jsonl."""
    first = head.lstrip().split("\n", 1)[0].strip()
    if not first.startswith("{"):
        return False
    try:
        return isinstance(obj := json.loads(first), dict) and bool(obj.get("title"))
    except ValueError:
        return False


# --- PDF ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet(*loggers: str):
    """pypdf and bibtexparser log recoverable problems; the batch reports one line per file instead."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def read_pdf(data: bytes, source: str, name: str) -> Paper:
    """Text with page numbers, title/authors/year from the metadata or else the first page."""
    if PDF_MAGIC not in data[:1024]:
        raise InputError(f"{name}: not a valid PDF (no %PDF- header)")
    try:
        with _quiet("pypdf"):
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise InputError(f"{name}: the PDF is encrypted")
            pages = [_page_text(page) for page in reader.pages]
            meta = reader.metadata
    except InputError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files; the user needs one line
        reason = str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
        raise InputError(f"{name}: corrupt PDF ({reason})") from None
    if not any(p.strip() for p in pages):
        raise InputError(f"{name}: the PDF has no text layer (a scan?); run OCR on it first")
    blocks = pdf_blocks(pages)
    first_lines = [l.strip() for l in pages[0].splitlines() if l.strip()] if pages else []
    title = _meta_text(meta, "title")
    if not title or _junk_title(title):
        title = clean_text(first_lines[0]) if first_lines else name
    authors = _split_authors(_meta_text(meta, "author"))
    if not authors and len(first_lines) > 1:
        authors = _authors_line(first_lines[1])
    year = _first_year(" ".join(first_lines[:15])) or _meta_year(meta)
    abstract = " ".join(b.text for b in blocks if b.section.lower() == "abstract") or (blocks[0].text if blocks else "")
    return Paper(
        paper_id=paper_id_for(title), title=title, authors=tuple(authors), abstract=abstract,
        source=source, year=year, blocks=tuple(blocks), kind="pdf",
    )


def _page_text(page) -> str:
    """One damaged page costs that page, not the paper."""
    try:
        return page.extract_text() or ""
    except Exception:
        return ""


def pdf_blocks(pages: list[str]) -> list[Block]:
    """Paragraphs with their page and section. PDF text has no paragraph marks, so a paragraph ends
    at a blank line, a heading, or a line that ends a sentence well short of the usual width."""
    blocks: list[Block] = []
    section = ""
    for page_no, text in enumerate(pages, start=1):
        lines = [l.rstrip() for l in text.splitlines()]
        widths = sorted(len(l) for l in lines if l.strip())
        full = widths[int(len(widths) * 0.8)] if widths else 0
        para: list[str] = []

        def close() -> None:
            if para:
                joined = re.sub(r"(\w)- (\w)", r"\1\2", " ".join(para))  # re-join hyphenated line breaks
                joined = re.sub(r"\s+", " ", joined).strip()
                if joined:
                    blocks.append(Block(joined, page_no, section))
                para.clear()

        for line in lines:
            stripped = line.strip()
            if not stripped:
                close()
                continue
            heading = _heading(stripped)
            if heading:
                close()
                if heading.lower() in _END_SECTIONS:
                    return blocks
                section = heading
                continue
            if stripped.lower().startswith("abstract") and len(stripped) > 12 and not section:
                close()
                section = "Abstract"
                stripped = stripped[8:].lstrip(" .:—-")
            para.append(stripped)
            if stripped.endswith((".", "?", "!", ":")) and len(stripped) < 0.75 * full:
                close()
        close()
    return blocks


def _heading(line: str) -> str:
    m = _HEADING.match(line)
    if not m or len(line.split()) > 8:
        return ""
    name = m.group(1).strip()
    numbered = m.group(0) != m.group(1)
    return name if numbered or name.lower() in _KNOWN_SECTIONS else ""


def _meta_text(meta, key: str) -> str:
    try:
        value = getattr(meta, key, None) if meta is not None else None
    except Exception:
        return ""
    return re.sub(r"\s+", " ", str(value)).strip() if value else ""


def _junk_title(title: str) -> bool:
    """Word processors put file names in the title field."""
    low = title.lower()
    return low.startswith(("microsoft word", "untitled")) or low.endswith((".dvi", ".doc", ".docx", ".pdf", ".tex"))


def _meta_year(meta) -> int | None:
    try:
        date = meta.creation_date if meta is not None else None
    except Exception:
        return None
    return date.year if date else None


def _first_year(text: str) -> int | None:
    m = _YEAR.search(text)
    return int(m.group(1)) if m else None


def _split_authors(text: str) -> list[str]:
    if not text:
        return []
    parts = re.split(r"\s*(?:;|,|\band\b|&)\s*", text)
    return [p.strip() for p in parts if p.strip()]


def _authors_line(line: str) -> list[str]:
    """The line under the title is taken as authors only if every part looks like a name."""

    names = _split_authors(re.sub(r"[\d*†‡§]+", "", line))
    return names if names and all(looks_like_author(n) for n in names) else []


# --- BibTeX ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BibResult:
    papers: list[Paper]
    problems: list[str]  # one line per broken or unusable entry


def read_bibtex(text: str, source: str, name: str) -> BibResult:
    """One paper per entry; a broken entry is reported and skipped, the others are kept."""
    import bibtexparser

    try:
        with _quiet("bibtexparser"), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            library = bibtexparser.parse_string(text)
    except Exception as exc:
        raise InputError(f"{name}: cannot parse BibTeX ({exc.__class__.__name__})") from None
    papers: list[Paper] = []
    problems = [f"broken BibTeX entry at line {b.start_line + 1} skipped" for b in library.failed_blocks]
    for entry in library.entries:
        fields = {k.lower(): _bib_value(f.value) for k, f in entry.fields_dict.items()}
        title = clean_text(fields.get("title", ""))
        if not title:
            problems.append(f"entry {entry.key} has no title, skipped")
            continue
        authors = tuple(_bib_name(a) for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip())
        year = _first_year(fields.get("year", ""))
        venue = clean_text(fields.get("journal") or fields.get("booktitle") or fields.get("publisher") or "")
        papers.append(
            Paper(
                paper_id=paper_id_for(title), title=title, authors=authors,
                abstract=clean_text(fields.get("abstract", "")), source=source, year=year, venue=venue,
            )
        )
    if not papers and problems:
        raise InputError(f"{name}: no usable BibTeX entry ({problems[0]})")
    if not papers:
        raise InputError(f"{name}: no BibTeX entries found")
    return BibResult(papers, problems)


def _bib_value(value) -> str:
    """Braces only protect capitalisation in BibTeX; `{L}earning` reads as `Learning`."""
    text = str(value)
    text = re.sub(r"\\[a-zA-Z]+\s*", "", text) if "\\" in text else text
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def _bib_name(name: str) -> str:
    """'Smith, John' -> 'John Smith', so names read the same as in listings and PDFs."""
    name = name.strip()
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first.strip()} {last.strip()}".strip()
    return name


# --- JSON lines ----------------------------------------------------------------------------------


def read_jsonl(text: str, source: str, name: str) -> BibResult:
    """One paper per line of a JSON-lines corpus (BEIR's corpus.jsonl, an export of a reference
    manager): `title`, and the abstract as `abstract` or `text`; `authors` (a list or one string),
    `year` and `venue`/`journal` when present. A line that is not such an object is reported and
    skipped, like a broken BibTeX entry."""
    papers: list[Paper] = []
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            problems.append(f"{name}: line {number} is not JSON; skipped")
            continue
        title = clean_text(str(obj.get("title") or "")) if isinstance(obj, dict) else ""
        if not title:
            problems.append(f"{name}: line {number} has no title; skipped")
            continue
        authors = obj.get("authors") or obj.get("author") or ()
        if isinstance(authors, str):
            authors = re.split(r"\s*;\s*|\s+and\s+", authors)
        papers.append(
            Paper(
                paper_id=paper_id_for(title), title=title,
                authors=tuple(clean_text(str(a)) for a in authors if str(a).strip()),
                abstract=clean_text(str(obj.get("abstract") or obj.get("text") or "")), source=source,
                year=_first_year(str(obj.get("year") or "")), venue=clean_text(str(obj.get("venue") or obj.get("journal") or "")),
            )
        )
    return BibResult(papers, problems)
