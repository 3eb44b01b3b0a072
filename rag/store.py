"""Chunks and their vectors in a persistent Chroma collection. Everything the tool knows about
what is indexed lives in the chunk metadata (paper id, title, authors, files, hashes, a PDF's
reference list), so the store is the single source of truth: no side manifest could disagree with
it after a crash. Vectors come from our own embedder; Chroma's (downloading) one is never used."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlsplit

import numpy as np

from rag import health, schema, store_errors
from rag.chunking import chunk_id
from rag.errors import RagError, StoreError
from rag.filters import Filters
from rag.schema import ChunkRecord, DenseHit, PaperWrite, StoredPaper
from rag.text import join_overlapping
from rag.types import PaperInfo

LEGACY_EMBEDDER = "minilm-l6-int8"  # the one embedder there was before a store recorded its own


def _guarded(method):
    """Chroma's and the file system's exceptions out of a Store method become one StoreError line."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RagError:
            raise
        except Exception as exc:
            if not store_errors.is_store_failure(exc):
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
                if not store_errors.is_store_failure(exc):
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
        """A temporary copy of the store that Chroma may write, removed when this Store goes (or
        the process ends). Nothing written there reaches the data dir."""
        if self._copy is None:
            tmp = Path(tempfile.mkdtemp(prefix="rag-readonly-"))
            self._drop_copy = weakref.finalize(self, shutil.rmtree, str(tmp), True)
            self._copy = health.copy_to_read(self.path, tmp / "chroma", self.data_dir)
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

    # --- one-line errors (rag/store_errors.py words them) ----------------------------------

    def damaged(self, problem: str) -> StoreError:
        return store_errors.damaged(self.data_dir, problem)

    def cannot_write(self, reason: str) -> StoreError:
        return store_errors.cannot_write(self.data_dir, reason)

    def error_for(self, exc: BaseException) -> StoreError:
        return store_errors.error_for(self.data_dir, self.url, exc)

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
            if store_errors.is_store_failure(exc):
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
            if exc.errno in store_errors.NO_SPACE | store_errors.NO_WRITE:
                raise self.error_for(exc) from None
            raise
        finally:
            lock.release()

    # --- reading -------------------------------------------------------------------------

    @_guarded
    def count(self) -> int:
        return self._col().count()

    def _metadata(self) -> dict:
        """The collection's metadata, read fresh (another process may have written); without Chroma until it is opened here."""
        found = health.collection_metadata(self.path, self.collection_name) if self._collection is None and not self.url else None
        if found is not None:
            return found
        self._col()
        return dict(self._client.get_collection(self.collection_name).metadata or {})

    @_guarded
    def generation(self) -> int:
        """Bumped by every write, so caches built from the store know when they are stale."""
        return int(self._metadata().get("generation", 0))

    @_guarded
    def require_vectors_from(self, embedder: str) -> None:
        """A store holding another embedder's vectors is refused, naming the command that fixes it."""
        stored = self._metadata().get("embedder")
        if stored == embedder:  # no count: a search from the cache never opens Chroma
            return
        count = self._col().count()
        if count and (stored or LEGACY_EMBEDDER) != embedder:
            raise store_errors.other_embedder(self.location, str(stored or LEGACY_EMBEDDER), embedder, count)

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
            papers[pid] = schema.stored_paper(meta)
        # Chunks of one paper with different content hashes are what a write interrupted between its
        # upsert and its clean-up leaves behind; an empty hash makes the next ingest rewrite the paper.
        return {
            pid: StoredPaper(p.paper_id, "" if pid in mixed else p.content_hash, p.source, p.file_hash, counts[pid], p.sources)
            for pid, p in papers.items()
        }

    @_guarded
    def paper_infos(self, filters: Filters | None = None) -> list[PaperInfo]:
        got = self._col().get(where=schema.where(filters), include=["metadatas"])
        infos: dict[str, PaperInfo] = {}
        for meta in got["metadatas"] or []:
            if schema.matches(filters, meta):
                seen = infos.get(meta["paper_id"])
                infos[meta["paper_id"]] = schema.paper_info(meta, (seen.chunks if seen else 0) + 1)
        return sorted(infos.values(), key=lambda p: p.title.lower())

    def matching_paper_ids(self, filters: Filters) -> list[str]:
        """Papers passing the filters: the year range in Chroma's `where`, substrings on the metadata."""
        return sorted({p.paper_id for p in self.paper_infos(filters)})

    @_guarded
    def all_chunks(self) -> list[ChunkRecord]:
        got = self._col().get(include=["documents", "metadatas"])
        return [schema.record(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    @_guarded
    def references(self, paper_id: str) -> list[str]:
        """A PDF's reference list (kept on its first chunk, never embedded); [] when it has none."""
        got = self._col().get(where={"$and": [{"paper_id": paper_id}, {"chunk_index": 0}]}, include=["metadatas"])
        return schema.references_of(got["metadatas"][0]) if got["metadatas"] else []

    @_guarded
    def paper_texts(self, paper_ids: Sequence[str]) -> dict[str, str]:
        """Whole papers rebuilt from their chunks, dropping the sentences repeated as overlap."""
        if not paper_ids:
            return {}
        got = self._col().get(where={"paper_id": {"$in": list(paper_ids)}}, include=["documents", "metadatas"])
        parts: dict[str, list[tuple[int, str]]] = {}
        for doc, meta in zip(got["documents"], got["metadatas"]):
            parts.setdefault(meta["paper_id"], []).append((int(meta.get("chunk_index", 0)), doc or ""))
        return {pid: join_overlapping([t for _, t in sorted(chunks)]) for pid, chunks in parts.items()}

    @_guarded
    def chunk_vectors(self, paper_ids: Sequence[str] | None) -> list[tuple[ChunkRecord, np.ndarray]]:
        """These papers' chunks with their vectors; None: every chunk, in one read."""
        if paper_ids is not None and not paper_ids:
            return []
        got = self._col().get(where=None if paper_ids is None else {"paper_id": {"$in": list(paper_ids)}}, include=["documents", "metadatas", "embeddings"])
        return [
            (schema.record(i, d, m), np.asarray(e, dtype=np.float32))
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
            DenseHit(schema.record(i, d, m), 1.0 - float(dist))
            for i, d, m, dist in zip(got["ids"][0], got["documents"][0], got["metadatas"][0], got["distances"][0])
        ]

    # --- writing (inside `writer()`) -------------------------------------------------------

    def put_paper(self, item: PaperWrite) -> None:
        self.put_papers([item])

    @_guarded
    def put_papers(self, items: Sequence[PaperWrite]) -> None:
        """Write many papers in one upsert (one Chroma write per batch, not per paper: at 1,000
        papers the per-paper writes were ~15% of the ingest), then drop each paper's leftover chunks.
        Upsert first, clean up after, and stamp the content hash last: a crash at any
        point never loses a paper, and what it leaves (chunks with no hash or an older one) makes
        `stored_papers` report the paper as changed, so the next ingest writes it again. A paper
        longer than one Chroma batch was once stamped complete by its first batch."""
        ids: list[str] = []
        vectors: list[np.ndarray] = []
        documents: list[str] = []
        metadatas: list[dict] = []
        hashes: list[str] = []
        replaced: list[str] = []  # papers already in the store: their old chunks may outnumber the new
        for item in items:
            meta = schema.paper_meta(item.paper, list(item.sources or [item.paper.source]), item.file_hash)
            ids += [c.chunk_id for c in item.chunks]
            vectors.append(np.asarray(item.vectors, dtype=np.float32).reshape(len(item.chunks), -1))
            documents += [c.text for c in item.chunks]
            metadatas += [schema.chunk_meta(meta, c) for c in item.chunks]
            hashes += [item.content_hash] * len(item.chunks)
            if item.old_chunks:
                replaced.append(item.paper.paper_id)
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
        ids = [chunk_id(paper_id, i) for i in range(chunks)]
        col = self._col(create=True)  # not `dirty`: no cached text or title changes
        got = col.get(ids=ids, include=["metadatas"])
        new = schema.source_fields(list(sources or [source]), file_hash)
        col.update(ids=got["ids"], metadatas=[{**m, **new} for m in got["metadatas"]])

    @_guarded
    def set_vectors(self, chunk_ids: Sequence[str], vectors: np.ndarray) -> None:
        self.dirty = True
        self._col(create=True).update(ids=list(chunk_ids), embeddings=vectors)

    @_guarded
    def mark_vectors_from(self, embedder: str) -> None:
        self._col(create=True).modify(metadata={**self._metadata(), "embedder": embedder})

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
        self._col(create=True).modify(metadata={**self._metadata(), "generation": gen})
        self.dirty = False
        return gen
