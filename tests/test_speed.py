"""The speed-ups of issue #4 keep behaviour: batched Chroma writes, the saved BM25 index (numpy
arrays and JSON since issue #17, no pickle), vectors fetched by id, the store opened on a second
thread, one search per summary, lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from conftest import SEED_PAPERS, FakeEmbedder
from rag import index as lexical_cache
from rag.index import LexicalIndex
from rag.papers import paper_id_for
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings
from rag.store import PaperWrite, Store
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
    # One write per batch of ~64 chunks, not per paper; a batch that ends past 64 chunks is embedded
    # in two slices (so Ctrl-C stops within a slice) but still written once.
    assert len(calls) <= len(fake_rag.embedder.calls) <= 2 * len(calls)
    assert len(calls) < SEED_PAPERS / 10
    assert fake_rag.store.count() == report.chunks_embedded


def _paper(title: str, text: str) -> Paper:
    return Paper(paper_id_for(title), title, (), text, "/elsewhere/notes.md")


def _chunks(paper: Paper, n: int) -> list[Chunk]:
    return [Chunk(f"{paper.paper_id}:{i}", paper.paper_id, i, f"{paper.abstract} part {i}") for i in range(n)]


def test_rewriting_a_paper_removes_every_leftover_chunk(fake_rag):
    """Even chunks the caller did not count (left by an interrupted write) go."""
    paper = _paper("Zorblax Crystal Resonance", "Zorblax crystals resonate.")
    vecs = lambda n: fake_rag.embedder.embed([f"t{i}" for i in range(n)])  # noqa: E731
    with fake_rag.store.writer() as store:
        store.put_papers([PaperWrite(paper, _chunks(paper, 5), vecs(5), "h1", "f1", 0)])
        store.put_papers([PaperWrite(paper, _chunks(paper, 2), vecs(2), "h2", "f1", 1)])  # claims 1 old chunk; there were 5
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


# --- the saved BM25 index (numpy arrays and JSON, never a pickle) --------------------------------


def _folder(rag: Rag):
    return rag.store.cache_dir / "lexical"


def _stamp_of(folder) -> dict:
    with np.load(folder / "bm25.npz", allow_pickle=False) as npz:
        return json.loads(npz["meta"].tobytes().decode())["stamp"]


def test_ingest_saves_the_built_index_and_a_new_process_loads_it(fake_seeded, monkeypatch):
    folder = _folder(fake_seeded)
    assert (folder / "bm25.npz").exists() and (folder / "records.json").exists()
    assert not (folder / "bm25.pkl").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    with np.load(folder / "bm25.npz", allow_pickle=False) as npz:  # plain arrays only: no object array to unpickle
        assert all(npz[name].dtype != object for name in npz.files)
    gen = fake_seeded.store.generation()

    def no_rebuild(self, records):
        raise AssertionError("rebuilt instead of loaded")

    monkeypatch.setattr(LexicalIndex, "__init__", no_rebuild)
    index = LexicalIndex.load(folder, gen)
    assert index is not None and len(index.records) == fake_seeded.store.count()
    fresh = Rag(Settings.load(data_dir=fake_seeded.settings.data_dir), embedder=FakeEmbedder())
    assert fresh.search("TabPFN tabular", k=1, mode="lexical")[0].title.startswith("TabPFN")


def test_saved_index_gives_the_same_scores_as_a_rebuilt_one(fake_seeded):
    folder, gen = _folder(fake_seeded), fake_seeded.store.generation()
    loaded = LexicalIndex.load(folder, gen)
    # saved for other chunks (or in another order): not used, never mixed with these records
    assert LexicalIndex._load_index(folder, gen, loaded.records[::-1]) is None
    rebuilt = LexicalIndex(loaded.records)
    for q in ["graph neural networks", "TabPFN tabular classification", "Q-learners collude", "qwxzyv", "the"]:
        assert np.array_equal(loaded.scores(q), rebuilt.scores(q))
        assert [loaded.coverage(q, r.paper_id) for r in loaded.records[:20]] == [rebuilt.coverage(q, r.paper_id) for r in rebuilt.records[:20]]
    assert loaded.paper_rows == rebuilt.paper_rows and loaded.doc_freq == rebuilt.doc_freq
    assert loaded.paper_terms == rebuilt.paper_terms and list(loaded.paper_terms) == list(rebuilt.paper_terms)


@pytest.mark.parametrize("change", ["generation", "format", "bm25s", "records"])
def test_a_stale_index_is_rebuilt_from_records(fake_seeded, monkeypatch, change):
    folder, gen = _folder(fake_seeded), fake_seeded.store.generation()
    stamp_before = _stamp_of(folder)
    if change == "generation":
        assert LexicalIndex.load(folder, gen + 1) is None  # records.json is of the old generation too
        return
    if change == "format":
        monkeypatch.setattr(LexicalIndex, "FORMAT", LexicalIndex.FORMAT + 1)
    elif change == "bm25s":
        import bm25s

        monkeypatch.setattr(bm25s, "__version__", "0.0.0-other", raising=False)
    else:  # records.json rewritten (another writer, or by hand): its size and mtime no longer match
        data = json.loads((folder / "records.json").read_text())
        data["records"] = [r for r in data["records"] if not r[2].startswith("TabPFN")]
        (folder / "records.json").write_text(json.dumps(data))
    built = []
    real_init = LexicalIndex.__init__
    monkeypatch.setattr(LexicalIndex, "__init__", lambda self, records: built.append(1) or real_init(self, records))
    index = LexicalIndex.load(folder, gen)
    assert built == [1] and index is not None
    if change == "records":
        assert not [r for r in index.records if r.title.startswith("TabPFN")]
    assert _stamp_of(folder) != stamp_before  # rewritten with the new stamp...
    built.clear()
    assert LexicalIndex.load(folder, gen) is not None and built == []  # ...and used next time


@pytest.mark.parametrize("damage", ["truncated", "random", "object-array", "foreign-vocab"])
def test_a_damaged_or_foreign_index_file_is_rebuilt(fake_seeded, damage, tmp_path):
    folder, gen = _folder(fake_seeded), fake_seeded.store.generation()
    path = folder / "bm25.npz"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "random":
        path.write_bytes(os.urandom(len(data)))
    elif damage == "object-array":  # what np.save writes for Python objects: refused unread (allow_pickle=False)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        arrays["data"] = np.array([{"not": "numbers"}], dtype=object)
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    else:  # a well-formed file whose arrays point outside the index
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        arrays["term_ids"] = arrays["term_ids"] + 10**6
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    index = LexicalIndex.load(folder, gen)
    assert index is not None and len(index.records) == fake_seeded.store.count()
    assert index.scores("TabPFN tabular").max() > 0
    assert LexicalIndex._load_index(folder, gen, index.records) is not None  # rewritten whole


def test_search_works_when_the_cache_cannot_be_written(fake_seeded, monkeypatch):
    """A read-only data dir: the index is built and used, only not saved. (chmod is no test here:
    the suite may run as root, so writes fail through the one function that does them.)"""
    folder = _folder(fake_seeded)
    for name in ("bm25.npz", "records.json"):
        (folder / name).unlink()

    def read_only(path, data):
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(lexical_cache, "write_atomic", read_only)
    fresh = Rag(Settings.load(data_dir=fake_seeded.settings.data_dir), embedder=FakeEmbedder())
    assert fresh.search("TabPFN tabular", k=1)[0].title.startswith("TabPFN")
    assert not (folder / "bm25.npz").exists()
    # and with records.json present but no saved index: loaded, not saved, no error
    monkeypatch.undo()
    LexicalIndex(fake_seeded.store.all_chunks()).save(folder, fake_seeded.store.generation())
    (folder / "bm25.npz").unlink()
    monkeypatch.setattr(lexical_cache, "write_atomic", read_only)
    assert LexicalIndex.load(folder, fake_seeded.store.generation()) is not None


def test_concurrent_saves_leave_one_whole_file(fake_seeded):
    folder, gen = _folder(fake_seeded), fake_seeded.store.generation()
    index = LexicalIndex.load(folder, gen)
    errors = []

    def save():
        try:
            for _ in range(5):
                index.save(folder, gen)
        except Exception as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in folder.iterdir()) == ["bm25.npz", "records.json"]
    assert LexicalIndex._load_index(folder, gen, index.records) is not None


def test_remove_saves_the_index_in_the_stores_cache_folder(data_dir, seed_copy):
    """With a Chroma server the cache lives under servers/<url>; `rag remove` must update that
    one, not data_dir/lexical (a stand-in store here: an embedded store with a moved cache)."""

    class ElsewhereStore(Store):
        @property
        def cache_dir(self):
            return self.data_dir / "servers" / "stand-in"

    rag = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder(), store=ElsewhereStore(data_dir))
    rag.ingest([seed_copy])
    victim = rag.papers()[0]
    rag.remove([victim.paper_id])
    folder = data_dir / "servers" / "stand-in" / "lexical"
    saved = json.loads((folder / "records.json").read_text())
    assert saved["generation"] == rag.store.generation()
    assert victim.paper_id not in {r[1] for r in saved["records"]}
    assert not (data_dir / "lexical").exists()


# --- search -------------------------------------------------------------------------------------


def test_vectors_by_id_match_the_filtered_fetch(fake_seeded):
    index = fake_seeded.retriever.lexical
    pids = sorted(index.paper_rows)[:15]
    by_filter = {r.chunk_id: (r, v) for r, v in fake_seeded.store.chunk_vectors(pids)}
    by_id = fake_seeded.store.vectors_by_id([index.records[i].chunk_id for p in pids for i in index.paper_rows[p]] + ["nope:0"])
    assert set(by_id) == set(by_filter)
    assert all(np.array_equal(by_id[c], by_filter[c][1]) for c in by_id)
    assert {index.records[i] for p in pids for i in index.paper_rows[p]} == {r for r, _ in by_filter.values()}


def test_best_chunks_by_id_equal_the_filtered_path(seeded_real):
    retriever = seeded_real.retriever
    index = retriever.lexical
    for q in ["graph neural networks for recommendation", "regret bounds for control", "tabular transformers"]:
        vector = seeded_real.embedder.embed([q])[0]
        pids = sorted(index.paper_rows)[:25]
        best = {}
        for record, v in seeded_real.store.chunk_vectors(pids):
            sim = float(np.dot(vector, v))
            if record.paper_id not in best or sim > best[record.paper_id][1]:
                best[record.paper_id] = (record, sim)
        cached = index.vectors
        for vectors in (cached, None):  # the cached vectors, and Chroma's by id
            index.vectors = vectors
            ranked = retriever._ranked_chunks(index, pids, vector, index.scores(q))
            assert {r.best[0].paper_id: r.best for r in ranked} == best
        index.vectors = cached


def test_a_paper_the_index_does_not_know_is_still_scored(fake_seeded):
    retriever = fake_seeded.retriever
    index = retriever.lexical
    known = sorted(index.paper_rows)[:3]
    stale = LexicalIndex([r for r in index.records if r.paper_id != known[0]])
    vector = fake_seeded.embedder.embed(["anything"])[0]
    assert {r.best[0].paper_id for r in retriever._ranked_chunks(stale, known, vector, stale.scores("anything"))} == set(known)


def _watched_search(data_dir) -> dict:
    """Which thread opened Chroma (if any) and which embedded the query, in a fresh `Rag`."""
    seen = {}
    fresh = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    real_connect = fresh.store._connect

    def connect():
        seen["connect"] = threading.current_thread().name
        return real_connect()

    fresh.store._connect = connect
    real_embed = fresh.embedder.embed

    def embed(texts):
        seen["embed"] = threading.current_thread().name
        return real_embed(texts)

    fresh.embedder.embed = embed
    assert fresh.search("graph neural networks", k=3)
    return seen


def test_store_is_opened_on_a_second_thread_during_the_embedding(fake_seeded):
    """With the search cache fresh Chroma is not opened at all; without it (here removed), it is
    opened on the second thread while the main one embeds the query."""
    import shutil

    from rag import index

    assert _watched_search(fake_seeded.settings.data_dir) == {"embed": threading.main_thread().name}
    shutil.rmtree(index.cache_folder(fake_seeded.store))
    assert _watched_search(fake_seeded.settings.data_dir) == {"connect": "rag-open-store", "embed": threading.main_thread().name}


def test_summarize_searches_once(seeded_fake_llm, fake_llm, monkeypatch):
    calls = []
    real = seeded_fake_llm.retriever.search
    monkeypatch.setattr(seeded_fake_llm.retriever, "search", lambda *a, **kw: calls.append((a, kw)) or real(*a, **kw))
    fake_llm.queue("NOT FOUND")
    seeded_fake_llm.summarize("tabular classification with transformers")
    assert len(calls) == 1


# --- start-up -----------------------------------------------------------------------------------

HEAVY = ["chromadb", "onnxruntime", "llama_cpp"]


def _modules_after(code: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, env=env, cwd=str(PROJECT_ROOT), check=True,
    ).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


def test_import_rag_loads_no_heavy_library():
    loaded = _modules_after("import rag\nassert rag.__version__")
    assert not [m for m in HEAVY + ["numpy", "rag.pipeline"] if m in loaded]
    loaded = _modules_after("from rag import Rag, Settings, InputError")
    assert not [m for m in HEAVY if m in loaded]


def test_rag_help_loads_no_heavy_library():
    code = (
        "import sys, runpy\nsys.argv = ['rag', '--help']\n"
        "try:\n    runpy.run_module('rag', run_name='__main__')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    )
    loaded = _modules_after(code)
    assert "rag.cli" in loaded
    assert not [m for m in HEAVY + ["numpy"] if m in loaded]
