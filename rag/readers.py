"""BibTeX and JSON-lines files -> Papers, and telling formats apart by content (PDFs: rag/pdf.py).

Kept apart from corpus.py (the text listings) because each leans on its own library
(bibtexparser) and has its own ways to fail: a .bib file can hold one broken entry among good
ones, a JSON-lines dump one broken line. Failures are `InputError`s naming the file,
so a batch can skip that file with one warning line and go on.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from pathlib import Path
from dataclasses import dataclass, field

from rag.errors import InputError
from rag.papers import clean_text, paper_id_for
from rag.types import Paper

PDF_MAGIC = b"%PDF-"
GZIP_MAGIC = b"\x1f\x8b"
_BIB_ENTRY = re.compile(r"(?m)^\s*@\s*[A-Za-z]+\s*[{(]")
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
    if suffix == ".json" and head.lstrip().startswith("["):
        return "jsonlist"
    if suffix == ".csv":
        return "csv"
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


# --- shared with rag/pdf.py ---------------------------------------------------------------------


@contextlib.contextmanager
def quiet(*loggers: str):
    """pypdf and bibtexparser log recoverable problems; the batch reports one line per file instead."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def first_year(text: str) -> int | None:
    m = _YEAR.search(text)
    return int(m.group(1)) if m else None


# --- BibTeX ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BibResult:
    papers: list[Paper]
    problems: list[str]  # one line per broken or unusable entry
    # PDFs the entries attach (`file = {...}`, as Zotero and Better BibTeX export it): path -> the
    # entry's title, so the PDF becomes that entry's paper (one paper, not two).
    attachments: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # an attachment that is not there


def read_bibtex(text: str, source: str, name: str) -> BibResult:
    """One paper per entry; a broken entry is reported and skipped, the others are kept."""
    import bibtexparser

    try:
        with quiet("bibtexparser"), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            library = bibtexparser.parse_string(text)
    except Exception as exc:
        raise InputError(f"{name}: cannot parse BibTeX ({exc.__class__.__name__})") from None
    papers: list[Paper] = []
    attachments: dict[str, str] = {}
    missing: list[str] = []
    problems = [f"broken BibTeX entry at line {b.start_line + 1} skipped" for b in library.failed_blocks]
    for entry in library.entries:
        fields = {k.lower(): _bib_value(f.value) for k, f in entry.fields_dict.items()}
        title = bib_title(entry)
        if not title:
            problems.append(f"entry {entry.key} has no title, skipped")
            continue
        authors = tuple(_bib_name(a) for a in re.split(r"\s+and\s+", fields.get("author", "")) if a.strip())
        year = first_year(fields.get("year", ""))
        venue = clean_text(fields.get("journal") or fields.get("booktitle") or fields.get("publisher") or "")
        raw_file = {k.lower(): f for k, f in entry.fields_dict.items()}.get("file")
        for attached in attached_pdfs(str(raw_file.value) if raw_file else "", source):
            if Path(attached).is_file():
                attachments[attached] = title
            else:
                missing.append(f"entry {entry.key}: attached file {attached} not found")
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
    return BibResult(papers, problems, attachments, missing)


_ZOTERO_FILE = re.compile(r"^(?P<label>[^:]*):(?P<path>.+):(?P<mime>[\w.+-]+/[\w.+-]+|PDF|pdf)$")


def attached_pdfs(value: str, bib_path: str) -> list[str]:
    """The PDFs a `file` field names, resolved against the .bib's folder. Zotero writes
    `Full Text PDF:files/12/x.pdf:application/pdf;...`, Better BibTeX a bare path, JabRef
    `:x.pdf:PDF`; several are separated by ';'."""
    found = []
    for part in (p.strip() for p in value.replace("\\:", "\x00").split(";")):
        if not part:
            continue
        match = _ZOTERO_FILE.match(part)
        path = (match.group("path") if match else part).replace("\x00", ":")
        if path.lower().endswith(".pdf"):
            found.append(str((Path(bib_path).parent / Path(path).expanduser()).resolve()))
    return found


def bib_title(entry) -> str:
    """A bibtexparser entry's title as a paper's title: what its paper id is made from."""
    field = {k.lower(): f for k, f in entry.fields_dict.items()}.get("title")
    return clean_text(_bib_value(field.value)) if field else ""


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
        paper = record_paper(obj, source) if isinstance(obj, dict) else None
        if paper is None:
            problems.append(f"{name}: line {number} has no title; skipped")
            continue
        papers.append(paper)
    return BibResult(papers, problems)


def record_paper(obj: dict, source: str) -> Paper | None:
    """One metadata record as a paper, whatever the export calls its fields: BEIR (`text`), the
    arXiv API and the Kaggle arXiv snapshot (`abstract`, `categories` as a list or "cs.CL cs.LG",
    authors as a list or "A, B and C", the year from `year`, `published` or `update_date`), CSL
    JSON as Zotero exports it (`author: [{"family", "given"}]`, `issued.date-parts`,
    `container-title`). None without a title."""
    title = clean_text(str(obj.get("title") or ""))
    if not title:
        return None
    authors = obj.get("authors") or obj.get("author") or ()
    if isinstance(authors, list):
        authors = [_csl_name(a) if isinstance(a, dict) else a for a in authors]
    if isinstance(authors, str):
        authors = re.split(r"\s*;\s*|\s*,\s*(?:and\s+)?|\s+and\s+", authors)
    categories = obj.get("categories") or ()
    if isinstance(categories, str):
        categories = categories.split()
    issued = obj.get("issued") if isinstance(obj.get("issued"), dict) else {}
    csl_year = str((issued.get("date-parts") or [[""]])[0][0]) if issued.get("date-parts") else ""
    year = (first_year(str(obj.get("year") or obj.get("published") or csl_year)) or arxiv_year(str(obj.get("id") or ""))
            or first_year(str(obj.get("update_date") or "")))
    return Paper(
        paper_id=paper_id_for(title), title=title,
        authors=tuple(clean_text(str(a)) for a in authors if str(a).strip()),
        abstract=clean_text(str(obj.get("abstract") or obj.get("text") or "")), source=source,
        year=year, venue=clean_text(str(obj.get("venue") or obj.get("journal") or obj.get("container-title") or obj.get("journal-ref") or "")),
        categories=tuple(str(c).strip() for c in categories if str(c).strip()),
    )


def _csl_name(name: dict) -> str:
    """CSL JSON's {"family": "Lovelace", "given": "Ada"} (or {"literal": "..."}) as "Ada Lovelace"."""
    return str(name.get("literal") or f"{name.get('given', '')} {name.get('family', '')}").strip()


_ARXIV_ID = re.compile(r"^(?:[a-z-]+(?:\.[A-Za-z-]+)?/)?(\d{2})(\d{2})[.\d]")


def arxiv_year(identifier: str) -> int | None:
    """The year an arXiv id was assigned ("0709.2627", "2603.11048v1", "math/0701001"): the
    Kaggle snapshot's `update_date` is the last revision, often years later."""
    m = _ARXIV_ID.match(identifier.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    yy = int(m.group(1))
    return 1900 + yy if yy >= 91 else 2000 + yy


def read_records(rows, name: str, source: str) -> BibResult:
    """Records from a JSON list (the arXiv API's) or a CSV file (the Kaggle snapshot's): one paper
    per record with a title; a record without one is one warning, the rest are read."""
    papers, problems = [], []
    for number, obj in enumerate(rows, 1):
        paper = record_paper(obj, source) if isinstance(obj, dict) else None
        if paper is None:
            problems.append(f"{name}: record {number} has no title; skipped")
        else:
            papers.append(paper)
    if not papers:
        raise InputError(f"{name}: no records with a title")
    return BibResult(papers, problems)


def read_json_list(text: str, source: str, name: str) -> BibResult:
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise InputError(f"{name}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(rows, list):
        raise InputError(f"{name}: a JSON list of records was expected")
    return read_records(rows, name, source)


def read_csv(text: str, source: str, name: str) -> BibResult:
    import csv

    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "title" not in (rows[0].keys()):
        raise InputError(f"{name}: a CSV file with a `title` column was expected")
    return read_records(rows, name, source)


def jsonl_titles(text: str) -> dict[str, str]:
    """Each line's `_id` (or `id`) and its title as `read_jsonl` stores it: a claims file names its
    evidence papers by corpus id (SciFact), the store knows them by title."""
    titles = {}
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and (key := obj.get("_id", obj.get("id"))) is not None:
            title = clean_text(str(obj.get("title") or ""))
            if title:
                titles[str(key)] = title
    return titles
