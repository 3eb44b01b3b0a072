"""Your own papers: PDF and BibTeX ingest, structure-aware chunks with pages, one paper from many
sources, metadata filters applied before retrieval, `rag papers` / `rag remove`, and bad files
skipped with a reason. Every fixture file is written by the test (fpdf2 or literal bytes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import FakeEmbedder, FakeGenerator, RagRunner
from pdfmaker import LOREM, make_scanned_pdf, sample_paper
from rag import chunking, cli, corpus
from rag.errors import InputError
from rag.filters import Filters
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings

SPARSE = "Sparse Routing for Efficient Transformers"
BIB = textwrap.dedent(
    """\
    @inproceedings{lovelace2022,
      title = {Sparse Routing for Efficient {T}ransformers},
      author = {Lovelace, Ada and Turing, Alan},
      year = {2022},
      booktitle = {Imaginary ML},
    }
    @article{hopper2019,
      title = {Compilers for Everyone},
      author = {Hopper, Grace},
      year = {2019},
      journal = {Journal of Compilers},
      abstract = {We describe a compiler that turns English-like statements into machine code for business data processing.},
    }
    @misc{noether2021,
      title = "Symmetry and Conservation in Learned Dynamics",
      author = "Emmy Noether",
      year = 2021,
      abstract = "Learned dynamics models that respect symmetries conserve energy over long rollouts.",
    }
    """
)
BROKEN_ENTRY = "@article{broken, title={Unclosed, author={Nobody}\n"


@pytest.fixture
def library(tmp_path) -> Path:
    """A folder as a user would have it: a PDF, a .bib with the PDF's entry and two more, a note."""
    folder = tmp_path / "library"
    (folder / "pdfs").mkdir(parents=True)
    sample_paper(folder / "pdfs" / "sparse.pdf")
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    (folder / "note.md").write_text("# Zorblax Field Notes\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
    return folder


@pytest.fixture
def ingested_library(fake_rag, library) -> Rag:
    report = fake_rag.ingest([library])
    assert (report.files, report.papers, report.added, report.skipped) == (3, 4, 4, [])
    return fake_rag


def by_title(rag: Rag, **filters):
    return {p.title: p for p in rag.papers(Filters(**filters) if filters else None)}


# --- readers -----------------------------------------------------------------------------------


def test_pdf_gives_title_authors_year_and_paged_sections(tmp_path):
    (paper,) = corpus.read_file(sample_paper(tmp_path / "p.pdf")).papers
    assert paper.title == SPARSE and paper.authors == ("Ada Lovelace", "Alan Turing") and paper.year == 2022
    assert paper.abstract.startswith("We study sparse mixture routing")
    sections = [(b.page, b.section) for b in paper.blocks]
    assert (1, "Abstract") in sections and (2, "Method") in sections and (3, "Results") in sections
    assert not any("Some other paper" in b.text for b in paper.blocks), "the reference list is not content"


def test_pdf_without_metadata_takes_title_and_authors_from_the_first_page(tmp_path):
    (paper,) = corpus.read_file(sample_paper(tmp_path / "p.pdf", metadata=False)).papers
    assert paper.title == SPARSE and paper.authors == ("Ada Lovelace", "Alan Turing") and paper.year == 2022


def test_pdf_is_detected_by_content_whatever_its_name(tmp_path):
    odd = sample_paper(tmp_path / "download")
    (paper,) = corpus.read_file(odd).papers
    assert paper.title == SPARSE and paper.blocks


def test_full_text_chunks_follow_sections_and_keep_pages(tmp_path):
    (paper,) = corpus.read_file(sample_paper(tmp_path / "p.pdf")).papers
    chunks = chunking.chunk_paper(paper, max_words=80)
    assert all(c.page in (1, 2, 3) for c in chunks)
    quokka = next(c for c in chunks if "Quokka" in c.text)
    assert quokka.page == 2 and "perplexity" not in quokka.text  # a chunk never spans two sections
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_bibtex_gives_one_paper_per_entry(tmp_path):
    f = tmp_path / "refs.bib"
    f.write_text(BIB, encoding="utf-8")
    papers = {p.title: p for p in corpus.read_file(f).papers}
    assert set(papers) == {SPARSE, "Compilers for Everyone", "Symmetry and Conservation in Learned Dynamics"}
    hopper = papers["Compilers for Everyone"]
    assert (hopper.authors, hopper.year, hopper.venue) == (("Grace Hopper",), 2019, "Journal of Compilers")
    assert hopper.abstract.startswith("We describe a compiler")
    assert papers[SPARSE].authors == ("Ada Lovelace", "Alan Turing") and papers[SPARSE].venue == "Imaginary ML"


def test_bibtex_is_detected_by_content(tmp_path):
    f = tmp_path / "refs.txt"
    f.write_text(BIB, encoding="utf-8")
    assert len(corpus.read_file(f).papers) == 3


def test_bib_with_a_broken_entry_keeps_the_others_and_says_which(tmp_path):
    f = tmp_path / "refs.bib"
    f.write_text(BROKEN_ENTRY + BIB, encoding="utf-8")
    read = corpus.read_file(f)
    assert len(read.papers) == 3
    (problem,) = read.problems
    assert "broken BibTeX entry at line 1" in problem


# --- one paper, many sources -------------------------------------------------------------------


def test_pdf_and_bibtex_entry_are_one_paper_with_both_sources(ingested_library, library):
    papers = by_title(ingested_library)
    sparse = papers[SPARSE]
    assert set(sparse.sources) == {str((library / "refs.bib").resolve()), str((library / "pdfs" / "sparse.pdf").resolve())}
    assert sparse.year == 2022 and sparse.venue == "Imaginary ML" and sparse.chunks > 1  # full text + bibliography


def test_paper_stays_while_any_source_remains(ingested_library, library, fake_embedder):
    (library / "pdfs" / "sparse.pdf").unlink()
    report = ingested_library.ingest([library])
    assert report.removed == 0
    assert by_title(ingested_library)[SPARSE].sources == (str((library / "refs.bib").resolve()),)
    (library / "refs.bib").write_text(BIB.split("@article")[0], encoding="utf-8")  # keep only the Sparse entry
    assert ingested_library.ingest([library]).removed == 2
    (library / "refs.bib").unlink()
    assert ingested_library.ingest([library]).removed == 1
    assert SPARSE not in by_title(ingested_library)


def test_reingesting_one_source_keeps_the_other_and_its_metadata(ingested_library, library, fake_embedder):
    fake_embedder.calls.clear()
    report = ingested_library.ingest([library / "pdfs" / "sparse.pdf"])
    assert report.removed == 0 and report.unchanged == 1 and fake_embedder.calls == []
    sparse = by_title(ingested_library)[SPARSE]
    assert len(sparse.sources) == 2 and sparse.venue == "Imaginary ML"


def test_renamed_pdf_is_not_reembedded(ingested_library, library, fake_embedder):
    fake_embedder.calls.clear()
    (library / "pdfs" / "sparse.pdf").rename(library / "pdfs" / "renamed.pdf")
    report = ingested_library.ingest([library])
    assert fake_embedder.calls == [] and report.unchanged == 4 and report.removed == 0
    assert any(s.endswith("renamed.pdf") for s in by_title(ingested_library)[SPARSE].sources)


# --- filters -----------------------------------------------------------------------------------


def test_filters_parse_year_ranges():
    assert Filters.parse(year="2020..2023") == Filters(year_from=2020, year_to=2023)
    assert Filters.parse(year="2021") == Filters(year_from=2021, year_to=2021)
    assert Filters.parse(year="2020..") == Filters(year_from=2020)
    assert Filters.parse(year="..2019") == Filters(year_to=2019)
    assert Filters.parse() is None
    for bad in ("soon", "2023..2020", ".."):
        with pytest.raises(InputError, match="--year"):
            Filters.parse(year=bad)


def test_papers_filters(ingested_library, library):
    assert set(by_title(ingested_library, year_from=2020, year_to=2023)) == {SPARSE, "Symmetry and Conservation in Learned Dynamics"}
    assert set(by_title(ingested_library, author="hopper")) == {"Compilers for Everyone"}
    assert set(by_title(ingested_library, title="zorblax")) == {"Zorblax Field Notes"}
    assert set(by_title(ingested_library, source=str(library / "pdfs"))) == {SPARSE}
    assert set(by_title(ingested_library, source="refs.bib")) == {SPARSE, "Compilers for Everyone", "Symmetry and Conservation in Learned Dynamics"}


def test_filter_restricts_retrieval_before_ranking(ingested_library):
    """The best match overall is filtered out, and the filtered search still returns k papers."""
    query = "sparse routing experts compute"
    assert ingested_library.search(query, k=1)[0].title == SPARSE
    hits = ingested_library.search(query, k=2, filters=Filters(year_to=2021))
    assert len(hits) == 2 and SPARSE not in {h.title for h in hits}
    lexical = ingested_library.search(query, k=3, mode="lexical", filters=Filters(author="noether"))
    assert [h.title for h in lexical] in ([], ["Symmetry and Conservation in Learned Dynamics"])
    assert ingested_library.search(query, k=3, filters=Filters(author="nobody at all")) == []


def test_filters_restrict_the_nearest_chunks_not_the_results_afterwards(ingested_library):
    """With room for one nearest chunk, a filter applied after the search would find nothing:
    the filter must choose among the allowed papers' chunks, from the cached vectors and from
    Chroma's index alike."""
    hopper = by_title(ingested_library)["Compilers for Everyone"].paper_id
    retriever = ingested_library.retriever
    retriever.candidates = 1
    question = "sparse routing of experts with a capacity factor"
    assert retriever.search(question, k=1, mode="dense")[0].paper_id != hopper
    for vectors in (retriever.lexical.vectors, None):
        retriever.lexical.vectors = vectors  # None: what a cache without vectors does, Chroma's index
        found = ingested_library.search(question, k=2, mode="dense", filters=Filters(author="hopper"))
        assert [s.paper_id for s in found] == [hopper]


def test_ask_cites_title_and_page(ingested_library, fake_llm):
    fake_llm.queue("Quokka routing uses a capacity factor of 1.25 to keep experts balanced [1].")
    answer = ingested_library.ask("What capacity factor does Quokka routing use?", k=1, filters=Filters(title="sparse"))
    (citation,) = answer.citations
    assert citation.title == SPARSE and citation.page == 2 and citation.label() == f"{SPARSE}, p. 2"
    data = answer.to_json()
    assert data["citations"][0]["page"] == 2 and data["sources"][0]["page"] == 2


# --- remove ------------------------------------------------------------------------------------


def test_remove_by_id_and_by_source(ingested_library, library):
    hopper = by_title(ingested_library)["Compilers for Everyone"]
    assert [p.title for p in ingested_library.remove([hopper.paper_id])] == ["Compilers for Everyone"]
    removed = ingested_library.remove([str(library / "refs.bib")])
    assert [p.title for p in removed] == ["Symmetry and Conservation in Learned Dynamics"]
    assert by_title(ingested_library)[SPARSE].sources == (str((library / "pdfs" / "sparse.pdf").resolve()),)
    assert "Symmetry and Conservation in Learned Dynamics" not in {s.title for s in ingested_library.search("symmetry conservation", k=5, mode="lexical")}
    with pytest.raises(InputError, match="no indexed paper"):
        ingested_library.remove(["not-a-paper"])


# --- bad inputs in a batch ---------------------------------------------------------------------


def test_bad_files_are_skipped_with_one_reason_each(fake_rag, library, monkeypatch):
    (library / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n%%EO")
    make_scanned_pdf(library / "scan.pdf")
    (library / "empty.txt").write_bytes(b"")
    (library / "blob.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    (library / "legacy.txt").write_bytes("R\xe9sum\xe9 of Caf\xe9 Studies\n\nA study of caf\xe9s \u2013 and their na\xefve customers.\n".encode("cp1252"))
    (library / "huge.txt").write_bytes(b"Huge Dump\n\n" + b"word " * 40_000)
    (library / "refs.bib").write_text(BROKEN_ENTRY + BIB, encoding="utf-8")
    monkeypatch.setattr(corpus, "MAX_FILE_BYTES", 100_000)
    report = fake_rag.ingest([library])
    reasons = {Path(line.split(": ")[0]).name: line.split(": ", 1)[1].removesuffix("; file skipped") for line in report.skipped}
    assert len(report.skipped) == 6, report.skipped
    assert "corrupt PDF" in reasons["corrupt.pdf"]
    assert "no text layer" in reasons["scan.pdf"]
    assert reasons["empty.txt"] == "the file is empty"
    assert reasons["blob.md"] == "not a text file"
    assert reasons["huge.txt"].startswith("file too large")
    assert "broken BibTeX entry" in reasons["refs.bib"]
    titles = set(by_title(fake_rag))
    assert "Résumé of Café Studies" in titles and SPARSE in titles and len(titles) == 5


def test_large_text_file_under_the_limit_is_chunked(fake_rag, tmp_path):
    big = tmp_path / "big.md"
    sections = [f"## Part {i}\n\n" + " ".join([LOREM] * 6) for i in range(30)]
    big.write_text("# A Very Long Report\n\n" + "\n\n".join(sections), encoding="utf-8")
    report = fake_rag.ingest([big])
    assert report.added == 1 and report.chunks_embedded >= 30


def test_interrupted_ingest_leaves_a_consistent_store_and_rerun_completes(data_dir, library):
    class Interrupting(FakeEmbedder):
        def embed(self, texts):
            if len(self.calls) == 1:
                self.calls.append(list(texts))
                raise KeyboardInterrupt
            return super().embed(texts)

    sample_paper(library / "pdfs" / "second.pdf", title="Dense Routing Revisited")
    rag = Rag(Settings.load(data_dir=data_dir), embedder=Interrupting())
    rag.ingest([library / "note.md"])  # first call succeeds: the store exists
    with pytest.raises(KeyboardInterrupt):
        rag.ingest([library])
    stored = rag.store.stored_papers()
    assert all(p.chunks >= 1 for p in stored.values())
    again = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    report = again.ingest([library])
    assert len(again.papers()) == 5 and report.skipped == []
    assert again.ingest([library]).chunks_embedded == 0


def test_killed_ingest_process_is_completed_by_a_rerun(data_dir, library, tmp_path):
    """A process killed between two embedding batches (os._exit: no cleanup runs) leaves the
    store readable and the lock free; the next ingest finishes the job."""
    for i in range(3):
        sample_paper(library / "pdfs" / f"extra{i}.pdf", title=f"Extra Paper Number {i}")
    script = tmp_path / "killed.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            sys.path[:0] = [{str(PROJECT_ROOT)!r}, {str(PROJECT_ROOT / "tests")!r}]
            from conftest import FakeEmbedder
            from rag.pipeline import Rag
            from rag.settings import Settings

            class Dying(FakeEmbedder):
                def embed(self, texts):
                    if self.calls:
                        os._exit(9)
                    return super().embed(texts)

            rag = Rag(Settings.load(data_dir={str(data_dir)!r}), embedder=Dying())
            from rag import ingest
            ingest.BATCH_CHUNKS = 2  # tiny batches: die after the first
            rag.ingest([__import__("pathlib").Path({str(library)!r})])
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    rerun = Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder())
    report = rerun.ingest([library])
    assert report.added + report.unchanged == report.papers == 7
    assert len(rerun.papers()) == 7 and rerun.ingest([library]).chunks_embedded == 0


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_papers_remove_and_filters(library, monkeypatch):
    embedder, llm = FakeEmbedder(), FakeGenerator()
    runner = RagRunner()
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=embedder, generator=llm)
    assert runner.invoke(cli.app, ["ingest", str(library)]).exit_code == 0
    listed = runner.invoke(cli.app, ["papers", "--year", "2020..2023", "--json"])
    assert listed.exit_code == 0
    data = json.loads(listed.stdout)
    assert {p["title"] for p in data} == {SPARSE, "Symmetry and Conservation in Learned Dynamics"}
    assert {"paper_id", "title", "authors", "year", "source", "sources", "chunks"} <= set(data[0])
    text = runner.invoke(cli.app, ["papers", "--author", "lovelace"]).stdout
    assert SPARSE in text and "(2022)" in text and text.strip().endswith("1 papers")
    llm.queue("Quokka routing uses a capacity factor of 1.25 to keep experts balanced [1].")
    asked = runner.invoke(cli.app, ["ask", "What capacity factor does Quokka routing use?", "--source", str(library / "pdfs"), "-k", "1"])
    assert asked.exit_code == 0 and f"[1] {SPARSE}, p. 2" in asked.stdout, asked.output
    bad = runner.invoke(cli.app, ["search", "x", "--year", "soon"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --year")
    gone = runner.invoke(cli.app, ["remove", str(library / "note.md")])
    assert gone.exit_code == 0 and "Zorblax Field Notes" in gone.stdout and gone.stdout.strip().endswith("1 papers removed")


def test_summarize_with_filters_only_sees_matching_papers(ingested_library, fake_llm):
    fake_llm.queue("Learned dynamics models that respect symmetries conserve energy over long rollouts [1].")
    answer = ingested_library.summarize("energy conservation in learned dynamics", k=3, filters=Filters(author="noether"))
    assert [s.title for s in answer.sources] == ["Symmetry and Conservation in Learned Dynamics"]
    assert "Sparse Routing" not in fake_llm.prompts[0]


def test_metadata_written_before_sources_were_lists_still_reads():
    from rag.schema import sources_of

    assert sources_of({"source": "/a/old.txt"}) == ["/a/old.txt"]
    assert sources_of({"source": "/a/x.pdf", "sources": json.dumps(["/a/x.pdf", "/a/x.bib"])}) == ["/a/x.pdf", "/a/x.bib"]


# --- BibTeX out (issue #16) ----------------------------------------------------------------------


def quokka_answer(rag: Rag, fake_llm):
    fake_llm.queue("Quokka routing uses a capacity factor of 1.25 to keep experts balanced [1].")
    return rag.ask("What capacity factor does Quokka routing use?", k=1, filters=Filters(title="sparse"))


def test_bibtex_gives_back_the_users_own_entry(ingested_library, fake_llm):
    bib = ingested_library.bibtex(quokka_answer(ingested_library, fake_llm))
    assert bib.startswith("@inproceedings{lovelace2022,") and "Sparse Routing for Efficient {T}ransformers" in bib
    assert bib.count("@") == 1  # exactly the paper cited


def test_bibtex_builds_an_entry_when_the_bib_file_is_gone(ingested_library, library, fake_llm):
    answer = quokka_answer(ingested_library, fake_llm)
    (library / "refs.bib").unlink()
    bib = ingested_library.bibtex(answer)
    assert bib.startswith("@article{lovelace2022sparse,")
    assert "title = {{Sparse Routing for Efficient Transformers}}" in bib and "author = {Ada Lovelace and Alan Turing}" in bib
    assert "year = {2022}" in bib and "note = {Cited pages: 2}" in bib and "sparse.pdf" in bib
    assert ingested_library.bibtex(answer) == bib  # the key is stable from run to run


def test_built_keys_never_collide_and_markup_is_escaped():
    from rag.references import Cited, bibtex
    from rag.types import PaperInfo

    a = PaperInfo("a", "Deep Nets & More", ("Ada Lovelace",), "x.txt", 1, 2020)
    b = PaperInfo("b", "Deep Nets, Again", ("Ada Lovelace",), "y.txt", 1, 2020)
    text = bibtex([Cited(a), Cited(b)])
    assert "@misc{lovelace2020deep," in text and "@misc{lovelace2020deepb," in text
    assert "Deep Nets \\& More" in text


def test_cli_bib_writes_the_cited_papers_and_refuses_a_bad_target(library, tmp_path):
    embedder, llm = FakeEmbedder(), FakeGenerator()
    runner = RagRunner()
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=embedder, generator=llm)
    assert runner.invoke(cli.app, ["ingest", str(library)]).exit_code == 0
    llm.queue("Quokka routing uses a capacity factor of 1.25 to keep experts balanced [1].")
    out = tmp_path / "cited.bib"
    asked = runner.invoke(cli.app, ["ask", "What capacity factor does Quokka routing use?", "--source", str(library / "pdfs"), "-k", "1", "--bib", str(out)])
    assert asked.exit_code == 0, asked.output
    assert out.read_text().startswith("@inproceedings{lovelace2022,") and f"wrote 1 BibTeX entry to {out}" in asked.stderr
    calls = len(llm.calls)
    bad = runner.invoke(cli.app, ["ask", "What capacity factor does Quokka routing use?", "--bib", str(tmp_path / "missing" / "x.bib")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: cannot write the BibTeX file") and len(bad.stderr.strip().splitlines()) == 1
    assert len(llm.calls) == calls  # refused before the model ran
    none = runner.invoke(cli.app, ["ask", "What is the boiling point of ethanol at sea level?", "--bib", str(tmp_path / "none.bib")])
    assert none.exit_code == 0 and not (tmp_path / "none.bib").exists() and "no paper cited" in none.stderr


# --- Zotero / Better BibTeX exports: file fields attach PDFs (issue #16) -----------------------

EXTENDED = "Sparse Routing for Efficient Transformers: Extended Version"


def zotero_export(folder: Path, file_field: str) -> Path:
    """A Zotero-style export: the .bib, and the PDF under files/<n>/ as Zotero writes them."""
    (folder / "files" / "7").mkdir(parents=True)
    sample_paper(folder / "files" / "7" / "sparse.pdf")
    bib = folder / "export.bib"
    bib.write_text(
        "@article{lovelace2022ext,\n  title = {Sparse Routing for Efficient Transformers: Extended Version},\n"
        f"  author = {{Lovelace, Ada and Turing, Alan}},\n  year = {{2023}},\n  file = {{{file_field}}},\n}}\n",
        encoding="utf-8",
    )
    return bib


@pytest.mark.parametrize(
    "file_field",
    ["Full Text PDF:files/7/sparse.pdf:application/pdf", "files/7/sparse.pdf", ":files/7/sparse.pdf:PDF"],
    ids=["zotero", "better-bibtex", "jabref"],
)
def test_a_pdf_attached_by_a_bib_entry_is_that_entrys_paper(fake_rag, tmp_path, file_field):
    bib = zotero_export(tmp_path, file_field)
    report = fake_rag.ingest([bib])  # only the .bib is given: its attachment is read too
    assert (report.papers, report.skipped) == (1, [])
    (paper,) = fake_rag.papers()
    assert paper.title == EXTENDED and paper.year == 2023  # the entry's metadata, not the PDF's guess
    assert set(paper.sources) == {str(bib.resolve()), str((tmp_path / "files" / "7" / "sparse.pdf").resolve())}
    assert paper.chunks > 1  # the PDF's full text, with pages
    again = fake_rag.ingest([tmp_path])  # the whole export folder: still one paper
    assert again.papers == 1 and [p.title for p in fake_rag.papers()] == [EXTENDED]


def test_an_attachment_that_is_not_there_is_one_warning_and_the_entry_stays(runner, tmp_path, fake_embedder):
    bib = zotero_export(tmp_path, "Full Text PDF:files/9/gone.pdf:application/pdf")
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=fake_embedder, generator=FakeGenerator())
    result = runner.invoke(cli.app, ["ingest", str(bib)])
    assert result.exit_code == 1  # read, but not everything it names
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("warning: ")]
    assert line.startswith("warning: ") and "attached file" in line and "gone.pdf" in line and "not found" in line
    assert [p.title for p in Rag(Settings.load(), embedder=fake_embedder).papers()] == [EXTENDED]
