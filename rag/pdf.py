"""PDF files -> Papers: text with pages and sections, and the title, authors and year.

Kept apart from corpus.py and readers.py because it leans on its own library (pypdf) and has its
own ways to fail: a PDF can be corrupt, encrypted or a scan with no text layer. Failures are
`InputError`s naming the file, so a batch can skip that file with one warning line and go on.
"""

from __future__ import annotations

import io
import re

from rag import readers
from rag.errors import InputError
from rag.papers import clean_text, looks_like_author, paper_id_for
from rag.readers import PDF_MAGIC
from rag.types import Block, Paper

_HEADING = re.compile(r"^(?:(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+)?([A-Z][A-Za-z][A-Za-z \-&:,]{1,60})$")
_KNOWN_SECTIONS = {
    "abstract", "introduction", "background", "related work", "method", "methods", "methodology", "approach",
    "experiments", "experimental setup", "results", "evaluation", "discussion", "conclusion", "conclusions",
    "limitations", "future work", "acknowledgements", "acknowledgments", "appendix", "references", "bibliography",
}
_END_SECTIONS = {"references", "bibliography"}  # the reference list is not the paper's content


def read_pdf(data: bytes, source: str, name: str) -> Paper:
    """Text with page numbers, title/authors/year from the metadata or else the first page."""
    if PDF_MAGIC not in data[:1024]:
        raise InputError(f"{name}: not a valid PDF (no %PDF- header)")
    try:
        with readers.quiet("pypdf"):
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
    year = readers.first_year(" ".join(first_lines[:15])) or _meta_year(meta)
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


def _split_authors(text: str) -> list[str]:
    if not text:
        return []
    parts = re.split(r"\s*(?:;|,|\band\b|&)\s*", text)
    return [p.strip() for p in parts if p.strip()]


def _authors_line(line: str) -> list[str]:
    """The line under the title is taken as authors only if every part looks like a name."""

    names = _split_authors(re.sub(r"[\d*†‡§]+", "", line))
    return names if names and all(looks_like_author(n) for n in names) else []
