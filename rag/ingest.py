"""Files -> stored papers, and papers out again: `ingest` and `remove`.

Each is a pure plan (what to add, update, keep or delete, worked out from what was read and what
is stored, testable without Chroma) and a run that applies it. The rules the plans keep are the
promises of docs/reliability.md: only what was given is pruned, a file read with problems keeps
its papers, a text never replaces another text of the same title, a removal target matches whole
paths only."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag import chunking, corpus, index, papers, pdf_cache
from rag.pdf_cache import PdfCache
from rag.embedding import Embedder
from rag.errors import InputError
from rag.settings import Settings
from rag.schema import StoredPaper
from rag.store import PaperWrite, Store
from rag.types import IngestReport, Paper, PaperInfo
from rag.zotero import library_file

Progress = Callable[[int, int], None]  # (done, total)
BATCH_CHUNKS = 64  # texts per embedding call and about per Chroma write; Ctrl-C stops within one


@dataclass
class Incoming:
    """A paper read in this ingest, with the file hash and every file it was read from."""

    paper: Paper
    file_hash: str
    sources: list[str]


@dataclass(frozen=True)
class Work:
    """A paper to embed and write, with what the store needs to replace its old version."""

    paper: Paper
    file_hash: str
    content_hash: str
    old_chunks: int
    sources: list[str]


@dataclass(frozen=True)
class SourceUpdate:
    """A stored paper whose text stays but whose list of files changes."""

    paper_id: str
    sources: list[str]
    file_hash: str
    chunks: int


@dataclass
class IngestPlan:
    to_embed: list[Work] = field(default_factory=list)
    updates: list[SourceUpdate] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    added: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class Seen:
    """What one ingest read: the files read whole (they vouch for which papers they hold), the
    paths given, and how to tell whether a stored source file still exists."""

    read_whole: set[str]
    given: list[str]
    still_there: Callable[[str], bool]


@dataclass(frozen=True)
class Removal:
    """Papers that would go, and papers that would only lose some sources (id -> sources left)."""

    drop: list[PaperInfo]
    trim: dict[str, list[str]]


# --- ingest ---------------------------------------------------------------------------------------


def run(settings: Settings, store: Store, embedder: Embedder, paths: list[Path] | None, progress: Progress | None, zotero: Path | None = None) -> IngestReport:
    """Index files, and the Zotero library in the folder `zotero` when given; unchanged papers
    cost nothing, changed ones are replaced in place. Every input is read before the store is
    touched; a file that cannot be read is skipped and named in `report.skipped`, unless nothing
    could be read."""
    started = time.perf_counter()
    roots = list(paths) if paths else ([] if zotero else [settings.seed_dir])
    batch = corpus.load_batch(roots, PdfCache(store.cache_dir / pdf_cache.FOLDER), zotero)
    if batch.skipped and not batch.files:
        more = f" (and {len(batch.skipped) - 1} more files skipped)" if len(batch.skipped) > 1 else ""
        raise InputError(f"{batch.skipped[0].path}: {batch.skipped[0].reason}{more}")
    if not batch.files:
        raise InputError(f"{', '.join(map(str, roots))}: no paper files found (PDF, BibTeX, .txt, .md)")
    incoming: dict[str, Incoming] = {}
    for f in batch.files:
        for paper in f.papers:
            add_incoming(incoming, paper, f.file_hash, f.path)
    report = IngestReport(files=len(batch.files), papers=len(incoming), skipped=[s.line() for s in batch.skipped], pages=sum(f.pages for f in batch.files))
    # On a shared Chroma server another machine's paths are not ours to judge. A Zotero library's
    # folder counts as given: a PDF gone from its storage/ is pruned like one gone from a folder.
    seen = Seen(
        read_whole={f.path for f in batch.files if not f.problems},
        given=[str(Path(p).resolve()) for p in roots] + ([str(library_file(zotero).resolve().parent)] if zotero else []),
        still_there=lambda source: bool(store.url) or Path(source).exists(),
    )
    with store.writer() as writer:
        existing = writer.stored_papers()
        writer.require_vectors_from(embedder.name)
        if not existing:
            writer.mark_vectors_from(embedder.name)
        merge_other_sources(incoming, existing, {f.path for f in batch.files}, seen.given)
        plan = plan_ingest(incoming, existing, seen)
        report.papers, report.added, report.updated, report.unchanged = len(incoming), plan.added, plan.updated, plan.unchanged
        for u in plan.updates:
            writer.update_file_hash(u.paper_id, u.sources[0], u.file_hash, u.chunks, u.sources)
        try:
            report.chunks_embedded = embed_and_store(settings, writer, embedder, plan.to_embed, progress)
            writer.delete_papers(plan.gone)
            report.removed = len(plan.gone)
        finally:
            # Even a failed ingest may have written some papers: caches must see them.
            if writer.dirty or not existing:
                index.rebuild(writer)
    report.seconds = time.perf_counter() - started
    return report


def reembed(store: Store, embedder: Embedder, progress: Progress | None) -> int:
    """Every stored chunk embedded again, from the title and text the store holds (no file is
    read), for a store whose vectors came from another embedder. The store names the new embedder
    only once every vector is replaced: an interrupted re-embed is refused by search and done
    again whole."""
    with store.writer() as writer:
        records = writer.all_chunks()
        if progress:
            progress(0, len(records))
        for i in range(0, len(records), BATCH_CHUNKS):
            part = records[i : i + BATCH_CHUNKS]
            writer.set_vectors([r.chunk_id for r in part], embedder.embed([chunking.dense_text(r.title, r.text) for r in part]))
            if progress:
                progress(i + len(part), len(records))
        writer.mark_vectors_from(embedder.name)
        index.rebuild(writer)
    return len(records)


def plan_ingest(incoming: dict[str, Incoming], existing: dict[str, StoredPaper], seen: Seen) -> IngestPlan:
    """What to embed, which stored papers only change their list of files, and which go. Only what
    was given is pruned: a paper goes when the file it came from was re-read without it, or was
    under a given folder and is gone. Papers of files not given stay, even when those files are
    unreachable (an unmounted drive), and a file read with problems keeps the papers it held."""
    plan = IngestPlan()
    for pid, new in incoming.items():
        old = existing.get(pid)
        chash = papers.content_hash(new.paper)
        kept = [s for s in (old.sources if old else ()) if s not in seen.read_whole and seen.still_there(s)]
        all_sources = sorted(set(new.sources) | set(kept))
        if old is None or old.content_hash != chash:
            plan.to_embed.append(Work(new.paper, new.file_hash, chash, old.chunks if old else 0, all_sources))
            plan.added += old is None
            plan.updated += old is not None
        else:
            if (list(old.sources), old.file_hash) != (all_sources, new.file_hash):
                plan.updates.append(SourceUpdate(pid, all_sources, new.file_hash, old.chunks))
            plan.unchanged += 1
    for pid, old in existing.items():
        if pid in incoming:
            continue
        remaining = [s for s in old.sources if s not in seen.read_whole and (not under(s, seen.given) or seen.still_there(s))]
        if not remaining:
            plan.gone.append(pid)
        elif remaining != list(old.sources):  # read again without this paper, but another file still has it
            plan.updates.append(SourceUpdate(pid, remaining, old.file_hash, old.chunks))
    return plan


def merge_other_sources(incoming: dict[str, Incoming], existing: dict[str, StoredPaper], read_sources: set[str], given: list[str]) -> None:
    """A paper read from one of its files (the PDF) is merged with its other files (the .bib)
    that this batch did not read, so its stored metadata does not flip with what was given. When
    the stored paper is another text of the same title (a note named like a listed paper), the
    newcomer becomes a paper of its own instead of replacing it."""
    wanted: dict[str, list[str]] = {}
    for pid in list(incoming):
        old = existing.get(pid)
        others = [s for s in (old.sources if old else ()) if s not in read_sources]
        unreachable = False
        for src in others:
            if Path(src).exists():
                wanted.setdefault(src, []).append(pid)
            else:
                unreachable = unreachable or not under(src, given)  # gone from a given folder: pruned
        new = incoming[pid]
        if unreachable and new.paper.kind != "record" and old.content_hash != papers.content_hash(new.paper):
            separate(incoming, pid)  # the stored text cannot be compared: never overwrite it
    for src, pids in wanted.items():
        try:
            other = corpus.read_file(Path(src))
        except InputError:
            continue  # unreadable now: it keeps its place as a source, as a skipped file would
        for paper in other.papers:
            new = incoming.get(paper.paper_id)
            if paper.paper_id not in pids or new is None:
                continue
            if papers.can_merge(new.paper, paper):
                incoming[paper.paper_id] = Incoming(papers.merge_sources(new.paper, paper), new.file_hash, new.sources + [src])
            else:
                separate(incoming, paper.paper_id)


def embed_and_store(settings: Settings, store: Store, embedder: Embedder, work: list[Work], progress: Progress | None) -> int:
    """Embed in slices of `BATCH_CHUNKS` texts, so Ctrl-C stops a long paper within a slice, and
    write whole papers only: a paper is stored once all its chunks have vectors."""
    batch_chunks = BATCH_CHUNKS
    planned = [(item, chunking.chunk_paper(item.paper, settings.chunk_words, settings.chunk_overlap)) for item in work]
    total = sum(len(chunks) for _, chunks in planned)
    done = 0
    if progress:
        progress(0, total)
    batch: list = []

    def flush():
        import numpy as np

        nonlocal done
        texts = [chunking.dense_text(item.paper.title, c.text) for item, chunks in batch for c in chunks]
        parts = []
        for i in range(0, len(texts), batch_chunks):
            parts.append(embedder.embed(texts[i : i + batch_chunks]))
            if progress and len(texts) > batch_chunks:
                progress(done + min(i + batch_chunks, len(texts)), total)
        vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
        row, items = 0, []
        for item, chunks in batch:
            items.append(PaperWrite(item.paper, chunks, vectors[row : row + len(chunks)], item.content_hash, item.file_hash, item.old_chunks, item.sources))
            row += len(chunks)
        store.put_papers(items)  # one Chroma write per batch
        done += row
        batch.clear()
        if progress:
            progress(done, total)

    for item, chunks in planned:
        batch.append((item, chunks))
        if sum(len(c) for _, c in batch) >= batch_chunks:
            flush()
    if batch:
        flush()
    return total


def add_incoming(incoming: dict[str, Incoming], paper: Paper, fhash: str, path: str) -> None:
    """One paper per title, unless two files hold different texts under it (see `papers.can_merge`)."""
    seen = incoming.get(paper.paper_id)
    if seen is None:
        incoming[paper.paper_id] = Incoming(paper, fhash, [path])
    elif path in seen.sources:
        return
    elif papers.can_merge(seen.paper, paper):
        incoming[paper.paper_id] = Incoming(papers.merge_sources(seen.paper, paper), seen.file_hash, seen.sources + [path])
    else:
        add_incoming(incoming, papers.distinct_id(paper), fhash, path)


def separate(incoming: dict[str, Incoming], pid: str) -> None:
    """Move a paper read in this batch to its own id: the title's id belongs to another text."""
    new = incoming.pop(pid)
    moved = papers.distinct_id(new.paper)
    incoming[moved.paper_id] = Incoming(moved, new.file_hash, new.sources)


# --- remove ---------------------------------------------------------------------------------------


def plan_removal(infos: list[PaperInfo], targets: list[str]) -> Removal:
    """What `remove` would do. A target is a paper id, an existing file or folder, or a path a paper
    was stored from (a file since deleted, a folder on an unmounted drive), compared as whole path
    components, never as a substring: `rag remove ''` or `rag remove e` once matched every stored
    path. Any other target is an error, before any change."""
    by_id = {p.paper_id: p for p in infos}
    drop: dict[str, PaperInfo] = {}
    left: dict[str, list[str]] = {}
    for target in targets:
        if not target.strip():
            raise InputError("an empty target: give a paper id (see `rag papers`) or a file or folder")
        if target in by_id:
            drop[target] = by_id[target]
            continue
        wanted = str(Path(target).expanduser().resolve())
        hits = [p for p in infos if any(under(s, [wanted]) for s in p.sources)]
        if not hits:
            raise InputError(f"{target}: no indexed paper has this id or was read from this path; see `rag papers -v`")
        for p in hits:
            left[p.paper_id] = [s for s in left.get(p.paper_id, list(p.sources)) if not under(s, [wanted])]
    trim = {}
    for pid, sources in left.items():
        if pid in drop:
            continue
        if sources:
            trim[pid] = sources
        else:
            drop[pid] = by_id[pid]
    return Removal(sorted(drop.values(), key=lambda p: p.title.lower()), trim)


def apply_removal(store: Store, plan: Removal) -> None:
    """A paper also read from another file only loses that source; it goes when it has none left."""
    with store.writer() as writer:
        stored = writer.stored_papers()
        for pid, sources in plan.trim.items():
            old = stored[pid]
            writer.update_file_hash(pid, sources[0], old.file_hash, old.chunks, sources)
        writer.delete_papers([p.paper_id for p in plan.drop])
        if plan.drop:
            index.rebuild(writer)


def under(source: str, roots: list[str]) -> bool:
    """Whether a stored path is one of the given paths or inside a given folder (whole components)."""
    return any(source == r or source.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
