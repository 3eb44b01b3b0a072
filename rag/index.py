"""The BM25 index over every chunk, and its cache next to the store: the one owner of that cache's
folder, files and "new generation, rebuilt index" protocol (`rebuild`), which every write to the
store ends with."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rag.chunking import lexical_text
from rag.store import ChunkRecord, Store
from rag.text import tokenize

CACHE = "lexical"  # the cache's folder under the store's cache dir


def cache_folder(store: Store) -> Path:
    return store.cache_dir / CACHE


def rebuild(store: Store) -> None:
    """After a write: a new store generation, and the index rebuilt and saved for it, so the next
    search in any process loads instead of rebuilding."""
    generation = store.bump_generation()
    LexicalIndex.from_store(store).save(cache_folder(store), generation)


def stored_vectors(store: Store, records: list[ChunkRecord]) -> np.ndarray | None:
    """The chunks' vectors in the records' order, in one read of the store; None when the store
    lacks any of them."""
    got = {r.chunk_id: v for r, v in store.chunk_vectors(None)}
    if not records or any(r.chunk_id not in got for r in records):
        return None
    return np.stack([got[r.chunk_id] for r in records]).astype(np.float32)


class LexicalIndex:
    """BM25 over every chunk (title, authors and text). Saved next to the store with the store's
    generation, so a process only rebuilds it when an ingest changed something.

    Two files in the cache folder: `records.json`, the chunks the index was built from (stamped
    with the store generation), and `bm25.npz`, the built index itself, so a new process does not
    re-tokenise every chunk. `bm25.npz` holds numpy arrays only (bm25s's sparse score matrix,
    each paper's term ids and the chunks' vectors, so a search reads no Chroma) plus one array of UTF-8 JSON (the stamp, the vocabulary, the chunk ids),
    and is read with `allow_pickle=False`: nothing in the cache can run code when it is loaded.
    It is used only if its stamp matches: the store generation, the size and mtime of
    `records.json`, FORMAT and the installed bm25s version; on any mismatch, or anything in it that
    does not fit, the index is rebuilt from `records.json`. `bm25.pkl`, the pickle earlier versions
    wrote, is never read: when found it is deleted and the index rebuilt from the store."""

    FORMAT = 3  # bump when the saved arrays or JSON fields change (3: the chunks' vectors)
    RECORDS = "records.json"
    INDEX = "bm25.npz"
    OLD_PICKLE = "bm25.pkl"  # written by earlier versions; a pickle can run code when loaded

    def __init__(self, records: list[ChunkRecord]):
        import bm25s

        self.records = records
        self.vectors: np.ndarray | None = None  # the store's vectors of `records`, row for row, when known
        self._bm25 = bm25s.BM25()
        corpus = [tokenize(lexical_text(r.title, r.authors, r.text)) or ["_empty_"] for r in records]
        if records:
            self._bm25.index(corpus, show_progress=False)
        self.paper_terms: dict[str, set[str]] = {}
        self.paper_rows: dict[str, list[int]] = {}  # paper id -> its chunks' positions in `records`
        for row, (record, tokens) in enumerate(zip(records, corpus)):
            self.paper_terms.setdefault(record.paper_id, set()).update(tokens)
            self.paper_rows.setdefault(record.paper_id, []).append(row)
        self.doc_freq: dict[str, int] = {}
        for terms in self.paper_terms.values():
            for t in terms:
                self.doc_freq[t] = self.doc_freq.get(t, 0) + 1

    def idf(self, term: str) -> float:
        """Terms no paper contains weigh most: a question about them is likely not covered."""
        n = len(self.paper_terms)
        return math.log((n + 1) / (self.doc_freq.get(term, 0) + 0.5))

    def coverage(self, query: str, paper_id: str) -> float:
        """Share of the query's distinctive terms (IDF-weighted) that the paper contains."""
        terms = list(dict.fromkeys(tokenize(query)))
        weights = [self.idf(t) for t in terms]
        total = sum(weights)
        if total <= 0:
            return 0.0
        have = self.paper_terms.get(paper_id, set())
        return sum(w for t, w in zip(terms, weights) if t in have) / total

    def scores(self, query: str) -> np.ndarray:
        tokens = tokenize(query)
        if not self.records or not tokens:
            return np.zeros(len(self.records), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    # --- the on-disk cache ------------------------------------------------------------------

    def save(self, folder: Path, generation: int) -> None:
        """Write both files, each to a temp file of its own (unique, so concurrent writers never
        mix their bytes) renamed into place. Raises OSError when `folder` cannot be written."""
        folder.mkdir(parents=True, exist_ok=True)
        records = json.dumps(
            {"generation": generation, "records": [[r.chunk_id, r.paper_id, r.title, list(r.authors), r.text, r.page] for r in self.records]}
        )
        with _folder_lock(folder):
            write_atomic(folder / self.RECORDS, records.encode())
            self._save_index(folder, generation)
        self._drop_old_pickle(folder)

    def _save_index(self, folder: Path, generation: int) -> None:
        stamp = _stamp(folder / self.RECORDS, generation)
        if stamp is None:
            return
        vocab: list[str] = []
        arrays: dict[str, np.ndarray] = {}
        if self.records:
            ids = self._bm25.vocab_dict
            if sorted(ids.values()) != list(range(len(ids))):
                return  # not the layout saved here (another bm25s): each process rebuilds instead
            vocab = [""] * len(ids)
            for token, i in ids.items():
                vocab[i] = token
            scores = self._bm25.scores
            arrays = {k: np.asarray(scores[k]) for k in ("data", "indices", "indptr")}
            try:
                terms = [np.fromiter((ids[t] for t in self.paper_terms[pid]), dtype=np.int32) for pid in self.paper_terms]
            except KeyError:
                return
            arrays["term_ids"] = np.concatenate(terms) if terms else np.zeros(0, dtype=np.int32)
            arrays["term_ptr"] = np.cumsum([0] + [len(t) for t in terms], dtype=np.int64)
            if self.vectors is not None:
                arrays["vectors"] = self.vectors
        meta = {"stamp": stamp, "vocab": vocab, "papers": list(self.paper_terms), "chunks": [r.chunk_id for r in self.records]}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        write_atomic(folder / self.INDEX, buffer.getvalue())

    @classmethod
    def load(cls, folder: Path, generation: int, save: bool = True) -> "LexicalIndex | None":
        """The cached index for this generation, or None. `bm25.npz` when its stamp matches, else
        rebuilt from `records.json` (and `bm25.npz` rewritten when `save` and the folder allows).
        None, too, when an old `bm25.pkl` is found (deleted, never read): the caller rebuilds from
        the store, so nothing an earlier version cached is trusted."""
        if cls._drop_old_pickle(folder):
            return None
        try:
            data = json.loads((folder / cls.RECORDS).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("generation") != generation:
            return None
        records = [ChunkRecord(r[0], r[1], r[2], tuple(r[3]), r[4], *r[5:6]) for r in data["records"]]
        index = cls._load_index(folder, generation, records)
        if index is not None:
            return index
        index = cls(records)
        if save:
            with contextlib.suppress(OSError):  # a read-only data dir: use the index, just don't keep it
                index._save_index(folder, generation)
        return index

    @classmethod
    def _drop_old_pickle(cls, folder: Path) -> bool:
        """Delete a `bm25.pkl` left by an earlier version, unread. True when there was one."""
        old = folder / cls.OLD_PICKLE
        if not old.exists():
            return False
        with contextlib.suppress(OSError):  # a read-only data dir: it stays, and stays unread
            old.unlink()
        return True

    @classmethod
    def _load_index(cls, folder: Path, generation: int, records: list[ChunkRecord]) -> "LexicalIndex | None":
        """`bm25.npz` for exactly these records, or None (missing, stale, damaged, or anything in
        it that does not fit them: rebuild)."""
        want = _stamp(folder / cls.RECORDS, generation)
        if want is None:
            return None
        try:
            with np.load(folder / cls.INDEX, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode())
            if meta["stamp"] != want or meta["chunks"] != [r.chunk_id for r in records]:
                return None
            return cls._from_arrays(records, meta, arrays)
        except Exception:  # missing, truncated, written by another version, not ours: rebuild
            return None

    @classmethod
    def _from_arrays(cls, records: list[ChunkRecord], meta: dict, arrays: dict[str, np.ndarray]) -> "LexicalIndex | None":
        import bm25s

        index = cls.__new__(cls)
        index.records = records
        index.vectors = None
        index._bm25 = bm25s.BM25()
        index.paper_rows = {}
        for row, record in enumerate(records):
            index.paper_rows.setdefault(record.paper_id, []).append(row)
        index.paper_terms, index.doc_freq = {}, {}
        if not records:
            return index
        vocab, papers = meta["vocab"], meta["papers"]
        data, indices, indptr = arrays["data"], arrays["indices"], arrays["indptr"]
        term_ids, term_ptr = arrays["term_ids"], arrays["term_ptr"]
        fits = (
            data.ndim == indices.ndim == indptr.ndim == term_ids.ndim == term_ptr.ndim == 1
            and data.dtype.kind == "f" and all(a.dtype.kind in "iu" for a in (indices, indptr, term_ids, term_ptr))
            # one column per token; bm25s adds its empty token "" to the vocabulary after the matrix
            and (len(indptr) == len(vocab) + 1 or (len(indptr) == len(vocab) and vocab[-1] == ""))
            and indptr[0] == 0 and indptr[-1] == len(data) == len(indices)
            and bool(np.all(np.diff(indptr) >= 0)) and (not len(indices) or 0 <= indices.min() <= indices.max() < len(records))
            and len(term_ptr) == len(papers) + 1 and term_ptr[0] == 0 and term_ptr[-1] == len(term_ids)
            and bool(np.all(np.diff(term_ptr) >= 0)) and (not len(term_ids) or 0 <= term_ids.min() <= term_ids.max() < len(vocab))
            and set(papers) == set(index.paper_rows) and len(set(vocab)) == len(vocab)
        )
        if not fits or index._bm25.method in index._bm25.methods_requiring_nonoccurrence:
            return None
        index._bm25.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": len(records)}
        index._bm25.vocab_dict = {token: i for i, token in enumerate(vocab)}
        index._bm25.unique_token_ids_set = set(range(len(vocab)))
        index._bm25.nonoccurrence_array = None
        index.paper_terms = _PaperTerms(papers, vocab, term_ids, term_ptr)
        counts = np.bincount(term_ids, minlength=len(vocab)).tolist()
        index.doc_freq = {vocab[i]: c for i, c in enumerate(counts) if c}
        vectors = arrays.get("vectors")
        if vectors is not None and vectors.ndim == 2 and len(vectors) == len(records) and vectors.dtype == np.float32:
            index.vectors = vectors
        return index

    @classmethod
    def from_store(cls, store: Store) -> "LexicalIndex":
        """Built from every chunk the store holds, its vectors read in the same pass."""
        pairs = store.chunk_vectors(None)
        index = cls([r for r, _ in pairs])
        index.vectors = np.stack([v for _, v in pairs]).astype(np.float32) if pairs else None
        return index

    @classmethod
    def for_store(cls, store: Store, generation: int) -> "LexicalIndex":
        """The index for the store's current generation: cached, or built from the store's chunks."""
        folder = cache_folder(store)
        index = cls.load(folder, generation)
        if index is None or (index.vectors is None and index.records):
            if index is None:
                index = cls.from_store(store)
            else:
                index.vectors = stored_vectors(store, index.records)
            with contextlib.suppress(OSError):  # a read-only data dir: search works, the next process rebuilds too
                index.save(folder, generation)
        return index


class _PaperTerms(Mapping):
    """paper id -> the set of its terms, made from the saved term ids when first asked for: a
    search asks for the ~20 papers it shortlists, and building every paper's set up front was half
    of the load time at 10,000 papers."""

    def __init__(self, papers: list[str], vocab: list[str], term_ids: np.ndarray, term_ptr: np.ndarray):
        self._rows = {pid: i for i, pid in enumerate(papers)}
        self._vocab, self._ids, self._ptr = vocab, term_ids, term_ptr
        self._sets: dict[str, set[str]] = {}

    def __getitem__(self, paper_id: str) -> set[str]:
        terms = self._sets.get(paper_id)
        if terms is None:
            row = self._rows[paper_id]
            terms = self._sets[paper_id] = {self._vocab[i] for i in self._ids[self._ptr[row] : self._ptr[row + 1]].tolist()}
        return terms

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def _stamp(records: Path, generation: int) -> dict | None:
    """What a saved index must have been built from: this generation's `records.json`, this
    format, this bm25s."""
    import bm25s

    try:
        st = records.stat()
    except OSError:
        return None
    return {
        "format": LexicalIndex.FORMAT, "bm25s": getattr(bm25s, "__version__", "?"), "generation": generation,
        "records_size": st.st_size, "records_mtime_ns": st.st_mtime_ns,
    }


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """One saver at a time per folder (threads and processes): the index's stamp names the
    records.json it was built beside, and two savers interleaving left a records.json from one
    and an index stamped for the other's, so the next load rebuilt (seen in the concurrent-save
    test: 2 of 2 full suite runs here, and 1 of 6 runs alone beside two busy loops; 0 of 8 with
    the lock). Readers do not lock: a mismatch only rebuilds."""
    try:
        import fcntl
    except ImportError:  # not POSIX: saves are not serialised, and a rare mismatch rebuilds
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
