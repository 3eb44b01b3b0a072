"""PDF files -> Papers: text with pages and sections, and the title, authors and year.

Kept apart from corpus.py and readers.py because it leans on its own library (pypdf) and has its
own ways to fail: a PDF can be corrupt, encrypted or a scan with no text layer. Failures are
`InputError`s naming the file, so a batch can skip that file with one warning line and go on.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass

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


@dataclass(frozen=True)
class PdfRead:
    """A PDF's paper and what the reader had to guess (one warning line each; the file was read whole)."""

    paper: Paper
    warnings: tuple[str, ...] = ()


NO_TITLE = "no title found on the first page"  # a warning corpus drops when a BibTeX entry names the PDF


def read_pdf(data: bytes, source: str, name: str) -> PdfRead:
    """Text with page numbers; the title from the first page's layout, checked against the metadata;
    authors and year from the metadata or else the first page."""
    if PDF_MAGIC not in data[:1024]:
        raise InputError(f"{name}: not a valid PDF (no %PDF- header)")
    runs: list[_Run] = []
    try:
        with readers.quiet("pypdf"):
            from pypdf import PdfReader

            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted and not reader.decrypt(""):
                raise InputError(f"{name}: the PDF is encrypted")
            # The first page is read once, with its layout: a second pass over it would add 10% to
            # the read time of the ten real papers (0.65 s of 6.3 s); the visitor adds ~0.5%.
            pages = [_page_text(page, runs if i == 0 else None) for i, page in enumerate(reader.pages)]
            span = _page_span(reader.pages[0]) if pages else None
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
    warnings: list[str] = []
    title = choose_title(layout_title(runs, span, pages), _meta_text(meta, "title"), pages[0] if pages else "")
    title = title or _first_line_title(first_lines)
    if not title:
        title = clean_text(_stem(name).replace("_", " ")) or "untitled"
        warnings.append(f"{NO_TITLE}; titled {title!r} from the file name")
    authors = _split_authors(_meta_text(meta, "author"))
    if not authors and len(first_lines) > 1 and not warnings:  # a page with no title has no author line either
        authors = _authors_line(first_lines[1])
    year = readers.first_year(" ".join(first_lines[:15])) or _meta_year(meta)
    abstract = " ".join(b.text for b in blocks if b.section.lower() == "abstract") or (blocks[0].text if blocks else "")
    paper = Paper(
        paper_id=paper_id_for(title), title=title, authors=tuple(authors), abstract=abstract,
        source=source, year=year, blocks=tuple(blocks), kind="pdf",
    )
    return PdfRead(paper, tuple(warnings))


def _page_text(page, runs: list[_Run] | None = None) -> str:
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
            runs.append(_Run(y, round(size * d, 2), text))

        return page.extract_text(visitor_text=visit) or ""
    except Exception:
        return ""


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


# --- the title from the layout -------------------------------------------------------------------
# The first page's text order is no guide to its title: ACL papers print the venue footer first,
# and a two-line title comes out as two lines. The title is the largest text in the top half of the
# first page, joined across its lines; measured on ten real papers (scripts/pdf_titles.py).

_TITLE_MIN_RATIO = 1.15  # a title is set this much larger than the page's body text at least
# A line printed again on the next pages is a running header only in the page's top margin: many
# documents repeat their title in the headers, and the first page's title sits below the margin
# (9.6% below the top edge in ACL papers, 11% in a DocBook spec; fpdf2's first line: 3.4%).
_HEADER_ZONE = 0.07
_VENUE = re.compile(
    r"^(?:in\s+)?(?:proceedings|proc\.|journal|transactions|published|accepted|under review|preprint|to appear|"
    r"arxiv|technical report|workshop|conference)\b|arxiv:\s*\d|©|\(c\)\s*\d{4}|copyright|doi:|https?://|www\.|@|"
    r"\b(?:conference|workshop|symposium|proceedings|journal|volume|vol\.|pages)\b.*\d|\d.*\b(?:conference|workshop|symposium)\b",
    re.I,
)


@dataclass(frozen=True)
class _Run:
    y: float  # baseline, in points from the page's bottom
    size: float  # font size as printed, in points
    text: str


@dataclass
class _Line:
    y: float
    runs: list[_Run]

    @property
    def size(self) -> float:
        return max(r.size for r in self.runs)

    def text(self) -> str:
        """The runs joined; small capitals (an upper-case run set smaller, right after a letter:
        'L' + 'ONG' in LONGEVAL) read as the lower case they stand for."""
        out = ""
        for run in self.runs:
            piece = run.text.replace("\n", " ")
            if out[-1:].isalpha() and piece.isalpha() and piece.isupper() and 0.6 < run.size / self.size < 0.92:
                piece = piece.lower()
            out += piece
        return re.sub(r"\s+", " ", out).strip()


def layout_lines(runs: list[_Run]) -> list[_Line]:
    """Runs on one baseline make a line (superscript markers sit on their own); top line first."""
    lines: list[_Line] = []
    for run in runs:
        for line in reversed(lines[-12:]):  # a line's runs come close together in the content stream
            if abs(line.y - run.y) <= 0.5 + 0.05 * max(run.size, line.size):
                line.runs.append(run)
                break
        else:
            lines.append(_Line(run.y, [run]))
    return sorted(lines, key=lambda l: -l.y)


def layout_title(runs: list[_Run], page: tuple[float, float] | None, pages: list[str]) -> str:
    """The largest text in the top half of the page, set clearly larger than the body text, joined
    across its lines; never a venue header, a running header, a section heading or an author line.
    '' when no text on the page looks like a title (a page cut from the middle of a paper)."""
    if not runs or page is None:
        return ""
    lines = layout_lines(runs)
    body = _body_size(runs)
    bottom, top = page
    repeated = _repeated_lines(pages)
    header_zone = top - _HEADER_ZONE * (top - bottom)
    candidates = [
        l for l in lines
        if l.y >= bottom + (top - bottom) / 2 and l.size >= body * _TITLE_MIN_RATIO and _title_like(l.text())
        and not (l.y > header_zone and l.text().lower() in repeated)
    ]
    for size in sorted({round(l.size, 1) for l in candidates}, reverse=True)[:4]:
        first = next(l for l in candidates if round(l.size, 1) == size)
        title = _join_title(_title_lines(lines, first, candidates))
        if _plausible(title):
            return title
    return ""


def _body_size(runs: list[_Run]) -> float:
    """The size most of the page's characters are set in."""
    chars: dict[float, int] = {}
    for run in runs:
        chars[round(run.size, 1)] = chars.get(round(run.size, 1), 0) + len(run.text.strip())
    return max(chars, key=chars.__getitem__)


def _title_lines(lines: list[_Line], first: _Line, candidates: list[_Line]) -> list[_Line]:
    """`first` and the lines under it in the same size, close below each other; a footnote marker
    on its own baseline is stepped over, any other line ends the title."""
    picked = [first]
    for line in lines[lines.index(first) + 1:]:
        if sum(c.isalpha() for c in line.text()) < 3:
            continue
        if line in candidates and _continues(picked[-1], line):
            picked.append(line)
        else:
            break
    return picked


def _continues(above: _Line, line: _Line) -> bool:
    return abs(above.size - line.size) <= 0.5 and above.y - line.y <= 2.5 * line.size


def _join_title(lines: list[_Line]) -> str:
    """A line that ends in a hyphen goes on without a space: titles keep compounds whole (Long-form)."""
    title = ""
    for line in lines:
        text = line.text()
        title += text if title.endswith("-") and title[-2:-1].isalpha() else f" {text}"
    return _tidy(title)


def _tidy(title: str) -> str:
    """Ligatures (ﬁ) and compatibility characters to plain ones, footnote marks at the end dropped."""
    title = unicodedata.normalize("NFKC", title)
    return clean_text(re.sub(r"[\s*†‡§¶∗⋆]+$", "", title))


def _title_like(text: str) -> bool:
    if _VENUE.search(text) or _heading(text):
        return False
    names = [n for n in re.split(r"\s*(?:,|\band\b|&)\s*", re.sub(r"[\d*†‡§∗]+", "", text)) if n.strip()]
    if len(names) > 1 and all(looks_like_author(n) for n in names):
        return False  # an author line set large
    return sum(c.isalpha() for c in text) >= 3


def _plausible(title: str) -> bool:
    """Two words and eight letters at least, mostly letters: not a page number, a logo or a formula."""
    letters = sum(c.isalpha() for c in title)
    return len(title.split()) >= 2 and letters >= 8 and letters >= 0.6 * len(title.replace(" ", "")) and len(title) <= 300


def _repeated_lines(pages: list[str]) -> set[str]:
    """Lines of pages 2-4, lower-cased: a running header's copy on the first page is no title."""
    return {l.strip().lower() for text in pages[1:4] for l in text.splitlines() if l.strip()}


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", text).lower())


def choose_title(layout: str, meta: str, first_page: str) -> str:
    """The metadata title when it is plausible and printed on the first page (it is the author's
    own spelling), unless the layout title is the same title continued (a metadata field cut short).
    A metadata title not printed there (a draft's name, a template's 'Title') yields to the layout."""
    meta = _tidy(meta) if meta and not _junk_title(meta) and _plausible(meta) and not _VENUE.search(meta) else ""
    if meta and _squash(meta) in _squash(first_page):
        grown = layout and _squash(layout).startswith(_squash(meta)) and len(_squash(layout)) > len(_squash(meta))
        return layout if grown else meta
    return layout or meta


def _first_line_title(first_lines: list[str]) -> str:
    """No title set larger than the text: the first line, if the page starts a paper (names under
    it, or an abstract); a page from the middle of a paper, a table or a figure, has no title."""
    if not first_lines:
        return ""
    line = _tidy(first_lines[0])
    if not _plausible(line) or not _title_like(line) or len(line.split()) > 30:
        return ""
    names = _authors_line(first_lines[1]) if len(first_lines) > 1 else []
    abstract = any(re.match(r"(?:\d+\.?\s*)?abstract\b", l, re.I) for l in first_lines[:60])
    return line if len(names) > 1 or abstract else ""

