"""The speed-ups of issue #4 keep behaviour: batched Chroma writes, the pickled BM25 index, vectors
fetched by id, the store opened on a second thread, one search per summary, lazy imports."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import SEED_PAPERS, FakeEmbedder
from rag import corpus, retrieval
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings
from rag.store import Store
from rag.types import Chunk, Paper


@pytest.fixture
def fake_seeded(fake_rag, seed_copy) -> Rag:
    assert fake_rag.ingest([seed_copy]).added == SEED_PAPERS
    return fake_rag


# --- Chroma writes ------------------------------------------------------------------------------


def test_ingest_writes_one_upsert_per_batch(fake_rag, seed_copy, monkeypatch):
    calls = []
    real = Store.put_papers

    def counting(self, items):
        calls.append(len(items))
        return real(self, items)

    monkeypatch.setattr(Store, "put_papers", counting)
    report = fake_rag.ingest([seed_copy])
    assert sum(calls) == SEED_PAPERS
    assert len(calls) == len(fake_rag.embedder.calls) < SEED_PAPERS / 10  # per batch of ~64 chunks, not per paper
    assert fake_rag.store.count() == report.chunks_embedded


def _paper(title: str, text: str) -> Paper:
    return Paper(corpus.paper_id_for(title), title, (), text, "/elsewhere/notes.md")


def _chunks(paper: Paper, n: int) -> list[Chunk]:
    return [Chunk(f"{paper.paper_id}:{i}", paper.paper_id, i, f"{paper.abstract} part {i}") for i in range(n)]


def test_rewriting_a_paper_removes_every_leftover_chunk(fake_rag):
    """Even chunks the caller did not count (left by an interrupted write) go."""
    paper = _paper("Zorblax Crystal Resonance", "Zorblax crystals resonate.")
    vecs = lambda n: fake_rag.embedder.embed([f"t{i}" for i in range(n)])  # noqa: E731
    with fake_rag.store.writer() as store:
        store.put_papers([(paper, _chunks(paper, 5), vecs(5), "h1", "f1", 0, None)])
        store.put_papers([(paper, _chunks(paper, 2), vecs(2), "h2", "f1", 1, None)])  # claims 1 old chunk; there were 5
    stored = fake_rag.store.stored_papers()[paper.paper_id]
    assert (stored.content_hash, stored.chunks) == ("h2", 2)


def test_chunks_with_mixed_hashes_make_the_paper_look_changed(fake_rag, seed_copy):
    """An upsert interrupted before its clean-up leaves newer and older chunks of one paper; the
    next ingest must rewrite that paper rather than call it unchanged."""
    fake_rag.ingest([seed_copy])
    pid, old = next((pid, p) for pid, p in fake_rag.store.stored_papers().items() if p.chunks >= 2)
    col = fake_rag.store._col()
    got = col.get(ids=[f"{pid}:1"], include=["metadatas"])
    col.update(ids=got["ids"], metadatas=[{**got["metadatas"][0], "content_hash": "0" * 16}])
    assert fake_rag.store.stored_papers()[pid].content_hash == ""
    report = fake_rag.ingest([seed_copy])
    assert report.updated == 1 and fake_rag.store.stored_papers()[pid].content_hash == old.content_hash


def test_dense_query_asks_for_more_than_the_store_holds(fake_seeded):
    hits = fake_seeded.store.query(fake_seeded.embedder.embed(["graph neural networks"])[0], 10_000)
    assert len(hits) == fake_seeded.store.count()
