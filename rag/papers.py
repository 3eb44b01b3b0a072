"""A paper's identity and the merging of one paper read from several files: its id, the hash that
says its indexed content changed, when two files' papers of one title are one paper, and the text
clean-up every reader applies. Readers and the corpus both build on this module; it imports
neither."""

from __future__ import annotations

import dataclasses
import hashlib
import re

from rag.text import normalize_title
from rag.types import Paper

_SEE_MORE = re.compile(r"(\s?)(?:…|\.\.\.)\s*\(see more\)\s*", re.IGNORECASE)
_TRAILING_ELLIPSIS = re.compile(r"\s*(?:…|\.\.\.)\s*$")
_NAME_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "le", "la", "del", "dos", "bin", "al", "el", "y", "st."}
_TITLE_WORDS = {
    "learning", "network", "networks", "neural", "deep", "model", "models", "graph", "graphs", "data",
    "towards", "toward", "using", "via", "analysis", "search", "optimization", "optimisation", "training",
    "reinforcement", "representation", "representations", "attention", "transformer", "transformers",
    "benchmarking", "benchmark", "curriculum", "inference", "generation", "language", "systems", "control",
}
_NOT_IN_NAMES = {"a", "an", "the", "of", "for", "in", "on", "with", "and", "to", "from", "by", "is", "are", "at", "as", "we"}


def paper_id_for(title: str) -> str:
    """Stable across files and runs, so the same paper seen twice merges into one."""
    return hashlib.sha1(normalize_title(title).encode()).hexdigest()[:12]


def content_hash(paper: Paper) -> str:
    """Changes when anything that is indexed changes; the source path is deliberately left out."""
    h = hashlib.sha1()
    for part in (paper.title, "|".join(paper.authors), paper.abstract):
        h.update(part.encode())
        h.update(b"\0")
    if paper.year is not None or paper.venue:  # only then, so hashes of older stores stay valid
        h.update(f"{paper.year}|{paper.venue}".encode())
    if paper.categories:
        h.update(("categories:" + " ".join(paper.categories)).encode())
    for block in paper.blocks:
        h.update(f"{block.page}|{block.section}|{block.text}".encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def clean_text(text: str) -> str:
    text = _SEE_MORE.sub(lambda m: m.group(1), text)
    text = _TRAILING_ELLIPSIS.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def looks_like_author(line: str) -> bool:
    """A personal name: 2-5 capitalised words, no punctuation a title would have."""
    if len(line) > 45 or re.search(r"[:?!,;()\[\]0-9\"]", line):
        return False
    tokens = line.split()
    if not 2 <= len(tokens) <= 5:
        return False
    for token in tokens:
        low = token.lower()
        if low in _NOT_IN_NAMES or low in _TITLE_WORDS:
            return False
        if not (token[0].isupper() or low in _NAME_PARTICLES):
            return False
    return True


def merge_papers(papers) -> list[Paper]:
    """One paper per title: the longest abstract and the first non-empty author list win."""
    merged: dict[str, Paper] = {}
    for p in papers:
        seen = merged.get(p.paper_id)
        if seen is None:
            merged[p.paper_id] = p
            continue
        merged[p.paper_id] = dataclasses.replace(
            seen,
            authors=seen.authors or p.authors,
            abstract=seen.abstract if len(seen.abstract) >= len(p.abstract) else p.abstract,
            year=seen.year if seen.year is not None else p.year,
            venue=seen.venue or p.venue,
            categories=seen.categories or p.categories,
        )
    return list(merged.values())


def can_merge(a: Paper, b: Paper) -> bool:
    """Whether two files' papers of one title are the same paper. A bibliographic record (listing or
    BibTeX entry) joins a PDF or another record; two texts of their own (two PDFs, a note and
    anything) join only when the text is the same. Otherwise a note titled like a stored paper would
    silently replace that paper's text."""
    if content_hash(a) == content_hash(b):
        return True
    kinds = {a.kind, b.kind}
    return "note" not in kinds and kinds != {"pdf"}


def distinct_id(paper: Paper) -> Paper:
    """The same title read from a file whose text is not that paper's: a paper of its own, with an
    id that stays the same across runs for the same file."""
    return dataclasses.replace(paper, paper_id=paper_id_for(f"{paper.title}\n{paper.source}"))


def merge_sources(a: Paper, b: Paper) -> Paper:
    """The same paper from two files (a PDF and its BibTeX entry): the full text comes from the file
    that has it, the bibliographic fields from the record that is only bibliography, which is the
    more reliable of the two; the result does not depend on which file came first."""
    full, record = (a, b) if len(a.blocks) >= len(b.blocks) else (b, a)
    return Paper(
        paper_id=a.paper_id,
        title=record.title if not record.blocks else full.title,
        authors=record.authors or full.authors,
        abstract=record.abstract if record.abstract and not record.blocks else max((a.abstract, b.abstract), key=len),
        source=a.source,
        year=record.year if record.year is not None else full.year,
        venue=record.venue or full.venue,
        blocks=full.blocks,
        kind=full.kind if full.kind != "record" else record.kind,
        categories=record.categories or full.categories,
        references=full.references or record.references,
    )
