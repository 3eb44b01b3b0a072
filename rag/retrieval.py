"""Query -> ranked papers. Hybrid: Chroma's dense search plus BM25 (Chroma has no local sparse
index), fused per paper with reciprocal rank fusion; each paper keeps its best chunk."""

from __future__ import annotations

import threading

import numpy as np

from rag.embedding import Embedder
from rag.index import LexicalIndex
from rag.store import ChunkRecord, Store
from rag.types import Source

RRF_K = 60


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
