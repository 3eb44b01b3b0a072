"""What a reliability probe found losing or corrupting a user's library, each against the real
Chroma store (the fake embedder only makes vectors): removal by substring, pruning of papers whose
files were not given, a broken BibTeX entry deleting its paper, a note replacing a paper of the same
title, an interrupted long write marked complete, and Ctrl-C that took minutes to stop an embedding."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from typer.testing import CliRunner

from conftest import SEED_PAPERS, FakeEmbedder
from rag import chunking, cli, corpus
from rag.papers import content_hash, paper_id_for
from rag.errors import InputError
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings
from rag.store import PaperWrite
from rag.types import Chunk

TABPFN = "TabPFN: A Transformer That Solves Small Tabular Classification Problems in a Second"


@pytest.fixture
def ingested(fake_rag, seed_copy) -> Rag:
    assert fake_rag.ingest([seed_copy]).added == SEED_PAPERS
    return fake_rag


def titles(rag: Rag) -> list[str]:
    return [p.title for p in rag.papers()]


def cli_run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli.app, list(args), input=input)


# --- 1. remove matches whole ids and paths, never substrings ------------------------------------


@pytest.mark.parametrize("target", ["", "  ", "e", "seeds", "0"])
def test_remove_with_a_target_that_names_no_paper_removes_nothing(ingested, target):
    with pytest.raises(InputError):
        ingested.remove([target])
    assert len(ingested.papers()) == SEED_PAPERS


@pytest.mark.parametrize("target", ["", "e"])
def test_cli_remove_with_an_empty_or_one_letter_target_is_one_error_line(ingested, target):
    result = cli_run("remove", target, "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert len(ingested.papers()) == SEED_PAPERS


def test_remove_by_a_deleted_files_stored_path_and_by_folder(ingested, seed_copy):
    first = next(seed_copy.glob("000_*.txt"))
    held = {p.title for p in corpus.read_file(first).papers}
    first.unlink()  # the file is gone; its stored path still names its papers
    assert {p.title for p in ingested.remove([str(first)])} == held
    assert len(ingested.papers()) == SEED_PAPERS - len(held)
    assert len(ingested.remove([str(seed_copy)])) == SEED_PAPERS - len(held)  # a folder: every path under it


def test_cli_remove_of_many_papers_needs_yes_and_dry_run_changes_nothing(ingested, seed_copy):
    dry = cli_run("remove", str(seed_copy), "--dry-run")
    assert dry.exit_code == 0 and dry.stdout.strip().endswith(f"{SEED_PAPERS} papers would be removed")
    assert len(ingested.papers()) == SEED_PAPERS
    refused = cli_run("remove", str(seed_copy))  # not a terminal: no one to ask
    assert refused.exit_code == 2 and "--yes" in refused.stderr.splitlines()[-1]
    assert "would remove" in refused.stderr  # the list of what would go comes first
    assert len(ingested.papers()) == SEED_PAPERS
    done = cli_run("remove", str(seed_copy), "--yes")
    assert done.exit_code == 0 and done.stdout.strip().endswith(f"{SEED_PAPERS} papers removed")


def test_cli_remove_asks_at_a_terminal_and_a_no_keeps_everything(seed_copy, data_dir):
    """Through a real pseudo-terminal, as a user at a shell would answer the question."""
    import pty

    Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).ingest([seed_copy])
    env = {**os.environ, "RAG_DATA_DIR": str(data_dir), "PYTHONPATH": str(PROJECT_ROOT)}
    code = "import sys; from rag import cli; cli.app(['remove', sys.argv[1]])"
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code, str(seed_copy)], stdin=secondary, stdout=secondary, stderr=secondary, cwd=PROJECT_ROOT, env=env)
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 120
    while b"Remove these" not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(primary, 4096)
        except OSError:
            break
    os.write(primary, b"n\n")
    proc.wait(timeout=60)
    os.close(primary)
    assert b"Remove these 82 papers?" in seen, seen[-500:]
    assert proc.returncode == 1
    assert len(Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).papers()) == SEED_PAPERS


# --- 2. only what is ingested is pruned ----------------------------------------------------------


def test_ingesting_an_unrelated_file_keeps_papers_of_an_unmounted_folder(ingested, seed_copy, tmp_path):
    aside = tmp_path / "drive-contents"
    shutil.move(str(seed_copy), aside)
    seed_copy.mkdir()  # the mount point is still there, empty
    other = tmp_path / "other.md"
    other.write_text("# Zorblax Field Notes\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
    report = ingested.ingest([other])
    assert report.removed == 0 and report.added == 1
    assert len(ingested.papers()) == SEED_PAPERS + 1


def test_ingesting_an_empty_folder_is_an_error_and_removes_nothing(ingested, seed_copy, tmp_path):
    for f in seed_copy.iterdir():
        f.unlink()
    with pytest.raises(InputError, match="no paper files"):
        ingested.ingest([seed_copy])
    assert len(ingested.papers()) == SEED_PAPERS
    result = cli_run("ingest", str(seed_copy))
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "no paper files" in result.stderr


def test_a_file_gone_from_a_reingested_folder_still_loses_its_papers(ingested, seed_copy):
    first = next(seed_copy.glob("000_*.txt"))
    n = len(corpus.read_file(first).papers)
    first.unlink()
    assert ingested.ingest([seed_copy]).removed == n


# --- 3. a broken BibTeX entry keeps its paper ----------------------------------------------------

BIB = textwrap.dedent(
    """\
    @article{hopper2019,
      title = {Compilers for Everyone},
      author = {Hopper, Grace},
      year = {2019},
      journal = {Journal of Compilers},
    }
    @misc{noether2021,
      title = {Symmetry and Conservation in Learned Dynamics},
      author = {Emmy Noether},
      year = {2021},
    }
    @misc{lovelace2022,
      title = {Analytical Engines for Tabular Data},
      author = {Ada Lovelace},
      year = {2022},
    }
    """
)


def test_a_typo_in_one_bibtex_entry_keeps_its_paper(fake_rag, tmp_path):
    bib = tmp_path / "refs.bib"
    bib.write_text(BIB, encoding="utf-8")
    assert fake_rag.ingest([bib]).added == 3
    bib.write_text(BIB.replace("title = {Symmetry", "title = {{Symmetry"), encoding="utf-8")  # an unbalanced brace
    report = fake_rag.ingest([bib])
    assert report.removed == 0 and report.skipped, report
    assert sorted(titles(fake_rag)) == ["Analytical Engines for Tabular Data", "Compilers for Everyone", "Symmetry and Conservation in Learned Dynamics"]
    bib.write_text(BIB.split("@misc{noether2021")[0], encoding="utf-8")  # fixed, and the entry really deleted
    assert fake_rag.ingest([bib]).removed == 2


# --- 4. a note titled like a stored paper is a paper of its own ----------------------------------

IMPOSTOR = f"# {TABPFN}\n\nIt was written by aliens in 1850 according to an impostor note.\n"


def test_a_note_with_a_stored_papers_title_never_replaces_its_text(ingested, tmp_path):
    pid = paper_id_for(TABPFN)
    before = ingested.store.paper_texts([pid])[pid]
    note = tmp_path / "collision.md"
    note.write_text(IMPOSTOR, encoding="utf-8")
    report = ingested.ingest([note])
    assert report.added == 1 and report.updated == 0
    assert ingested.store.paper_texts([pid])[pid] == before
    same_title = [p for p in ingested.papers() if p.title == TABPFN]
    assert len(same_title) == 2 and {p.sources[0].endswith("collision.md") for p in same_title} == {True, False}
    assert ingested.ingest([note]).unchanged == 1  # stable on re-ingest


def test_a_note_ingested_first_is_not_replaced_by_a_listing(fake_rag, seed_copy, tmp_path):
    note = tmp_path / "collision.md"
    note.write_text(IMPOSTOR, encoding="utf-8")
    fake_rag.ingest([note])
    assert fake_rag.ingest([seed_copy]).added == SEED_PAPERS
    texts = [t for t in fake_rag.store.paper_texts([p.paper_id for p in fake_rag.papers() if p.title == TABPFN]).values()]
    assert len(texts) == 2 and sum("aliens" in t for t in texts) == 1


def test_one_batch_with_two_texts_of_one_title_keeps_both(fake_rag, tmp_path):
    (tmp_path / "a.md").write_text("# Same Title\n\nFirst text about zorblax crystals.\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Same Title\n\nSecond text about quokka routing.\n", encoding="utf-8")
    (tmp_path / "c.md").write_text("# Same Title\n\nFirst text about zorblax crystals.\n", encoding="utf-8")  # a copy of a.md
    assert fake_rag.ingest([tmp_path]).added == 2
    assert sorted(len(p.sources) for p in fake_rag.papers()) == [1, 2]


def test_a_bibtex_entry_and_its_pdf_still_merge(fake_rag, tmp_path):
    from pdfmaker import sample_paper

    sample_paper(tmp_path / "sparse.pdf")
    (tmp_path / "refs.bib").write_text("@misc{s, title={Sparse Routing for Efficient Transformers}, year={2022}}\n", encoding="utf-8")
    assert fake_rag.ingest([tmp_path / "sparse.pdf"]).added == 1
    assert fake_rag.ingest([tmp_path / "refs.bib"]).added == 0
    (paper,) = fake_rag.papers()
    assert len(paper.sources) == 2 and paper.year == 2022


# --- 5. a long write is marked complete last ------------------------------------------------------


def test_a_long_paper_interrupted_between_chroma_batches_is_rewritten(fake_rag, tmp_path):
    """More chunks than one Chroma write takes; the second write fails (a chunk Chroma refuses),
    as a kill between the two would leave it. The paper must not look complete."""
    store = fake_rag.store
    with store.writer():
        step = store._client.get_max_batch_size()
    words = " ".join(f"w{i}" for i in range(12))
    note = tmp_path / "long.md"
    note.write_text("# A Very Long Paper\n\n" + "\n\n".join(f"Paragraph {i} says {words}." for i in range(step + 50)), encoding="utf-8")
    paper = corpus.read_file(note).papers[0]
    chunks = chunking.chunk_paper(paper, 12, 0)
    assert len(chunks) > step
    bad = chunks[:-1] + [Chunk(chunks[-1].chunk_id, paper.paper_id, chunks[-1].index, chunks[-1].text, page={"not": "a page"})]
    vectors = FakeEmbedder().embed([c.text for c in bad])
    with store.writer():
        store.mark_vectors_from(FakeEmbedder.name)  # as the ingest that wrote it would have
        with pytest.raises(Exception):
            store.put_paper(PaperWrite(paper, bad, vectors, content_hash(paper), "f", 0, [paper.source]))
    stored = store.stored_papers()[paper.paper_id]
    assert stored.chunks >= step and stored.content_hash == ""  # written in part, not stamped
    rag = Rag(Settings.load(data_dir=store.data_dir, chunk_words=12, chunk_overlap=0), embedder=FakeEmbedder())
    report = rag.ingest([note])
    assert report.updated == 1 and report.chunks_embedded == len(chunks)
    assert rag.store.stored_papers()[paper.paper_id].content_hash == content_hash(paper)
    assert rag.ingest([note]).unchanged == 1


# --- Ctrl-C during a long embedding -------------------------------------------------------------


def test_ctrl_c_stops_a_long_embedding_within_a_slice(real_embedder):
    """The interrupt used to wait for every remaining batch of the pool. Compared with the time the
    whole job takes, measured in the same run (no wall-clock limit)."""
    texts = [f"sentence number {i} about graph neural networks and sparse routing." for i in range(4000)]
    started = time.perf_counter()
    real_embedder.embed(texts[:200])
    whole_job = (time.perf_counter() - started) * len(texts) / 200
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))  # what Ctrl-C sends
    started = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        real_embedder.embed(texts)
    stopped_after = time.perf_counter() - started
    assert stopped_after < whole_job * 0.25, (stopped_after, whole_job)
