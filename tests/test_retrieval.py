"""Hybrid retrieval with the real embedder over the real seeds (read-only shared store), plus
BM25 index caching with the fake embedder on a private store."""

from __future__ import annotations

import json

import pytest

from conftest import SEED_PAPERS, FakeEmbedder
from rag.index import LexicalIndex
from rag.papers import content_hash, paper_id_for
from rag.text import tokenize
from rag.errors import InputError
from rag.pipeline import Rag
from rag.settings import Settings
from rag.store import PaperWrite
from rag.types import Chunk, Paper

FIN_RAY = "Asynchronous Parallel Reinforcement Learning for Optimizing Propulsive Performance in Fin Ray Control"
GRAPHICS = "Efficient Graphics Representation with Differentiable Indirection"

KNOWN = [
    ("Which study used asynchronous parallel training for fish fin ray control?", FIN_RAY),
    ("What did Sayantan Datta and Carl Marshall introduce for graphics?", GRAPHICS),
    ("Can independent Q-learning agents end up colluding in a repeated prisoner's dilemma?",
     "Q-learners Can Provably Collude in the Iterated Prisoner's Dilemma"),
    ("How can several fine-tuned models be merged using sparse masks?",
     "Model Breadcrumbs: Scaling Multi-Task Model Merging with Sparse Masks"),
    ("bidding strategy for display ads learned with reinforcement learning",
     "Real-Time Bidding by Reinforcement Learning in Display Advertising"),
    ("Who explored deformation subspaces of 3D meshes using generative models?",
     "Explorable Mesh Deformation Subspaces from Unstructured 3D Generative Models"),  # title-only paper
]


@pytest.mark.parametrize("question, title", KNOWN, ids=[t[:30] for _, t in KNOWN])
def test_known_question_finds_its_paper_first(seeded_real, question, title):
    results = seeded_real.search(question, k=5)
    assert results[0].title == title, [r.title for r in results]
    assert results[0].score >= seeded_real.settings.min_relevance


def test_author_question_is_found_by_the_lexical_side(seeded_real):
    q = "What did Sayantan Datta and Carl Marshall introduce for graphics?"
    lexical = seeded_real.search(q, k=3, mode="lexical")
    assert lexical[0].title == GRAPHICS and lexical[0].lexical > 0
    # the author names are not in the embedded text, only in what BM25 indexes
    assert "Sayantan" not in lexical[0].text
    best = seeded_real.search(q, k=1)[0]
    assert best.title == GRAPHICS and best.coverage == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_one_result_per_paper_scores_descending(seeded_real, mode):
    results = seeded_real.search("reinforcement learning value functions", k=10, mode=mode)
    assert len(results) == 10
    ids = [r.paper_id for r in results]
    assert len(set(ids)) == len(ids)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    for r in results:
        assert r.text and r.title


def test_hybrid_relevance_is_on_a_0_to_1_scale(seeded_real):
    for r in seeded_real.search("graph neural networks for recommendation", k=10):
        assert -1.0 <= r.similarity <= 1.0 and 0.0 <= r.coverage <= 1.0
        assert r.score <= 1.0
        w = seeded_real.settings.dense_weight
        assert r.score == pytest.approx(w * r.similarity + (1 - w) * r.coverage, abs=1e-6)


def test_dense_mode(seeded_real):
    results = seeded_real.search("simulated fish swimming with a flexible fin controlled by an RL agent", k=3, mode="dense")
    assert results[0].title == FIN_RAY
    assert all(r.lexical == 0.0 and r.score == r.similarity for r in results)
    assert 0.3 < results[0].similarity <= 1.0


def test_lexical_mode(seeded_real):
    results = seeded_real.search("TabPFN tabular", k=3, mode="lexical")
    assert results[0].title.startswith("TabPFN")
    assert all(r.similarity == 0.0 and r.score == r.lexical > 0 for r in results)


def test_lexical_mode_returns_nothing_for_unknown_words(seeded_real):
    assert seeded_real.search("qwxzyv plorftang", k=5, mode="lexical") == []


def test_k_limits_results(seeded_real):
    assert len(seeded_real.search("neural networks", k=1)) == 1
    assert len(seeded_real.search("neural networks")) == seeded_real.settings.k


def test_unrelated_question_is_below_min_relevance(seeded_real):
    for q in ["What is the boiling point of ethanol at sea level?", "Who won the 1998 football World Cup final?"]:
        top = seeded_real.search(q, k=3)
        assert top, "hybrid search always ranks something"
        assert top[0].score < seeded_real.settings.min_relevance, (q, top[0].title, top[0].score)


def test_empty_query_is_an_input_error(seeded_real):
    with pytest.raises(InputError):
        seeded_real.search("   ")


def test_tokenize_folds_plurals_and_splits_hyphens():
    assert tokenize("The PV-RNN networks") == ["pv-rnn", "pv", "rnn", "network"]
    assert tokenize("studies of the papers") == []  # stopwords only
    assert "3.5" in tokenize("version 3.5")


# --- the BM25 index follows the store's generation ---------------------------------------


def _add_paper(rag: Rag, title: str, text: str) -> None:
    """Write a paper straight into the store the way another process would, and bump the
    generation WITHOUT saving a new lexical index."""
    paper = Paper(paper_id_for(title), title, (), text, "/elsewhere/notes.md")
    chunk = Chunk(f"{paper.paper_id}:0", paper.paper_id, 0, text)
    with rag.store.writer() as store:
        store.put_paper(PaperWrite(paper, [chunk], rag.embedder.embed([f"{title}. {text}"]), content_hash(paper), "f" * 16))
        store.bump_generation()


@pytest.fixture
def fake_seeded(fake_rag, seed_copy) -> Rag:
    fake_rag.ingest([seed_copy])
    return fake_rag


def test_lexical_index_is_saved_with_the_store_generation(fake_seeded, data_dir):
    saved = json.loads((data_dir / "lexical" / "records.json").read_text())
    assert saved["generation"] == fake_seeded.store.generation() >= 1
    assert len(saved["records"]) == fake_seeded.store.count()
    assert LexicalIndex.load(data_dir / "lexical", saved["generation"]) is not None
    assert LexicalIndex.load(data_dir / "lexical", saved["generation"] + 1) is None


def test_lexical_index_is_rebuilt_when_generation_changes(fake_seeded, data_dir):
    _add_paper(fake_seeded, "Zorblax Crystal Resonance", "Zorblax crystals resonate at dusk in the lab.")
    fresh = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())  # a new process
    hits = fresh.search("zorblax crystals", k=3, mode="lexical")
    assert [h.title for h in hits] == ["Zorblax Crystal Resonance"]
    saved = json.loads((data_dir / "lexical" / "records.json").read_text())
    assert saved["generation"] == fresh.store.generation()
    assert len(saved["records"]) == fresh.store.count()


def test_unchanged_generation_reuses_the_saved_index(fake_seeded, data_dir):
    folder = data_dir / "lexical"
    saved = json.loads((folder / "records.json").read_text())
    # Tamper with the cache (same generation): a new process must use it, proving it is not rebuilt.
    saved["records"] = [r for r in saved["records"] if not r[2].startswith("TabPFN")]
    (folder / "records.json").write_text(json.dumps(saved))
    fresh = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    assert not [h for h in fresh.search("TabPFN", k=5, mode="lexical") if h.title.startswith("TabPFN")]


def test_long_lived_rag_sees_papers_ingested_by_another_process(fake_seeded, data_dir):
    reader = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    assert reader.search("neural networks", k=1, mode="lexical")  # builds/loads its index
    writer = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    _add_paper(writer, "Zorblax Crystal Resonance", "Zorblax crystals resonate at dusk in the lab.")
    hits = reader.search("zorblax crystals", k=3, mode="lexical")
    assert [h.title for h in hits] == ["Zorblax Crystal Resonance"]


def test_same_rag_sees_its_own_ingest(fake_seeded, tmp_path):
    assert fake_seeded.search("zorblax", k=3, mode="lexical") == []
    doc = tmp_path / "z.md"
    doc.write_text("# Zorblax Crystal Resonance\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
    fake_seeded.ingest([doc])
    assert [h.title for h in fake_seeded.search("zorblax", k=3, mode="lexical")] == ["Zorblax Crystal Resonance"]
    assert len(fake_seeded.papers()) == SEED_PAPERS + 1
