"""A store keeps the name of the embedder its vectors came from: a search or an ingest with another
embedder is refused in one line naming `rag ingest --reembed`, which embeds every stored chunk again
from the text the store holds. Fakes enter through `Rag(embedder=...)` and the CLI's factory."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import SEEDS_DIR, FakeEmbedder
from rag import Rag, chunking, cli, models
from rag.errors import StoreError
from rag.settings import Settings
from rag.store import LEGACY_EMBEDDER


class OtherEmbedder(FakeEmbedder):
    """Another embedder: other name, other vectors (each word's sign flipped)."""

    name = "other-hash-384"

    def _vector(self, text: str) -> np.ndarray:
        return -super()._vector(text)


def _rag(data_dir, embedder) -> Rag:
    return Rag(Settings.load(data_dir=data_dir), embedder=embedder)


def test_another_embedders_store_is_refused_until_it_is_re_embedded(data_dir):
    _rag(data_dir, FakeEmbedder()).ingest([SEEDS_DIR])
    other = OtherEmbedder()
    rag = _rag(data_dir, other)
    with pytest.raises(StoreError, match=r"holds vectors of fake-hash-384, and this version embeds with other-hash-384; run `rag ingest --reembed`"):
        rag.search("graph neural networks")
    with pytest.raises(StoreError, match="--reembed"):
        rag.ingest([SEEDS_DIR])  # no new paper is written beside the old vectors
    doctor = {c.name: c for c in rag.doctor()}["store"]
    assert not doctor.ok and doctor.fix == "rag ingest --reembed"

    count = rag.store.count()
    assert rag.reembed() == count
    assert rag.search("graph neural networks")
    records = rag.store.all_chunks()
    stored = rag.store.vectors_by_id([r.chunk_id for r in records])
    for r in records[:20]:
        assert np.allclose(stored[r.chunk_id], other.embed([chunking.dense_text(r.title, r.text)])[0], atol=1e-6)
    assert rag.ingest([SEEDS_DIR]).unchanged == rag.ingest([SEEDS_DIR]).papers  # and ingest is allowed again
    with pytest.raises(StoreError, match="holds vectors of other-hash-384"):
        _rag(data_dir, FakeEmbedder()).search("graph neural networks")


def test_an_interrupted_re_embed_leaves_the_store_refused(data_dir):
    """The new name is written only after the last vector: half a re-embed is never searched."""
    _rag(data_dir, FakeEmbedder()).ingest([SEEDS_DIR])
    failing = OtherEmbedder(fail_on_call=2)
    with pytest.raises(RuntimeError, match="simulated failure"):
        _rag(data_dir, failing).reembed()
    with pytest.raises(StoreError, match="holds vectors of fake-hash-384"):
        _rag(data_dir, OtherEmbedder()).search("graph neural networks")
    rag = _rag(data_dir, OtherEmbedder())
    rag.reembed()
    assert rag.search("graph neural networks")


def test_a_store_from_before_the_name_was_kept_holds_the_old_embedders_vectors(data_dir):
    rag = _rag(data_dir, FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    with rag.store.writer() as s:  # what an older version left: no embedder in the metadata
        meta = s._metadata()
        del meta["embedder"]
        s._col().modify(metadata=meta)
    current = FakeEmbedder()
    current.name = models.EMBEDDING_MODEL
    with pytest.raises(StoreError, match=f"holds vectors of {LEGACY_EMBEDDER}, and this version embeds with {models.EMBEDDING_MODEL}"):
        _rag(data_dir, current).search("x")


def test_an_empty_store_takes_any_embedder(data_dir):
    rag = _rag(data_dir, FakeEmbedder())
    rag.ingest([SEEDS_DIR])
    rag.remove([p.paper_id for p in rag.papers()])
    other = _rag(data_dir, OtherEmbedder())
    other.ingest([SEEDS_DIR])
    assert other.search("graph neural networks")


def run_cli(runner, *args: str):
    return runner.invoke(cli.app, list(args))


def test_cli_names_the_fix_and_reembeds(runner, data_dir):
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=FakeEmbedder())
    assert run_cli(runner, "ingest").exit_code == 0
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=OtherEmbedder())
    refused = run_cli(runner, "search", "graph neural networks")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr.startswith("error: the store in") and "run `rag ingest --reembed` once" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    bad = run_cli(runner, "ingest", "--reembed", str(SEEDS_DIR))
    assert bad.exit_code == 2 and "--reembed re-embeds what the store holds" in bad.stderr
    done = run_cli(runner, "ingest", "--reembed", "--json")
    assert done.exit_code == 0, done.stderr
    assert '"embedder": "other-hash-384"' in done.stdout
    assert run_cli(runner, "search", "graph neural networks").exit_code == 0
