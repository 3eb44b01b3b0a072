"""Query -> ranked papers. Hybrid: Chroma's dense search plus BM25 (Chroma has no local sparse
index), fused per paper with reciprocal rank fusion; each paper keeps its best chunk."""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import tempfile
import threading
from pathlib import Path

import numpy as np

from rag.chunking import lexical_text
from rag.embedding import Embedder
from rag.store import ChunkRecord, Store
from rag.types import Source

RRF_K = 60
_TOKEN = re.compile(r"[a-z0-9]+(?:[.\-][a-z0-9]+)*")
_STOPWORDS = frozenset(
    "a about above after all also an and any are as at be been being between both but by can could did do does "
    "doing during each few for from further had has have having he her here hers how i if in into is it its itself "
    "just me more most my no nor not of off on once only or other our out over own same she should so some such "
    "than that the their them then there these they this those through to too under until up very was we were what "
    "when where which while who whom why will with would you your paper papers study studies work works use uses "
    "used using show shows propose proposed summarize summarise summary describe explain tell collection report "
    "reported reports say says according find found kind type".split()
)


def _stem(token: str) -> str:
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Lower-case words with light plural folding; 'PV-RNN' also yields 'pv' and 'rnn'."""
    tokens: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        parts = [tok] + (re.split(r"[.\-]", tok) if ("-" in tok or "." in tok) and not tok.replace(".", "").isdigit() else [])
        tokens.extend(_stem(p) for p in parts if p and p not in _STOPWORDS)
    return tokens


class LexicalIndex:
    """BM25 over every chunk (title, authors and text). Saved next to the store with the store's
    generation, so a process only rebuilds it when an ingest changed something.

    Two files in the cache folder: `records.json`, the chunks the index was built from (stamped
    with the store generation), and `bm25.pkl`, the built index itself, so a new process does not
    re-tokenise every chunk (at 1,000 papers unpickling takes about a tenth of the rebuild). The pickle
    is used only if its stamp matches: the store generation, the size and mtime of `records.json`,
    FORMAT and the installed bm25s version; on any mismatch the index is rebuilt from `records.json`.
    Pickles are only ever read from the user's own data dir (or its `servers/` cache folders),
    which only this tool writes: a pickle can run code when loaded, so never point RAG_DATA_DIR at
    a folder someone else can write to."""

    FORMAT = 1  # bump when the pickled fields change
    RECORDS = "records.json"
    PICKLE = "bm25.pkl"

    def __init__(self, records: list[ChunkRecord]):
        import bm25s

        self.records = records
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
        _write_atomic(folder / self.RECORDS, records.encode())
        self._save_pickle(folder, generation)

    def _save_pickle(self, folder: Path, generation: int) -> None:
        stamp = _stamp(folder / self.RECORDS, generation)
        if stamp is not None:
            _write_atomic(folder / self.PICKLE, pickle.dumps(stamp, protocol=pickle.HIGHEST_PROTOCOL) + pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, folder: Path, generation: int, save: bool = True) -> "LexicalIndex | None":
        """The cached index for this generation, or None. The pickle when its stamp matches, else
        rebuilt from `records.json` (and the pickle rewritten when `save` and the folder allows)."""
        index = cls._load_pickle(folder, generation)
        if index is not None:
            return index
        try:
            data = json.loads((folder / cls.RECORDS).read_text())
        except (OSError, ValueError):
            return None
        if data.get("generation") != generation:
            return None
        index = cls([ChunkRecord(r[0], r[1], r[2], tuple(r[3]), r[4], *r[5:6]) for r in data["records"]])
        if save:
            with contextlib.suppress(OSError):  # a read-only data dir: use the index, just don't keep it
                index._save_pickle(folder, generation)
        return index

    @classmethod
    def _load_pickle(cls, folder: Path, generation: int) -> "LexicalIndex | None":
        want = _stamp(folder / cls.RECORDS, generation)
        if want is None:
            return None
        try:
            with open(folder / cls.PICKLE, "rb") as f:
                if pickle.load(f) != want:
                    return None
                index = pickle.load(f)
        except Exception:  # missing, truncated, written by another version: rebuild
            return None
        return index if isinstance(index, cls) else None

    @classmethod
    def for_store(cls, store: Store, generation: int) -> "LexicalIndex":
        folder = store.cache_dir / "lexical"
        index = cls.load(folder, generation)
        if index is None:
            index = cls(store.all_chunks())
            with contextlib.suppress(OSError):  # a read-only data dir: search works, the next process rebuilds too
                index.save(folder, generation)
        return index


def _stamp(records: Path, generation: int) -> dict | None:
    """What a pickled index must have been built from: this generation's `records.json`, this
    format, this bm25s."""
    import bm25s  # the pickle needs it anyway

    try:
        st = records.stat()
    except OSError:
        return None
    return {
        "format": LexicalIndex.FORMAT, "bm25s": getattr(bm25s, "__version__", "?"), "generation": generation,
        "records_size": st.st_size, "records_mtime_ns": st.st_mtime_ns,
    }


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Retriever:
    """Holds the store, embedder and BM25 index for a process, so repeated queries reuse them.

    Hybrid search: dense and BM25 candidates are fused with reciprocal rank fusion, then the
    fused shortlist is reranked by relevance, a weighted mean of the paper's best-chunk cosine
    similarity and the IDF-weighted share of the query's terms it contains. The same relevance, on a 0..1
    scale, is what `ask` uses to decide that nothing retrieved is worth answering from.
    """

    def __init__(self, store: Store, embedder: Embedder, dense_weight: float = 0.7, candidates: int = 60, shortlist: int = 20):
        self.store = store
        self.dense_weight = dense_weight
        self.embedder = embedder
        self.candidates = candidates
        self.shortlist = shortlist
        self._lexical: LexicalIndex | None = None
        self._lexical_generation = -1

    @property
    def lexical(self) -> LexicalIndex:
        generation = self.store.generation()
        if self._lexical is None or self._lexical_generation != generation:
            self._lexical = LexicalIndex.for_store(self.store, generation)
            self._lexical_generation = generation
        return self._lexical

    def _lexical_and_vector(self, query: str) -> tuple[LexicalIndex, np.ndarray]:
        """The BM25 index (opening Chroma, reading the store generation, loading the index) on a
        second thread while this one embeds the query. In a fresh process both sides take a few
        hundred ms (importing chromadb, building the ONNX session) and onnxruntime releases the GIL,
        so they overlap: cold `rag search` on the seeds, median of 10 alternating runs at load ~4,
        went from 1.22 s to 1.01 s."""
        got: dict = {}

        def open_lexical() -> None:
            try:
                got["index"] = self.lexical
            except BaseException as exc:  # re-raised on the caller's thread
                got["error"] = exc

        worker = threading.Thread(target=open_lexical, name="rag-open-store", daemon=True)
        worker.start()
        try:
            vector = self.embedder.embed([query])[0]
        finally:
            worker.join()
        if "error" in got:
            raise got["error"]
        return got["index"], vector

    def _dense(self, vector: np.ndarray, paper_ids: set[str] | None = None) -> list[tuple[ChunkRecord, float]]:
        ids = sorted(paper_ids) if paper_ids is not None else None
        return [(h.record, h.similarity) for h in self.store.query(vector, self.candidates, ids)]

    def _bm25(self, index: LexicalIndex, query: str, paper_ids: set[str] | None = None) -> list[tuple[ChunkRecord, float]]:
        scores = index.scores(query)
        if paper_ids is not None:  # same papers as the dense side: zero out the rest before ranking
            keep = np.fromiter((r.paper_id in paper_ids for r in index.records), dtype=bool, count=len(scores))
            scores = np.where(keep, scores, 0.0)
        top = np.argsort(-scores)[: self.candidates]
        return [(index.records[i], float(scores[i])) for i in top if scores[i] > 0]

    def search(self, query: str, k: int, mode: str = "hybrid", paper_ids: set[str] | None = None) -> list[Source]:
        """Papers best first. `mode` is 'hybrid', or 'dense' / 'lexical' alone (baselines for eval).
        `paper_ids` (from metadata filters) restricts both sides to those papers."""
        if paper_ids is not None and not paper_ids:
            return []
        if mode == "lexical":
            index = self.lexical  # one store-generation check per search, not one per record
            return [self._source(r, s, 0.0, s, 0.0) for r, s in _best_per_paper(self._bm25(index, query, paper_ids))[:k]]
        index, vector = self._lexical_and_vector(query)
        dense = _best_per_paper(self._dense(vector, paper_ids))
        if mode == "dense":
            return [self._source(r, s, s, 0.0, 0.0) for r, s in dense[:k]]
        lexical = _best_per_paper(self._bm25(index, query, paper_ids))
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, (record, _) in enumerate(ranking):
                fused[record.paper_id] = fused.get(record.paper_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        shortlist = sorted(fused, key=fused.get, reverse=True)[: max(self.shortlist, k)]
        bm25 = {r.paper_id: s for r, s in lexical}
        sources = []
        for record, similarity in self._best_chunks(index, shortlist, vector):
            coverage = index.coverage(query, record.paper_id)
            relevance = self.dense_weight * similarity + (1 - self.dense_weight) * coverage
            sources.append(self._source(record, relevance, similarity, bm25.get(record.paper_id, 0.0), coverage))
        sources.sort(key=lambda s: -s.score)
        return sources[:k]

    def _best_chunks(self, index: LexicalIndex, paper_ids: list[str], vector: np.ndarray) -> list[tuple[ChunkRecord, float]]:
        """Every chunk of the shortlisted papers scored against the query: exact, and cheap for ~20
        papers. The BM25 index of the same store generation knows each paper's chunks, so their
        vectors are fetched by id; a paper it does not know (written since) falls back to a
        metadata filter."""
        rows = {pid: index.paper_rows.get(pid, ()) for pid in paper_ids}
        records = {index.records[i].chunk_id: index.records[i] for pid in paper_ids for i in rows[pid]}
        vectors = self.store.vectors_by_id(list(records))
        scored = [(records[cid], v) for cid, v in vectors.items()]  # in the store's order, as the filtered get returns them
        unknown = [pid for pid in paper_ids if not rows[pid]]
        if unknown:
            scored += self.store.chunk_vectors(unknown)
        best: dict[str, tuple[ChunkRecord, float]] = {}
        for record, chunk_vector in scored:
            sim = float(np.dot(vector, chunk_vector))
            if record.paper_id not in best or sim > best[record.paper_id][1]:
                best[record.paper_id] = (record, sim)
        return list(best.values())

    @staticmethod
    def _source(record: ChunkRecord, score: float, similarity: float, lexical: float, coverage: float) -> Source:
        return Source(record.paper_id, record.title, record.authors, record.text, score, similarity, lexical, coverage, record.page)


def _best_per_paper(ranking: list[tuple[ChunkRecord, float]]) -> list[tuple[ChunkRecord, float]]:
    """Chunk ranking -> paper ranking, each paper represented by its best chunk."""
    seen: dict[str, tuple[ChunkRecord, float]] = {}
    for record, score in sorted(ranking, key=lambda rs: -rs[1]):
        seen.setdefault(record.paper_id, (record, score))
    return list(seen.values())
