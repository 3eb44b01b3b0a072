"""A PDF's title, from the first page's layout, its metadata and its first lines; and the author
line under it. Kept apart from pdf.py (which reads the file) because it is pure text and geometry,
measured on ten real papers: the largest text in the top half of the first page, joined across
lines, never a venue header, a running header or an author line."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rag.papers import clean_text, looks_like_author

_HEADING = re.compile(r"^(?:(?:\d+(?:\.\d+)*\.?|[IVX]+\.)\s+)?([A-Z][A-Za-z][A-Za-z \-&:,]{1,60})$")
_KNOWN_SECTIONS = {
    "abstract", "introduction", "background", "related work", "method", "methods", "methodology", "approach",
    "experiments", "experimental setup", "results", "evaluation", "discussion", "conclusion", "conclusions",
    "limitations", "future work", "acknowledgements", "acknowledgments", "appendix", "references", "bibliography",
}


def heading_of(line: str) -> str:
    m = _HEADING.match(line)
    if not m or len(line.split()) > 8:
        return ""
    name = m.group(1).strip()
    numbered = m.group(0) != m.group(1)
    return name if numbered or name.lower() in _KNOWN_SECTIONS else ""


def split_authors(text: str) -> list[str]:
    if not text:
        return []
    parts = re.split(r"\s*(?:;|,|\band\b|&)\s*", text)
    return [p.strip() for p in parts if p.strip()]


def authors_line(line: str) -> list[str]:
    """The line under the title is taken as authors only if every part looks like a name."""

    names = split_authors(re.sub(r"[\d*†‡§]+", "", line))
    return names if names and all(looks_like_author(n) for n in names) else []


# Footnote and affiliation marks after a name ("Kyle Lo†∗", "Loα", "He∗1", "Kuehl♢"); they separate names
# printed on one line with nothing else between them.
_MARKS = re.compile(r"[\d*∗†‡§¶♠♢♡♦♣♤♥⋆□⋄◦•✉\u03b1-\u03c9]+")
_AFFILIATION = re.compile(
    r"(?i:\b(?:universit\w*|institut\w*|department|dept|school|college|laborator\w*|labs?|research|center|centre|inc|ltd|"
    r"corp\w*|company|technolog\w*|hospital|foundation|academy|faculty|china)\b)|\b(?:AI|USA|UK)\b"  # "Ai" is also a given name
)
_MAX_AUTHOR_LINES = 40  # CiteSee prints eight names, each over its address: 36 lines


def first_page_authors(lines: list[str], title: str, lower_words: set[str]) -> list[str]:
    """The names printed between the title and the abstract, in order. Names are told from
    affiliations by their words (an institute, a country), from headings and figure text by
    `lower_words` (the words the paper also writes in lower case: "Paper Search" is not a person),
    and are split at commas, "and" and the footnote marks that separate names on one line. Names
    in capitals ("TAL AUGUST, University of Washington") come back in title case. Developed on the
    ten real papers (every name on the 8 titled ones without author metadata); other layouts will
    judge it. No title on the page, no names: a guess there would be a figure's labels."""
    start = _after_title(lines, title)
    if start is None:
        return []
    names: list[str] = []
    block = lines[start : start + _MAX_AUTHOR_LINES]
    for i, line in enumerate(block):
        if re.match(r"(?:\d+\.?\s*)?abstract\b", line, re.I) or _prose(line):
            break
        if "@" in line or re.search(r"https?:|www\.", line):
            continue
        if i + 1 < len(block) and re.search(r"(?:^|,|\band)\s*[A-Z][a-z]+$", line) and re.match(r"[A-Z]\.\s", block[i + 1]):
            block[i + 1] = line.rsplit(None, 1)[-1] + " " + block[i + 1]  # "and Andrew" / "D. White"
            line = line.rsplit(None, 1)[0] if len(line.split()) > 1 else ""
        for part in re.split(r"\s*(?:,|;|\band\b|&|\s{2,})\s*", _MARKS.sub(",", line)):
            if _AFFILIATION.search(part):
                break  # what follows an affiliation on its line is its address ("Inc., San Francisco, CA")
            name = _person(part.strip(), lower_words)
            if name and name not in names:
                names.append(name)
    return names


def _after_title(lines: list[str], title: str) -> int | None:
    """The index of the first line after the title's last line."""
    whole, end = _squash(title), None
    for i, line in enumerate(lines[:30]):
        piece = _squash(line)
        if piece and len(piece) > 3 and piece in whole:
            end = i + 1
        elif end is not None:
            break
    return end


def _prose(line: str) -> bool:
    words = line.split()
    return len(words) >= 10 and sum(w.islower() for w in words) >= 5


def _person(part: str, lower_words: set[str]) -> str:
    if part.isupper() and len(part) > 3:
        part = part.title()
    if not looks_like_author(part):
        return ""
    named = [t for t in part.split() if len(t.rstrip(".")) > 1]
    if named and all(t.lower() in lower_words for t in named):
        return ""
    return part


def _junk_title(title: str) -> bool:
    """Word processors put file names in the title field."""
    low = title.lower()
    return low.startswith(("microsoft word", "untitled")) or low.endswith((".dvi", ".doc", ".docx", ".pdf", ".tex"))


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
class Run:
    y: float  # baseline, in points from the page's bottom
    size: float  # font size as printed, in points
    text: str


@dataclass
class _Line:
    y: float
    runs: list[Run]

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


def layout_lines(runs: list[Run]) -> list[_Line]:
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


def layout_title(runs: list[Run], page: tuple[float, float] | None, pages: list[str]) -> str:
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


def _body_size(runs: list[Run]) -> float:
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
    if _VENUE.search(text) or heading_of(text):
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


def first_line_title(first_lines: list[str]) -> str:
    """No title set larger than the text: the first line, if the page starts a paper (names under
    it, or an abstract); a page from the middle of a paper, a table or a figure, has no title."""
    if not first_lines:
        return ""
    line = _tidy(first_lines[0])
    if not _plausible(line) or not _title_like(line) or len(line.split()) > 30:
        return ""
    names = authors_line(first_lines[1]) if len(first_lines) > 1 else []
    abstract = any(re.match(r"(?:\d+\.?\s*)?abstract\b", l, re.I) for l in first_lines[:60])
    return line if len(names) > 1 or abstract else ""

