"""Ingest with the fake embedder into a real Chroma store in tmp: incremental, safe on failure,
one writer at a time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from conftest import SEED_PAPERS, FakeEmbedder
from rag import corpus
from rag.papers import paper_id_for
from rag.errors import InputError, StoreError
from rag.pipeline import Rag

FIRST_FILE_PAPERS = 7  # 000_*.txt
EDITED = "Cyclical Curriculum Learning"


def snapshot(rag: Rag) -> dict[str, tuple[str, int]]:
    """paper_id -> (content hash, chunk count) as the store holds them."""
    return {pid: (p.content_hash, p.chunks) for pid, p in rag.store.stored_papers().items()}


def edit_abstract(folder: Path, title: str, new_abstract: str | None = None, append: str = "") -> None:
    """Replace (or extend) the abstract line that follows `title` in the seed listing holding it."""
    for f in folder.glob("*.txt"):
        lines = f.read_text(encoding="utf-8").split("\n")
        if title not in lines:
            continue
        i = lines.index(title) + 1
        while not lines[i].strip():
            i += 1
        lines[i] = new_abstract if new_abstract is not None else lines[i] + append
        f.write_text("\n".join(lines), encoding="utf-8")
        return
    raise AssertionError(f"{title!r} not found in {folder}")


@pytest.fixture
def ingested(fake_rag, seed_copy) -> Rag:
    report = fake_rag.ingest([seed_copy])
    assert report.added == SEED_PAPERS
    fake_rag.embedder.calls.clear()
    return fake_rag


def test_first_ingest_adds_82(fake_rag, seed_copy, fake_embedder):
    progress = []
    report = fake_rag.ingest([seed_copy], progress=lambda done, total: progress.append((done, total)))
    assert (report.files, report.papers, report.added, report.updated, report.unchanged, report.removed) == (2, 82, 82, 0, 0, 0)
    assert report.chunks_embedded == fake_embedder.texts_embedded == fake_rag.store.count()
    assert report.chunks_embedded > SEED_PAPERS  # some abstracts need two chunks
    assert len(fake_rag.papers()) == SEED_PAPERS
    assert progress[0] == (0, report.chunks_embedded) and progress[-1] == (report.chunks_embedded, report.chunks_embedded)
    # what the embedder sees is "title. chunk"
    assert all(t.split(". ")[0] for call in fake_embedder.calls for t in call)


def test_ingest_without_paths_reads_the_seed_dir(fake_rag):
    report = fake_rag.ingest()
    assert report.files == 2 and report.added == SEED_PAPERS


def test_reingest_embeds_nothing(ingested, seed_copy, fake_embedder):
    gen = ingested.store.generation()
    before = snapshot(ingested)
    report = ingested.ingest([seed_copy])
    assert fake_embedder.calls == []
    assert report.chunks_embedded == 0
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, SEED_PAPERS, 0)
    assert snapshot(ingested) == before
    assert ingested.store.generation() == gen  # nothing changed, so caches stay valid


def test_reingest_from_a_fresh_process_embeds_nothing(ingested, seed_copy, data_dir):
    from rag.settings import Settings

    other_embedder = FakeEmbedder()
    report = Rag(Settings.load(data_dir=data_dir), embedder=other_embedder).ingest([seed_copy])
    assert other_embedder.calls == [] and report.unchanged == SEED_PAPERS


def test_modified_abstract_reembeds_only_that_paper(ingested, seed_copy, fake_embedder):
    before = snapshot(ingested)
    edit_abstract(seed_copy, EDITED, append=" We also measure zorblax stability.")
    report = ingested.ingest([seed_copy])
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, SEED_PAPERS - 1, 0)
    texts = [t for call in fake_embedder.calls for t in call]
    assert texts and all(t.startswith(EDITED + ". ") for t in texts)
    assert report.chunks_embedded == len(texts)
    after = snapshot(ingested)
    pid = paper_id_for(EDITED)
    assert after[pid][0] != before[pid][0]
    assert {k: v for k, v in after.items() if k != pid} == {k: v for k, v in before.items() if k != pid}
    # the new text is searchable at once, lexical index included
    hits = ingested.search("zorblax stability", k=1, mode="lexical")
    assert [h.title for h in hits] == [EDITED]


def test_shorter_abstract_drops_leftover_chunks(ingested, seed_copy):
    pid = paper_id_for(EDITED)
    assert snapshot(ingested)[pid][1] >= 2, "pick a seed paper whose abstract needs two chunks"
    edit_abstract(seed_copy, EDITED, new_abstract="A short replacement abstract about cyclical curricula. " * 4)
    report = ingested.ingest([seed_copy])
    assert report.updated == 1
    assert snapshot(ingested)[pid][1] == 1
    ids = ingested.store._col().get(where={"paper_id": pid})["ids"]
    assert ids == [f"{pid}:0"]


def test_deleted_source_file_removes_its_papers(ingested, seed_copy):
    first = next(seed_copy.glob("000_*.txt"))
    gone_titles = {p.title for p in corpus.read_file(first).papers}
    first.unlink()
    report = ingested.ingest([seed_copy])
    assert report.removed == FIRST_FILE_PAPERS and report.unchanged == SEED_PAPERS - FIRST_FILE_PAPERS
    titles = {p.title for p in ingested.papers()}
    assert len(titles) == SEED_PAPERS - FIRST_FILE_PAPERS
    assert not titles & gone_titles
    assert not [h for h in ingested.search("Q-learners collude prisoner's dilemma", k=5, mode="lexical") if h.title in gone_titles]


def test_record_deleted_from_a_file_is_removed(ingested, seed_copy):
    first = next(seed_copy.glob("000_*.txt"))
    lines = first.read_text(encoding="utf-8").split("\n")
    start = lines.index("Explorable Mesh Deformation Subspaces from Unstructured 3D Generative Models")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("Model Breadcrumbs"))
    first.write_text("\n".join(lines[:start] + lines[end:]), encoding="utf-8")
    report = ingested.ingest([seed_copy])
    assert (report.removed, report.unchanged, report.chunks_embedded) == (1, SEED_PAPERS - 1, 0)
    assert "Explorable Mesh Deformation Subspaces from Unstructured 3D Generative Models" not in {p.title for p in ingested.papers()}


def test_ingesting_one_file_keeps_papers_of_other_files(ingested, seed_copy):
    second = next(seed_copy.glob("003_*.txt"))
    report = ingested.ingest([second])
    assert report.removed == 0
    assert len(ingested.papers()) == SEED_PAPERS


def test_moved_file_updates_source_without_reembedding(ingested, seed_copy, fake_embedder, tmp_path):
    moved = tmp_path / "moved"
    shutil.move(str(seed_copy), moved)
    report = ingested.ingest([moved])
    assert fake_embedder.calls == [] and report.unchanged == SEED_PAPERS and report.removed == 0
    assert all(Path(p.source).parent == moved.resolve() for p in ingested.papers())


def test_missing_path_fails_before_touching_the_store(ingested, seed_copy, tmp_path, fake_embedder):
    before, gen = snapshot(ingested), ingested.store.generation()
    with pytest.raises(InputError, match="no such file"):
        ingested.ingest([seed_copy, tmp_path / "does-not-exist.txt"])
    assert fake_embedder.calls == []
    assert snapshot(ingested) == before and ingested.store.generation() == gen


def test_unreadable_file_among_inputs_is_skipped_and_the_rest_ingested(ingested, seed_copy, fake_embedder):
    edit_abstract(seed_copy, EDITED, append=" Changed.")
    (seed_copy / "blob.txt").write_bytes(b"\x00\x01binary\x00")
    report = ingested.ingest([seed_copy])
    assert report.updated == 1 and report.unchanged == SEED_PAPERS - 1 and report.removed == 0
    (line,) = report.skipped
    assert "blob.txt" in line and "not a text file" in line


def test_only_unreadable_inputs_fail_before_touching_the_store(ingested, seed_copy, fake_embedder, tmp_path):
    blob, empty = tmp_path / "blob.txt", tmp_path / "empty.md"
    blob.write_bytes(b"\x00\x01binary\x00")
    empty.write_bytes(b"")
    before, gen = snapshot(ingested), ingested.store.generation()
    with pytest.raises(InputError, match=r"not a text file \(and 1 more files skipped\)"):
        ingested.ingest([blob, empty])
    assert fake_embedder.calls == [] and snapshot(ingested) == before and ingested.store.generation() == gen


def test_embedder_failing_midway_keeps_stored_papers(data_dir, seed_copy, ingested):
    from rag.settings import Settings

    before = snapshot(ingested)
    # Many papers change (more than one embedding batch) and a whole file disappears...
    for f in seed_copy.glob("003_*.txt"):
        lines = f.read_text(encoding="utf-8").split("\n")
        f.write_text("\n".join(l + " Revised." if len(l) > 200 else l for l in lines), encoding="utf-8")
    next(seed_copy.glob("000_*.txt")).unlink()
    # ...and the embedder dies on its second batch.
    failing = FakeEmbedder(fail_on_call=2)
    broken = Rag(Settings.load(data_dir=data_dir), embedder=failing)
    with pytest.raises(RuntimeError, match="simulated failure"):
        broken.ingest([seed_copy])
    assert len(failing.calls) == 2
    after = snapshot(broken)
    assert set(after) == set(before), "a failed ingest must not lose (or delete) any stored paper"
    assert all(chunks >= 1 for _, chunks in after.values())
    # The lock was released and a retry finishes the job.
    retry = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    report = retry.ingest([seed_copy])
    assert report.removed == FIRST_FILE_PAPERS
    assert len(retry.papers()) == SEED_PAPERS - FIRST_FILE_PAPERS
    assert retry.ingest([seed_copy]).chunks_embedded == 0


def test_embedder_failing_on_first_batch_changes_nothing(data_dir, seed_copy, ingested):
    from rag.settings import Settings

    before, gen = snapshot(ingested), ingested.store.generation()
    edit_abstract(seed_copy, EDITED, append=" Changed.")
    with pytest.raises(RuntimeError):
        Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder(fail_on_call=1)).ingest([seed_copy])
    assert snapshot(ingested) == before and ingested.store.generation() == gen


def test_second_writer_gets_store_error_while_lock_is_held(ingested, seed_copy, data_dir, fake_embedder):
    before = snapshot(ingested)
    edit_abstract(seed_copy, EDITED, append=" Changed while locked.")
    lock = FileLock(str(data_dir / "ingest.lock"))
    with lock.acquire(timeout=1):
        with pytest.raises(StoreError, match=r"^another ingest is running") as exc:
            ingested.ingest([seed_copy])
        assert "\n" not in str(exc.value)
    assert fake_embedder.calls == []
    assert snapshot(ingested) == before
    # once the other writer is done, ingest works again
    assert ingested.ingest([seed_copy]).updated == 1


def test_reading_a_store_never_ingested_is_a_store_error(fake_rag, data_dir):
    with pytest.raises(StoreError, match="rag ingest"):
        fake_rag.papers()
    with pytest.raises(StoreError, match="rag ingest"):
        fake_rag.search("graph neural networks")
    assert not (data_dir / "chroma" / "chroma.sqlite3").exists(), "reading must not create a store"


def test_plain_documents_ingest_next_to_listings(fake_rag, seed_copy):
    (seed_copy / "notes.md").write_text("# Zorblax Field Notes\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
    report = fake_rag.ingest([seed_copy])
    assert report.files == 3 and report.added == SEED_PAPERS + 1
    (hit,) = fake_rag.search("zorblax crystals", k=1, mode="lexical")
    assert hit.title == "Zorblax Field Notes"
