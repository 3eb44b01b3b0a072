"""PDF files -> Papers: text with pages and sections, and the title, authors and year.

Kept apart from corpus.py and readers.py because it leans on its own library (pypdf) and has its
own ways to fail: a PDF can be corrupt, encrypted or a scan with no text layer. Failures are
`InputError`s naming the file, so a batch can skip that file with one warning line and go on.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from rag import readers
from rag.errors import InputError
from rag.papers import clean_text, paper_id_for
from rag.pdf_title import Run, choose_title, first_line_title, first_page_authors, heading_of, layout_title, split_authors
from rag.readers import PDF_MAGIC
from rag.types import Block, Paper

_END_SECTIONS = {"references", "bibliography"}  # the reference list is kept apart from the paper's content
_AFTER_REFERENCES = {"appendix", "appendices", "supplementary material", "acknowledgements", "acknowledgments"}
REFERENCES = "References"


@dataclass(frozen=True)
class PdfRead:
    """A PDF's paper and what the reader had to guess (one warning line each; the file was read whole)."""

    paper: Paper
    warnings: tuple[str, ...] = ()
    pages: int = 0


# Bump when what read_pdf returns for the same bytes changes: parsed PDFs are cached under it.
READER_VERSION = 4
NO_TITLE = "no title found on the first page"  # a warning corpus drops when a BibTeX entry names the PDF


def read_pdf(data: bytes, source: str, name: str) -> PdfRead:
    """Text with page numbers; the title from the first page's layout, checked against the metadata;
    authors and year from the metadata or else the first page."""
    if PDF_MAGIC not in data[:1024]:
        raise InputError(f"{name}: not a valid PDF (no %PDF- header)")
    runs: list[Run] = []
    try:
        with readers.quiet("pypdf"):
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise InputError(f"{name}: the PDF is encrypted")
            # pypdf reads the first page's layout (font sizes, baselines) for the title; PDFium
            # reads the text of every page, and pypdf only when PDFium cannot.
            count = len(reader.pages)
            first = _page_text(reader.pages[0], runs) if count else ""
            span = _page_span(reader.pages[0]) if count else None
            meta = reader.metadata
            pages = _pdfium_pages(data, count)
            if pages is None:
                pages = [first] + [_page_text(page) for page in reader.pages[1:]] if count else []
    except InputError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files; the user needs one line
        reason = str(exc).splitlines()[0][:120] if str(exc) else exc.__class__.__name__
        raise InputError(f"{name}: corrupt PDF ({reason})") from None
    if not any(p.strip() for p in pages):
        raise InputError(f"{name}: the PDF has no text layer (a scan?); run OCR on it first")
    blocks = pdf_blocks(pages)
    references = reference_entries([b.text for b in blocks if b.section == REFERENCES])
    blocks = [b for b in blocks if b.section != REFERENCES]
    first_lines = [l.strip() for l in pages[0].splitlines() if l.strip()] if pages else []
    warnings: list[str] = []
    title = choose_title(layout_title(runs, span, pages), _meta_text(meta, "title"), pages[0] if pages else "")
    title = title or first_line_title(first_lines)
    if not title:
        title = clean_text(_stem(name).replace("_", " ")) or "untitled"
        warnings.append(f"{NO_TITLE}; titled {title!r} from the file name")
    authors = split_authors(_meta_text(meta, "author"))
    if not authors and not warnings:  # a page with no title has no author line either
        lower_words = {w for page in pages for w in re.findall(r"\b[a-z]+\b", re.sub(r"\S+@\S+", " ", page))}  # not andrew.white@
        authors = first_page_authors(first_lines, title, lower_words)
    year = readers.first_year(" ".join(first_lines[:15])) or _meta_year(meta)
    abstract = " ".join(b.text for b in blocks if b.section.lower() == "abstract") or (blocks[0].text if blocks else "")
    paper = Paper(
        paper_id=paper_id_for(title), title=title, authors=tuple(authors), abstract=abstract,
        source=source, year=year, blocks=tuple(blocks), kind="pdf", references=tuple(references),
    )
    return PdfRead(paper, tuple(warnings), len(pages))


def _page_text(page, runs: list[Run] | None = None) -> str:
    """One damaged page costs that page, not the paper. With `runs`, each horizontal text run of
    the page is added to it with its baseline and font size (a rotated arXiv stamp is left out)."""
    try:
        if runs is None:
            return page.extract_text() or ""
        from pypdf import mult

        def visit(text, cm, tm, _font, size) -> None:
            if not text.strip() or not size:
                return
            a, b, c, d, _x, y = mult(tm, cm)
            if abs(b) > 1e-3 or abs(c) > 1e-3 or a <= 0 or d <= 0:
                return  # rotated or mirrored: a margin stamp, not the title
            runs.append(Run(y, round(size * d, 2), text))

        return page.extract_text(visitor_text=visit) or ""
    except Exception:
        return ""


def _pdfium_pages(data: bytes, count: int) -> list[str] | None:
    """Each page's text as PDFium reads it, or None (pypdf's text stays). On the ten real papers
    PDFium glued no words where pypdf glued 2 in 10,000 ("Keepingwithpastwork,wereportmacro"),
    left no ligatures and read 389 pages/s to pypdf's 17 (scripts/compare_pdf_readers.py,
    docs/pdf_readers.json). pypdf still opens the file: its errors name what is wrong with it,
    and its layout pass finds the title."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return None
    try:
        doc = pdfium.PdfDocument(data)
        try:
            if len(doc) != count:
                return None
            raw = [_pdfium_text(doc[i]) for i in range(count)]
            words = vocabulary(raw)
            return [repaired(text, words) for text in raw]
        finally:
            doc.close()
    except Exception:  # PDFium's errors carry no more than pypdf's did; pypdf's text is used
        return None


def _pdfium_text(page) -> str:
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()
        page.close()


_LINE_END_SPLIT = re.compile(r"([A-Za-z]+)\ufffe([A-Za-z]+)")


def vocabulary(texts: list[str]) -> set[str]:
    """The document's own words, the halves of words split at a line end left out."""
    return {w.lower() for text in texts for w in re.findall(r"[A-Za-z]+", _LINE_END_SPLIT.sub(" ", text))}


def repaired(text: str, words: set[str] | frozenset[str] = frozenset()) -> str:
    """PDFium's text with plain line ends. A line-end hyphen comes back as U+FFFE with the lines
    already joined: inside a word ("substan-tially", "SQuAL-ITY") it goes; before a capitalised
    word or a digit ("BERT-Base", "GPT-4") it stays a hyphen, and so it does in a compound whose
    halves the paper uses as words while it never writes them joined ("token-level",
    "retrieval-augmented"; `words` is the paper's vocabulary): on the ten real papers that kept
    the hyphen in 69 of 1,388 line-end breaks, where joining had made "tokenlevel" of them."""

    def hyphen(m: re.Match) -> str:
        a, b = m.group(1), m.group(2)
        compound = len(a) > 2 and len(b) > 2 and a.lower() in words and b.lower() in words and (a + b).lower() not in words
        return f"{a}-{b}" if compound else m.group(0)

    text = _LINE_END_SPLIT.sub(hyphen, text) if words else text
    text = re.sub(r"\ufffe(?![A-Z][a-z]|\d)", "", text).replace("\ufffe", "-")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _page_span(page) -> tuple[float, float] | None:
    """The page's bottom and top, in the units of the text's baselines."""
    try:
        box = page.mediabox
        return float(box.bottom), float(box.top)
    except Exception:
        return None


def _stem(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    return base[: -len(".pdf")] if base.lower().endswith(".pdf") else base


_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st"})


def pdf_blocks(pages: list[str]) -> list[Block]:
    """Paragraphs with their page and section. PDF text has no paragraph marks, so a paragraph ends
    at a blank line, a heading, or a line that ends a sentence well short of the usual width.
    Running headers and footers (a line on many pages, its numbers aside) and page numbers are
    not the paper's text; nor is what stands above a first-page Abstract (title, names, venue):
    the title and authors are the paper's metadata."""
    blocks: list[Block] = []
    section, appendix = "", False
    running = _running_lines(pages)
    for page_no, text in enumerate(pages, start=1):
        lines = [l.rstrip() for l in text.translate(_LIGATURES).splitlines()]
        lines = [l for l in lines if _shape(l) not in running and not _PAGE_NUMBER.fullmatch(l.strip())]
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
            heading = heading_of(stripped)
            if heading and section == REFERENCES and heading.lower() not in _AFTER_REFERENCES:
                heading = ""  # "2020. Longformer: The Long-Document Transformer" is an entry, not a heading
            if not heading and (section == REFERENCES or appendix):
                heading = _appendix_heading(stripped, opening=section == REFERENCES)
                appendix = appendix or bool(heading)
            if heading:
                close()
                if heading.lower() in _END_SECTIONS:
                    heading = REFERENCES
                if heading.lower() == "abstract" and page_no == 1 and not section:
                    blocks.clear()
                section = heading
                continue
            if stripped.lower().startswith("abstract") and len(stripped) > 12 and not section:
                close()
                section = "Abstract"
                stripped = stripped[8:].lstrip(" .:—-")
                if page_no == 1:
                    blocks.clear()
            para.append(stripped)
            if stripped.endswith((".", "?", "!", ":")) and len(stripped) < 0.75 * full:
                close()
        close()
    return blocks


_LETTERED = re.compile(r"^([A-H])((?:\.\d{1,2})*)\s+([A-Z].{1,78})$")


def _appendix_heading(line: str, opening: bool) -> str:
    """A lettered appendix heading after the references ("A Background & Terminology", "D.4
    Ordinal Regression for Likert-Scale Variables"), or "". The first must be a bare "A"; a
    reference line never is a heading: it has a year or a sentence's period ("A Visualization
    Tool to Support Literature Review. Proceedings of the 2016 CHI"), or runs long ("A Handheld
    VR Device for Rendering Size, Shape, and Stiffness of Virtual Objects"). Before this, the
    appendices of 5 of the ten real papers were stored as reference entries, unanswerable."""
    m = _LETTERED.match(line)
    if not m or len(line.split()) > 11 or re.search(r"\b(?:19|20)\d\d\b|\.\s|[.,;]$", line):
        return ""
    if opening and (m.group(1) != "A" or m.group(2)):
        return ""
    return m.group(3).strip()


_PAGE_NUMBER = re.compile(r"(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?", re.I)


def _shape(line: str) -> str:
    """A line with its numbers blanked: a running header or footer keeps its shape page to page."""
    return re.sub(r"\d+", "#", line.strip().lower())


def _running_lines(pages: list[str]) -> set[str]:
    """Line shapes at the top or bottom of at least three pages and a third of them: headers and
    footers. A short line (a lone word, a table cell) repeats by chance and is kept."""
    if len(pages) < 3:
        return set()
    counts: dict[str, int] = {}
    for text in pages:
        lines = [l for l in text.splitlines() if l.strip()]
        for shape in {_shape(l) for l in lines[:3] + lines[-3:] if len(l.strip()) >= 12}:
            counts[shape] = counts.get(shape, 0) + 1
    return {shape for shape, n in counts.items() if n >= max(3, len(pages) // 3)}


def reference_entries(paragraphs: list[str]) -> list[str]:
    """The reference list as entries: split at "[n]" when the list is numbered so, else one per
    paragraph (an entry's last line is short and ends with a full stop, which closes a paragraph)."""
    entries = []
    for text in paragraphs:
        parts = re.split(r"\s(?=\[\d{1,3}\]\s)", text) if len(re.findall(r"\[\d{1,3}\]\s", text)) > 1 else [text]
        entries += [p.strip() for p in parts if len(p.strip()) >= 20]
    return entries


def _meta_text(meta, key: str) -> str:
    try:
        value = getattr(meta, key, None) if meta is not None else None
    except Exception:
        return ""
    return re.sub(r"\s+", " ", str(value)).strip() if value else ""


def _meta_year(meta) -> int | None:
    try:
        date = meta.creation_date if meta is not None else None
    except Exception:
        return None
    return date.year if date else None
