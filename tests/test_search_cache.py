"""A search reads no Chroma when the store's cache is fresh: the generation and embedder come from
Chroma's SQLite file, the chunks and BM25 index from the lexical cache, and the vectors from the
same cache (written by every ingest). Importing chromadb and opening it was most of a cold
`rag search`. The answers must be the ones Chroma's own index gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import SEEDS_DIR, FakeEmbedder
from rag import Rag, index
from rag.settings import Settings
from rag.store import Store

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_SEARCH = """
import sys
sys.path.insert(0, {tests!r})
from conftest import FakeEmbedder
from rag import Rag
from rag.settings import Settings
rag = Rag(Settings.load(data_dir={data!r}), embedder=FakeEmbedder())
found = rag.search("graph neural networks", k=3)
print(len(found), found[0].title)
print("chromadb" in sys.modules)
"""


def _fresh_process(code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(PROJECT_ROOT), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


def test_a_search_in_a_fresh_process_never_imports_chroma(data_dir):
    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    expected = rag.search("graph neural networks", k=3)[0].title
    found, chroma = _fresh_process(_SEARCH.format(tests=str(PROJECT_ROOT / "tests"), data=str(data_dir)))
    assert found == f"3 {expected}" and chroma == "False"


def test_the_cached_vectors_rank_as_chromas_index_does(data_dir):
    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    retriever = rag.retriever
    cached = retriever.lexical
    assert cached.vectors is not None and cached.vectors.shape == (len(cached.records), 384)
    stored = rag.store.vectors_by_id([r.chunk_id for r in cached.records])
    assert all(np.array_equal(stored[r.chunk_id], cached.vectors[i]) for i, r in enumerate(cached.records))
    questions = ["graph neural networks", "sparse mixture of experts routing", "aligning AI with human values", "reinforcement learning agents"]
    from_cache = [[(s.paper_id, round(s.score, 5)) for s in retriever.search(q, k=5)] for q in questions]
    cached.vectors = None  # what a cache without vectors does: Chroma's HNSW index
    from_chroma = [[(s.paper_id, round(s.score, 5)) for s in retriever.search(q, k=5)] for q in questions]
    assert from_cache == from_chroma


def test_the_metadata_read_without_chroma_is_chromas(data_dir):
    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    fresh = Store(data_dir)
    assert fresh.generation() == rag.store.generation() > 0
    fresh.require_vectors_from(FakeEmbedder.name)
    assert fresh._collection is None  # neither read opened Chroma


def test_a_cache_without_vectors_gets_them_from_the_store(data_dir):
    """A cache an earlier version wrote (no vectors in it) is completed once, then used."""
    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    generation = rag.store.generation()
    folder = index.cache_folder(rag.store)
    old = index.LexicalIndex.load(folder, generation)
    old.vectors = None
    old.save(folder, generation)
    assert index.LexicalIndex.load(folder, generation).vectors is None
    completed = index.LexicalIndex.for_store(Store(data_dir), generation)
    assert completed.vectors is not None
    assert index.LexicalIndex.load(folder, generation).vectors is not None


def test_a_new_ingest_is_searched_from_its_own_vectors(data_dir, tmp_path):
    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    note = tmp_path / "zorblax.md"
    note.write_text("# Zorblax crystals\n\nZorblax crystals resonate at low temperature.", encoding="utf-8")
    Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).ingest([note])
    assert rag.search("zorblax crystals resonate", k=1)[0].title == "Zorblax crystals"


def test_whole_papers_from_the_cache_are_the_stores(data_dir):
    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    ids = [p.paper_id for p in rag.papers()]
    assert any(p.chunks > 1 for p in rag.papers())  # overlapping chunks are joined
    assert rag.retriever.paper_texts(ids) == rag.store.paper_texts(ids)
    assert rag.retriever.paper_texts(["not-a-paper"]) == {}


_ASK = """
import sys
sys.path.insert(0, {tests!r})
from conftest import FakeEmbedder, FakeGenerator
from rag import Rag
from rag.settings import Settings
rag = Rag(Settings.load(data_dir={data!r}, rerank="off", judge="off"), embedder=FakeEmbedder(), generator=FakeGenerator(["Graph networks pass messages [1]."]))
answer = rag.ask("How do graph neural networks learn?")
print(answer.abstained, len(answer.sources) > 0)
print("chromadb" in sys.modules)
"""


def test_an_answer_in_a_fresh_process_never_imports_chroma(data_dir):
    Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).ingest([SEEDS_DIR])
    answered, chroma = _fresh_process(_ASK.format(tests=str(PROJECT_ROOT / "tests"), data=str(data_dir)))
    assert answered == "False True" and chroma == "False"


def test_the_file_check_before_reading_metadata_runs_again_when_the_file_changes(data_dir):
    """Checked once per state of the SQLite file (a warm process searches without re-reading every
    segment), and again once it changes: a damaged header is then refused, and Chroma is asked."""
    from rag import health

    Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).ingest([SEEDS_DIR])
    chroma = data_dir / "chroma"
    assert health.collection_metadata(chroma, "papers")["embedder"] == FakeEmbedder.name
    assert health.collection_metadata(chroma, "papers") is not None
    db = chroma / "chroma.sqlite3"
    data = bytearray(db.read_bytes())
    data[:16] = b"not a database!!"
    db.write_bytes(bytes(data) + b"\0")
    assert health.collection_metadata(chroma, "papers") is None
