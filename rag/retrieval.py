"""Query -> ranked papers. Hybrid: Chroma's dense search plus BM25 (Chroma has no local sparse
index), fused per paper with reciprocal rank fusion; each paper keeps its best chunk."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from rag.chunking import chunk_number
from rag.embedding import Embedder
from rag.index import LexicalIndex
from rag.store import ChunkRecord, Store
from rag.text import join_overlapping
from rag.types import Passage, Source

RRF_K = 60
PASSAGES = 8  # a full-text paper's candidate passages for one question (the answer keeps the best few)
MEANING_PASSAGES = 3  # of them, the chunks most similar to the question whatever their words
# With BM25 beside similarity, the chunk holding the asked facts was in a paper's first three for 5 of
# 7 pdf-dev questions (40-140 chunks a paper), by similarity alone for 3 of 7.
PASSAGE_DENSE = 0.7


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
            self.store.require_vectors_from(self.embedder.name)  # a write may have changed them
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

    def _dense(self, index: LexicalIndex, vector: np.ndarray, paper_ids: set[str] | None = None) -> list[tuple[ChunkRecord, float]]:
        """The nearest chunks: exact, from the cached vectors of this store generation when there
        are any (no Chroma to open: a cold search's biggest cost), else Chroma's HNSW index."""
        if index.vectors is None:
            ids = sorted(paper_ids) if paper_ids is not None else None
            return [(h.record, h.similarity) for h in self.store.query(vector, self.candidates, ids)]
        rows = np.arange(len(index.records)) if paper_ids is None else np.array([i for p in paper_ids for i in index.paper_rows.get(p, ())], dtype=np.int64)
        sims = index.vectors[rows] @ vector
        return [(index.records[rows[j]], float(sims[j])) for j in np.argsort(-sims, kind="stable")[: self.candidates].tolist()]

    def _bm25(self, index: LexicalIndex, scores: np.ndarray, paper_ids: set[str] | None = None) -> list[tuple[ChunkRecord, float]]:
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
            return [self._source(r, s, 0.0, s, 0.0) for r, s in _best_per_paper(self._bm25(index, index.scores(query), paper_ids))[:k]]
        index, vector = self._lexical_and_vector(query)
        dense = _best_per_paper(self._dense(index, vector, paper_ids))
        if mode == "dense":
            return [self._source(r, s, s, 0.0, 0.0) for r, s in dense[:k]]
        chunk_bm25 = index.scores(query)
        lexical = _best_per_paper(self._bm25(index, chunk_bm25, paper_ids))
        fused: dict[str, float] = {}
        for ranking in (dense, lexical):
            for rank, (record, _) in enumerate(ranking):
                fused[record.paper_id] = fused.get(record.paper_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        shortlist = sorted(fused, key=fused.get, reverse=True)[: max(self.shortlist, k)]
        bm25 = {r.paper_id: s for r, s in lexical}
        sources = []
        for ranked in self._ranked_chunks(index, shortlist, vector, chunk_bm25):
            record, similarity = ranked.best
            coverage = index.coverage(query, record.paper_id)
            relevance = self.dense_weight * similarity + (1 - self.dense_weight) * coverage
            source = self._source(record, relevance, similarity, bm25.get(record.paper_id, 0.0), coverage)
            if record.page is not None:  # a full-text paper: its best passages for the question
                top = ranked.passages[0]
                source = replace(source, text=top.text, page=top.page, passages=ranked.passages)
            sources.append(source)
        sources.sort(key=lambda s: -s.score)
        return sources[:k]

    def paper_texts(self, paper_ids: list[str]) -> dict[str, str]:
        """Whole papers from this store generation's cached chunks, joined as `Store.paper_texts`
        joins them but without opening Chroma; a paper the cache does not hold, from the store."""
        index = self.lexical
        rows = {pid: sorted(index.paper_rows.get(pid, ()), key=lambda i: chunk_number(index.records[i].chunk_id)) for pid in paper_ids}
        texts = {pid: join_overlapping([index.records[i].text for i in r]) for pid, r in rows.items() if r}
        return {**self.store.paper_texts([pid for pid, r in rows.items() if not r]), **texts}

    def _ranked_chunks(self, index: LexicalIndex, paper_ids: list[str], vector: np.ndarray, chunk_bm25: np.ndarray) -> list["_Ranked"]:
        """Every chunk of the shortlisted papers scored against the query: exact, and cheap for ~20
        papers. The BM25 index of the same store generation knows each paper's chunks, so their
        vectors are fetched by id; a paper it does not know (written since) falls back to a
        metadata filter. A paper's best chunk by cosine similarity ranks the paper; its passages
        are ranked by similarity and the chunk's BM25 score together, since in a long paper the
        chunk that holds the asked detail often shares its rare words more than its meaning."""
        rows = {pid: index.paper_rows.get(pid, ()) for pid in paper_ids}
        records = {index.records[i].chunk_id: index.records[i] for pid in paper_ids for i in rows[pid]}
        lexical = {index.records[i].chunk_id: float(chunk_bm25[i]) for pid in paper_ids for i in rows[pid]}
        if index.vectors is not None:
            vectors = {index.records[i].chunk_id: index.vectors[i] for pid in paper_ids for i in rows[pid]}
        else:
            vectors = self.store.vectors_by_id(list(records))
        scored = [(records[cid], v) for cid, v in vectors.items()]  # in the store's order, as the filtered get returns them
        unknown = [pid for pid in paper_ids if not rows[pid]]
        if unknown:
            scored += self.store.chunk_vectors(unknown)
        by_paper: dict[str, list[tuple[ChunkRecord, float]]] = {}
        for record, chunk_vector in scored:
            by_paper.setdefault(record.paper_id, []).append((record, float(np.dot(vector, chunk_vector))))
        return [_Ranked.of(chunks, lexical) for chunks in by_paper.values()]

    @staticmethod
    def _source(record: ChunkRecord, score: float, similarity: float, lexical: float, coverage: float) -> Source:
        return Source(record.paper_id, record.title, record.authors, record.text, score, similarity, lexical, coverage, record.page)


@dataclass(frozen=True)
class _Ranked:
    best: tuple[ChunkRecord, float]  # the chunk most similar to the query, and its similarity
    passages: tuple[Passage, ...]  # the best PASSAGES chunks for the question, best first

    @classmethod
    def of(cls, chunks: list[tuple[ChunkRecord, float]], lexical: dict[str, float]) -> "_Ranked":
        """A full-text paper's candidates; the opening chunk (its abstract, for "what does this
        paper do" questions and the summary numbers an abstract gives) is always among them. A
        paper without pages (an abstract) is given whole and has none."""
        best = max(chunks, key=lambda c: c[1])
        if best[0].page is None:
            return cls(best, ())
        top_lexical = max((lexical.get(r.chunk_id, 0.0) for r, _ in chunks), default=0.0) or 1.0
        ranked = sorted(chunks, key=lambda c: -(PASSAGE_DENSE * c[1] + (1 - PASSAGE_DENSE) * lexical.get(c[0].chunk_id, 0.0) / top_lexical))
        by_meaning = sorted(chunks, key=lambda c: -c[1])[:MEANING_PASSAGES]  # a paraphrase shares no rare word
        opening = min((r for r, _ in chunks), key=lambda r: chunk_number(r.chunk_id))
        kept = list(dict.fromkeys([r for r, _ in by_meaning] + [opening] + [r for r, _ in ranked]))[:PASSAGES]
        place = {r.chunk_id: i for i, (r, _) in enumerate(ranked)}
        kept.sort(key=lambda r: place[r.chunk_id])
        return cls(best, tuple(Passage(r.text, r.page, r is opening) for r in kept))


def _best_per_paper(ranking: list[tuple[ChunkRecord, float]]) -> list[tuple[ChunkRecord, float]]:
    """Chunk ranking -> paper ranking, each paper represented by its best chunk."""
    seen: dict[str, tuple[ChunkRecord, float]] = {}
    for record, score in sorted(ranking, key=lambda rs: -rs[1]):
        seen.setdefault(record.paper_id, (record, score))
    return list(seen.values())
