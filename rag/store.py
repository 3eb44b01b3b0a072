"""Chunks and their vectors in a persistent Chroma collection.

Everything the tool knows about what is indexed lives in the chunk metadata (paper id, title,
authors, source file and hashes), so the store is the single source of truth: there is no side
manifest that could disagree with it after a crash. Vectors are computed by our own embedder and
passed in, so Chroma's default (downloading) embedding function is never used.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import re
import shlex
import shutil
import sqlite3
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from rag.errors import RagError, StoreError
from rag.filters import Filters, sources_of
from rag.types import Chunk, Paper, PaperInfo

AUTHOR_SEP = "; "


@dataclass(frozen=True)
class StoredPaper:
    paper_id: str
    content_hash: str
    source: str
    file_hash: str
    chunks: int
    sources: tuple[str, ...] = ()


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


def _record(chunk_id: str, document: str, meta: dict) -> ChunkRecord:
    authors = tuple(a for a in (meta.get("authors") or "").split(AUTHOR_SEP) if a)
    page = meta.get("page")
    return ChunkRecord(chunk_id, meta["paper_id"], meta["title"], authors, document or "", int(page) if page is not None else None)


def _join_chunks(texts: list[str]) -> str:
    joined = texts[0] if texts else ""
    for text in texts[1:]:
        overlap = next((i for i in range(min(len(joined), len(text)), 10, -1) if joined.endswith(text[:i])), 0)
        joined = f"{joined} {text[overlap:].lstrip()}" if overlap < len(text) else joined
    return joined


_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_SPACE = 16 << 20  # below this much free space, a failing store is most likely a full disk
_NO_WRITE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def _store_failure(exc: BaseException) -> bool:
    """Errors that come from the store's files or Chroma (which raises many types), as opposed to
    bugs in this code: these become one `StoreError` line."""
    if isinstance(exc, (OSError, sqlite3.Error)):
        return True
    return type(exc).__module__.split(".")[0] in ("chromadb", "httpx", "httpcore")


def _guarded(method):
    """Chroma's and the file system's exceptions out of a Store method become one StoreError line."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RagError:
            raise
        except Exception as exc:
            if not _store_failure(exc):
                raise
            raise self.error_for(exc) from None

    return wrapper


class Store:
    """One Chroma collection in `data_dir`; opened lazily so commands that fail early stay fast.

    Before Chroma opens an embedded store its files are checked (`rag.health.check`): a damaged
    store is one error line naming the recovery, never a segfault. A store this process cannot
    write (a read-only data dir) is opened from a temporary copy, since Chroma writes to its files
    even to read them; writing to such a store is refused."""

    def __init__(self, data_dir: Path, collection: str = "papers", url: str | None = None):
        self.data_dir = Path(data_dir)
        self.collection_name = collection
        self.url = url  # a Chroma server instead of the embedded store; data_dir then only holds caches
        self._client = None
        self._collection = None
        self._copy: Path | None = None  # the temporary copy a read-only store was opened from
        self._opening_to_write = False  # what `_col` is opening the store for, read by `_connect`
        self._drop_copy = lambda: None  # removes that copy
        self.dirty = False  # written since the generation was last bumped

    @property
    def path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def location(self) -> str:
        return self.url or str(self.data_dir)

    @property
    def cache_dir(self) -> Path:
        """Where caches built from this store live (the BM25 index): one folder per server."""
        if not self.url:
            return self.data_dir
        return self.data_dir / "servers" / re.sub(r"[^A-Za-z0-9.-]+", "_", f"{self.url}_{self.collection_name}")

    def exists(self) -> bool:
        return bool(self.url) or (self.path / "chroma.sqlite3").exists()

    def _connect(self):
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if not self.url:
            path = self._local_path(self._opening_to_write)
            try:
                return chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            except Exception as exc:  # a damaged SQLite file fails here, typed by Chroma
                if not _store_failure(exc):
                    raise
                raise self.error_for(exc) from None
        parts = urlsplit(self.url)
        if not parts.hostname:
            raise StoreError(f"--chroma-url needs http://HOST:PORT, got {self.url!r}")
        try:
            return chromadb.HttpClient(
                host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https", settings=chroma_settings,
            )
        except Exception as exc:  # connection errors surface here, typed by the HTTP library
            raise StoreError(f"cannot reach the Chroma server at {self.url} ({exc.__class__.__name__}); is it running?") from None

    # --- opening the embedded store safely ------------------------------------------------------

    def _local_path(self, create: bool) -> Path:
        """Where Chroma should open the embedded store: its own folder once its files pass the
        health check, or a temporary copy when this process cannot write it and only reads."""
        from rag import health

        problems = health.check(self.path)
        if problems:
            raise self.damaged(problems[0])
        if not create and self.exists() and not health.writable(self.path):
            return self._readonly_copy()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self.error_for(exc) from None
        if not health.writable(self.path):
            raise self.cannot_write("permission denied")
        return self.path

    def _readonly_copy(self) -> Path:
        """Copy the store's folder to a temporary one that Chroma may write, removed when this
        Store goes (or the process ends). Nothing written there reaches the data dir."""
        if self._copy is None:
            tmp = Path(tempfile.mkdtemp(prefix="rag-readonly-"))
            self._drop_copy = weakref.finalize(self, shutil.rmtree, str(tmp), True)
            try:
                shutil.copytree(self.path, tmp / "chroma", copy_function=shutil.copyfile)
                for root, dirs, files in os.walk(tmp):  # copytree kept the folders' read-only modes
                    os.chmod(root, 0o700)
                    for name in files:
                        os.chmod(os.path.join(root, name), 0o600)
            except OSError as exc:
                raise StoreError(
                    f"the data dir {self.data_dir} is read-only and its store could not be copied to "
                    f"{tempfile.gettempdir()} to be read ({exc.strerror or exc}); set TMPDIR to a folder with space"
                ) from None
            self._copy = tmp / "chroma"
        return self._copy

    @property
    def read_only(self) -> bool:
        """Whether this store was opened from a temporary copy (its data dir cannot be written)."""
        return self._copy is not None

    def close(self) -> None:
        """Forget the open collection (the next use opens the store again) and remove the
        temporary copy of a read-only store."""
        self._client = self._collection = self._copy = None
        self._drop_copy()

    # --- one-line errors ---------------------------------------------------------------------

    def damaged(self, problem: str) -> StoreError:
        from rag import health

        error = StoreError(
            f"the store in {self.data_dir} is damaged ({problem}); the only recovery is a fresh store, "
            f"re-ingested: {health.recovery(self.data_dir)}"
        )
        error.fix = health.recovery(self.data_dir)  # what `rag doctor` prints after `-> run`
        return error

    def cannot_write(self, reason: str) -> StoreError:
        return StoreError(
            f"cannot write to the data dir {self.data_dir} ({reason}); `rag ingest` and `rag remove` need "
            f"write access to it (search, papers and doctor work read-only)"
        )

    def error_for(self, exc: BaseException) -> StoreError:
        """One line for an exception out of Chroma or the file system: a full disk, a folder that
        cannot be written, a damaged store (with its recovery), or what Chroma said."""
        text = " ".join(str(exc).split())
        low = text.lower()
        code = getattr(exc, "errno", None)
        if code in _NO_SPACE or "disk is full" in low or "no space left" in low or "quota exceeded" in low:
            where = f"the Chroma server at {self.url}" if self.url else f"the device of the data dir {self.data_dir}"
            return StoreError(
                f"no space left on {where}; papers stored before this command are intact: free some space and run it again"
            )
        if not self.url and (code in _NO_WRITE or "readonly database" in low or "read-only" in low or "permission denied" in low):
            return self.cannot_write(getattr(exc, "strerror", None) or text[:120])
        if self.url:
            return StoreError(f"the Chroma server at {self.url} failed ({exc.__class__.__name__}: {text[:200]})")
        free = self._free_bytes()
        if free is not None and free < LOW_SPACE:
            # Chroma applies its write log even to read, so a full disk fails reads with unrelated words
            error = StoreError(
                f"the store in {self.data_dir} failed ({exc.__class__.__name__}: {text[:160]}) with {free // 1024} KiB free on its "
                "device: free some space and run the command again (papers stored before are intact)"
            )
            error.fix = f"df -h {shlex.quote(str(self.data_dir))}"  # after `-> run`: shows the full device
            return error
        if any(k in low for k in ("not a database", "malformed", "corrupt", "hnsw", "segment reader", "index_metadata")):
            return self.damaged(text[:200])
        return StoreError(f"the store in {self.data_dir} failed ({exc.__class__.__name__}: {text[:200]}); run `rag doctor` to check it")

    def _free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.data_dir).free
        except OSError:
            return None

    def _col(self, create: bool = False):
        if self._collection is not None:
            return self._collection
        if not create and not self.exists():
            raise StoreError(f"nothing is indexed in {self.location}; run `rag ingest` first")
        self._opening_to_write = create
        self._client = self._connect()
        try:
            if create:
                self._collection = self._client.get_or_create_collection(
                    self.collection_name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
                )
            else:
                self._collection = self._client.get_collection(self.collection_name, embedding_function=None)
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; the user needs one line
            if not create and "does not exist" in str(exc):
                raise StoreError(f"nothing is indexed in {self.location}; run `rag ingest` first") from None
            if _store_failure(exc):
                raise self.error_for(exc) from None
            raise StoreError(f"cannot open the store at {self.url or self.path}: {exc}") from None
        return self._collection

    @contextlib.contextmanager
    def writer(self) -> Iterator["Store"]:
        """One writer at a time: Chroma's embedded store is not safe for concurrent writers. A Chroma
        server orders concurrent writes itself, so no lock is taken for it."""
        from filelock import FileLock, Timeout

        if self.url:
            self._col(create=True)
            yield self
            return

        if self._copy is not None:  # opened read-only to search: writing needs the store itself
            self.close()
        lock_path = self.data_dir / "ingest.lock"
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.data_dir, os.W_OK) or (lock_path.exists() and not os.access(lock_path, os.W_OK)):
                raise self.cannot_write("permission denied")
            lock = FileLock(str(lock_path))
            lock.acquire(timeout=0.5)
        except Timeout:
            raise StoreError(f"another ingest is running on {self.data_dir}; wait for it to finish") from None
        except OSError as exc:
            raise self.error_for(exc) from None
        try:
            self._col(create=True)
            yield self
        except OSError as exc:  # a full disk (or a folder made read-only) in the middle of a write
            if exc.errno in _NO_SPACE | _NO_WRITE:
                raise self.error_for(exc) from None
            raise
        finally:
            lock.release()

    # --- reading -------------------------------------------------------------------------

    @_guarded
    def count(self) -> int:
        return self._col().count()

    @_guarded
    def generation(self) -> int:
        """Bumped by every write, so caches built from the store know when they are stale. Read
        fresh each time: another process (or another `Rag`) may have written since we opened it."""
        self._col()
        return int((self._client.get_collection(self.collection_name).metadata or {}).get("generation", 0))

    @_guarded
    def stored_papers(self) -> dict[str, StoredPaper]:
        got = self._col().get(include=["metadatas"])
        papers: dict[str, StoredPaper] = {}
        counts: dict[str, int] = {}
        mixed: set[str] = set()
        for meta in got["metadatas"] or []:
            pid = meta["paper_id"]
            counts[pid] = counts.get(pid, 0) + 1
            if pid in papers and papers[pid].content_hash != meta["content_hash"]:
                mixed.add(pid)
            papers[pid] = StoredPaper(pid, meta["content_hash"], meta["source"], meta["file_hash"], 0, tuple(sources_of(meta)))
        # Chunks of one paper with different content hashes are what a write interrupted between its
        # upsert and its clean-up leaves behind; an empty hash makes the next ingest rewrite the paper.
        return {
            pid: StoredPaper(p.paper_id, "" if pid in mixed else p.content_hash, p.source, p.file_hash, counts[pid], p.sources)
            for pid, p in papers.items()
        }

    @_guarded
    def paper_infos(self, filters: Filters | None = None) -> list[PaperInfo]:
        got = self._col().get(where=filters.where() if filters else None, include=["metadatas"])
        infos: dict[str, PaperInfo] = {}
        for meta in got["metadatas"] or []:
            if filters and not filters.matches(meta):
                continue
            pid = meta["paper_id"]
            seen = infos.get(pid)
            rec = _record("", "", meta)
            year = meta.get("year")
            infos[pid] = PaperInfo(
                pid, rec.title, rec.authors, meta["source"], (seen.chunks if seen else 0) + 1,
                int(year) if year is not None else None, tuple(sources_of(meta)), meta.get("venue", ""),
            )
        return sorted(infos.values(), key=lambda p: p.title.lower())

    def matching_paper_ids(self, filters: Filters) -> list[str]:
        """Papers passing the filters: the year range in Chroma's `where`, substrings on the metadata."""
        return sorted({p.paper_id for p in self.paper_infos(filters)})

    @_guarded
    def all_chunks(self) -> list[ChunkRecord]:
        got = self._col().get(include=["documents", "metadatas"])
        return [_record(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    @_guarded
    def paper_texts(self, paper_ids: Sequence[str]) -> dict[str, str]:
        """Whole papers rebuilt from their chunks, dropping the sentences repeated as overlap."""
        if not paper_ids:
            return {}
        got = self._col().get(where={"paper_id": {"$in": list(paper_ids)}}, include=["documents", "metadatas"])
        parts: dict[str, list[tuple[int, str]]] = {}
        for doc, meta in zip(got["documents"], got["metadatas"]):
            parts.setdefault(meta["paper_id"], []).append((int(meta.get("chunk_index", 0)), doc or ""))
        return {pid: _join_chunks([t for _, t in sorted(chunks)]) for pid, chunks in parts.items()}

    @_guarded
    def chunk_vectors(self, paper_ids: Sequence[str]) -> list[tuple[ChunkRecord, np.ndarray]]:
        if not paper_ids:
            return []
        got = self._col().get(where={"paper_id": {"$in": list(paper_ids)}}, include=["documents", "metadatas", "embeddings"])
        return [
            (_record(i, d, m), np.asarray(e, dtype=np.float32))
            for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])
        ]

    @_guarded
    def vectors_by_id(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of these chunks (ids that are not stored are left out). A lookup by id is
        about half the time of the same chunks fetched with a metadata filter."""
        if not chunk_ids:
            return {}
        got = self._col().get(ids=list(chunk_ids), include=["embeddings"])
        return {i: np.asarray(e, dtype=np.float32) for i, e in zip(got["ids"], got["embeddings"])}

    @_guarded
    def query(self, embedding: np.ndarray, n: int, paper_ids: Sequence[str] | None = None) -> list[DenseHit]:
        """Nearest chunks; with `paper_ids`, only among those papers (a filter, applied by Chroma).
        Chroma returns what it has when asked for more, so no count() first (a query's worth of time)."""
        col = self._col()
        if n <= 0 or (paper_ids is not None and not paper_ids):
            return []
        where = {"paper_id": {"$in": list(paper_ids)}} if paper_ids is not None else None
        got = col.query(query_embeddings=[embedding.tolist()], n_results=n, where=where, include=["documents", "metadatas", "distances"])
        return [
            DenseHit(_record(i, d, m), 1.0 - float(dist))
            for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]

    # --- writing (inside `writer()`) -------------------------------------------------------

    def put_paper(
        self, paper: Paper, chunks: Sequence[Chunk], vectors: np.ndarray, content_hash: str, file_hash: str, old_chunks: int,
        sources: Sequence[str] | None = None,
    ) -> None:
        self.put_papers([(paper, chunks, vectors, content_hash, file_hash, old_chunks, sources)])

    @_guarded
    def put_papers(self, items: Sequence[tuple]) -> None:
        """Write many papers in one upsert (one Chroma write per batch, not per paper: at 1,000
        papers the per-paper writes were ~15% of the ingest), then drop each paper's leftover chunks.
        Each item is (paper, chunks, vectors, content_hash, file_hash, old_chunks, sources), as for
        `put_paper`. Upsert first, clean up after, and stamp the content hash last: a crash at any
        point never loses a paper, and what it leaves (chunks with no hash or an older one) makes
        `stored_papers` report the paper as changed, so the next ingest writes it again. A paper
        longer than one Chroma batch was once stamped complete by its first batch."""
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        documents: list[str] = []
        metadatas: list[dict] = []
        hashes: list[str] = []
        replaced: list[str] = []  # papers already in the store: their old chunks may outnumber the new
        for paper, chunks, vecs, content_hash, file_hash, old_chunks, sources in items:
            sources = list(sources or [paper.source])
            meta = {
                "paper_id": paper.paper_id,
                "title": paper.title,
                "authors": AUTHOR_SEP.join(paper.authors),
                "source": sources[0],
                "sources": json.dumps(sources),  # Chroma metadata holds scalars only
                "file_hash": file_hash,
                "content_hash": "",  # stamped below, once every chunk is written
            }
            if paper.year is not None:
                meta["year"] = paper.year
            if paper.venue:
                meta["venue"] = paper.venue
            ids += [c.chunk_id for c in chunks]
            vectors.append(np.asarray(vecs, dtype=np.float32).reshape(len(chunks), -1))
            documents += [c.text for c in chunks]
            metadatas += [{**meta, "chunk_index": c.index, **({"page": c.page} if c.page is not None else {})} for c in chunks]
            hashes += [content_hash] * len(chunks)
            if old_chunks:
                replaced.append(paper.paper_id)
        if not ids:
            return
        col = self._col(create=True)
        self.dirty = True
        matrix = np.concatenate(vectors)
        step = self._max_batch()
        for i in range(0, len(ids), step):
            col.upsert(ids=ids[i : i + step], embeddings=matrix[i : i + step], documents=documents[i : i + step], metadatas=metadatas[i : i + step])
        if replaced:
            # Every chunk the store holds for these papers that this write did not produce, whatever
            # its index: counting chunks would miss leftovers of an earlier interrupted write.
            keep = set(ids)
            got = col.get(where={"paper_id": {"$in": replaced}}, include=[])
            stale = [i for i in got["ids"] if i not in keep]
            for i in range(0, len(stale), step):
                col.delete(ids=stale[i : i + step])
        stamped = [{**m, "content_hash": h} for m, h in zip(metadatas, hashes)]
        for i in range(0, len(ids), step):
            col.update(ids=ids[i : i + step], metadatas=stamped[i : i + step])

    def _max_batch(self) -> int:
        try:
            return max(1, int(self._client.get_max_batch_size()))
        except Exception:  # an older or remote client without it
            return 1000

    @_guarded
    def update_file_hash(self, paper_id: str, source: str, file_hash: str, chunks: int, sources: Sequence[str] | None = None) -> None:
        ids = [f"{paper_id}:{i}" for i in range(chunks)]
        col = self._col(create=True)  # not `dirty`: no cached text or title changes
        got = col.get(ids=ids, include=["metadatas"])
        sources = list(sources or [source])
        new = {"source": sources[0], "sources": json.dumps(sources), "file_hash": file_hash}
        col.update(ids=got["ids"], metadatas=[{**m, **new} for m in got["metadatas"]])

    @_guarded
    def delete_papers(self, paper_ids: Sequence[str]) -> None:
        if paper_ids:
            self.dirty = True
            self._col(create=True).delete(where={"paper_id": {"$in": list(paper_ids)}})

    @_guarded
    def bump_generation(self) -> int:
        # A timestamp, not just +1: two clients of one server writing at once must not both
        # claim the same generation, or one's cached index would hide the other's papers.
        gen = max(self.generation() + 1, time.time_ns() // 1000)
        self._col(create=True).modify(metadata={"generation": gen})
        self.dirty = False
        return gen
