"""BibTeX for the papers an answer cites, ready to paste into a manuscript. A paper read from the
user's own .bib file gets that entry back as written (its key, its fields: the key is what the
manuscript already uses); any other paper gets an entry built from what the store knows, with a
key that stays the same from run to run and, for a PDF, the pages the answer cited."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.papers import paper_id_for
from rag.readers import bib_title
from rag.types import PaperInfo

BIB_SUFFIXES = (".bib", ".bibtex")
_STOP = {"a", "an", "the", "on", "of", "for", "in", "to", "and", "with", "towards", "toward"}


@dataclass(frozen=True)
class Cited:
    """A paper an answer cites and the pages its citations point at (PDFs only)."""

    paper: PaperInfo
    pages: tuple[int, ...] = ()


def bibtex(cited: list[Cited]) -> str:
    """The entries, one per paper, in the order given; built keys never collide."""
    own = _own_entries(cited)
    used: set[str] = set(k for k, _ in own.values())
    entries = []
    for c in cited:
        if c.paper.paper_id in own:
            entries.append(own[c.paper.paper_id][1])
            continue
        key = _unique(base_key(c.paper), used)
        used.add(key)
        entries.append(built_entry(c, key))
    return "\n\n".join(entries) + "\n" if entries else ""


def _own_entries(cited: list[Cited]) -> dict[str, tuple[str, str]]:
    """paper id -> (key, raw entry) for papers read from a .bib that still holds their entry. A .bib
    that is gone or no longer parses is passed over: the built entry stands in."""
    import bibtexparser

    wanted = {c.paper.paper_id for c in cited}
    files = {s for c in cited for s in c.paper.sources if s.lower().endswith(BIB_SUFFIXES)}
    found: dict[str, tuple[str, str]] = {}
    for name in sorted(files):
        try:
            library = bibtexparser.parse_string(Path(name).read_text(encoding="utf-8", errors="replace"))
        except Exception:  # gone, unreadable or no longer BibTeX: the built entry stands in
            continue
        for entry in library.entries:
            title = bib_title(entry)
            pid = paper_id_for(title) if title else ""
            if pid in wanted and pid not in found:
                found[pid] = (entry.key, entry.raw.strip())
    return found


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def base_key(paper: PaperInfo) -> str:
    """'smith2020deep': first author's last name, year, first word of the title that says something."""
    last = _ascii(paper.authors[0].split()[-1]).lower() if paper.authors else "anon"
    words = [w for w in re.findall(r"[a-z0-9]+", _ascii(paper.title).lower()) if w not in _STOP]
    return re.sub(r"[^a-z0-9]", "", last) + (str(paper.year) if paper.year else "") + (words[0] if words else "")


def _unique(key: str, used: set[str]) -> str:
    if key not in used:
        return key
    return next(f"{key}{suffix}" for suffix in "bcdefghijklmnopqrstuvwxyz" if f"{key}{suffix}" not in used)


def _escape(value: str) -> str:
    """Characters BibTeX and LaTeX treat as markup; braces are balanced by removing them."""
    value = value.replace("{", "").replace("}", "")
    return re.sub(r"([&%$#_])", r"\\\1", value)


def built_entry(c: Cited, key: str) -> str:
    p = c.paper
    fields = [("title", "{" + _escape(p.title) + "}"), ("author", " and ".join(_escape(a) for a in p.authors))]
    if p.year:
        fields.append(("year", str(p.year)))
    if p.venue:
        fields.append(("journal", _escape(p.venue)))
    if c.pages:
        fields.append(("note", "Cited pages: " + ", ".join(str(n) for n in sorted(set(c.pages)))))
    if p.source.lower().endswith(".pdf"):
        fields.append(("file", _escape(p.source)))
    kind = "article" if p.venue else "misc"
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@{kind}{{{key},\n{body}\n}}"
