"""The chunk metadata in Chroma: the one owner of its fields. Every chunk carries its paper's id,
title, authors, sources and hashes, so the store is the single source of truth (no side manifest
that could disagree with it after a crash). The store writes and reads metadata only through
these functions; a filter is pure data that `where` and `matches` turn into Chroma's terms."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rag.filters import Filters
from rag.types import Chunk, Paper, PaperInfo

AUTHOR_SEP = "; "


@dataclass(frozen=True)
class StoredPaper:
    """What an ingest compares against: a stored paper's hashes, files and chunk count."""

    paper_id: str
    content_hash: str
    source: str
    file_hash: str
    chunks: int
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperWrite:
    """One paper to write: its chunks and their vectors, the hashes that say what was written, how
    many chunks the store held for it before (0 for a new paper) and every file it was read from."""

    paper: Paper
    chunks: Sequence[Chunk]
    vectors: np.ndarray
    content_hash: str
    file_hash: str
    old_chunks: int = 0
    sources: Sequence[str] | None = None


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: str
    paper_id: str
    title: str
    authors: tuple[str, ...]
    text: str
    page: int | None = None


@dataclass(frozen=True)
class DenseHit:
    record: ChunkRecord
    similarity: float


def paper_meta(paper: Paper, sources: list[str], file_hash: str) -> dict:
    """The fields every chunk of a paper carries; `content_hash` is stamped once all are written."""
    meta = {
        "paper_id": paper.paper_id,
        "title": paper.title,
        "authors": AUTHOR_SEP.join(paper.authors),
        **source_fields(sources, file_hash),
        "content_hash": "",
    }
    if paper.year is not None:
        meta["year"] = paper.year
    if paper.venue:
        meta["venue"] = paper.venue
    if paper.categories:
        meta["categories"] = " ".join(paper.categories)
    if paper.references:
        meta["references"] = json.dumps(list(paper.references))
    return meta


def chunk_meta(meta: dict, chunk: Chunk) -> dict:
    """A chunk's metadata; the paper's reference list rides on its first chunk only."""
    out = {**meta, "chunk_index": chunk.index, **({"page": chunk.page} if chunk.page is not None else {})}
    if chunk.index:
        out.pop("references", None)
    return out


def references_of(meta: dict) -> list[str]:
    try:
        return list(json.loads(meta.get("references") or "[]"))
    except ValueError:
        return []


def source_fields(sources: list[str], file_hash: str) -> dict:
    return {"source": sources[0], "sources": json.dumps(sources), "file_hash": file_hash}  # Chroma metadata holds scalars only


def sources_of(meta: dict) -> list[str]:
    """Every file a stored paper was read from; stores written before sources were lists have one."""
    raw = meta.get("sources")
    if raw:
        try:
            return list(json.loads(raw))
        except ValueError:
            pass
    return [meta["source"]] if meta.get("source") else []


def record(chunk_id: str, document: str, meta: dict) -> ChunkRecord:
    authors = tuple(a for a in (meta.get("authors") or "").split(AUTHOR_SEP) if a)
    page = meta.get("page")
    return ChunkRecord(chunk_id, meta["paper_id"], meta["title"], authors, document or "", int(page) if page is not None else None)


def stored_paper(meta: dict, chunks: int = 0) -> StoredPaper:
    return StoredPaper(meta["paper_id"], meta["content_hash"], meta["source"], meta["file_hash"], chunks, tuple(sources_of(meta)))


def paper_info(meta: dict, chunks: int) -> PaperInfo:
    rec = record("", "", meta)
    year = meta.get("year")
    return PaperInfo(
        meta["paper_id"], rec.title, rec.authors, meta["source"], chunks,
        int(year) if year is not None else None, tuple(sources_of(meta)), meta.get("venue", ""),
        tuple(str(meta.get("categories", "")).split()),
    )


def where(filters: Filters | None) -> dict | None:
    """The part of a filter Chroma can do itself: the year range on the numeric `year` field."""
    if filters is None:
        return None
    parts = []
    if filters.year_from is not None:
        parts.append({"year": {"$gte": filters.year_from}})
    if filters.year_to is not None:
        parts.append({"year": {"$lte": filters.year_to}})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def matches(filters: Filters | None, meta: dict) -> bool:
    """The substring parts, which Chroma's metadata filters cannot express, on one chunk's metadata."""
    if filters is None:
        return True
    if filters.title and filters.title.lower() not in str(meta.get("title", "")).lower():
        return False
    if filters.author and filters.author.lower() not in str(meta.get("authors", "")).lower():
        return False
    if filters.category and not any(filters.category_matches(c) for c in str(meta.get("categories", "")).split()):
        return False
    return not filters.source or any(filters.source_matches(s) for s in sources_of(meta))
