"""Files -> Papers: the two scraped seed listings and plain text / Markdown documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SEED_FILES, SEED_PAPERS, SEEDS_DIR
from rag import corpus
from rag.papers import paper_id_for
from rag.errors import InputError
from rag.settings import PROJECT_ROOT

FIRST = next(f for f in SEED_FILES if f.name.startswith("000_"))  # "title / authors / abstract" records
SECOND = next(f for f in SEED_FILES if f.name.startswith("003_"))  # blank-line pairs under page chrome


@pytest.fixture(scope="module")
def parsed() -> dict[str, corpus.SourceFile]:
    return {Path(sf.path).name: sf for sf in corpus.load([SEEDS_DIR])}


@pytest.fixture(scope="module")
def papers(parsed) -> dict[str, corpus.Paper]:
    """All distinct papers by title."""
    out = {}
    for sf in parsed.values():
        for p in sf.papers:
            out.setdefault(p.title, p)
    return out


def by_prefix(papers, prefix: str):
    found = [p for t, p in papers.items() if t.startswith(prefix)]
    assert len(found) == 1, f"expected one paper titled {prefix!r}..., got {[p.title for p in found]}"
    return found[0]


def test_both_seed_files_parse(parsed):
    assert set(parsed) == {FIRST.name, SECOND.name}
    first, second = parsed[FIRST.name], parsed[SECOND.name]
    assert len(first.papers) == 7
    assert len(second.papers) == 75
    for sf in parsed.values():
        assert len(sf.file_hash) == 16
        for p in sf.papers:
            assert p.source == sf.path
            assert p.paper_id == paper_id_for(p.title)


def test_exactly_82_distinct_papers(parsed, papers):
    ids = {p.paper_id for sf in parsed.values() for p in sf.papers}
    assert len(ids) == SEED_PAPERS == 82
    assert len(papers) == SEED_PAPERS  # titles are distinct too


def test_see_more_joins_are_repaired(papers):
    q = by_prefix(papers, "Q-learners Can Provably Collude")
    assert "tacit collusion between fully automated agents" in q.abstract
    r = by_prefix(papers, "Relative Almost Sure Regret Bounds")
    assert "We first establish a generic upper bound" in r.abstract
    h = by_prefix(papers, "A Hitchhiker's Guide")
    assert "geometric graphs with atoms" in h.abstract
    for p in papers.values():
        for text in (p.title, p.abstract, *p.authors):
            assert "(see more)" not in text.lower(), p.title
            assert "… " not in text and "…(" not in text, (p.title, text[:80])


def test_truncated_abstract_loses_its_trailing_ellipsis(papers):
    w = by_prefix(papers, "Weighted-Norm Bounds on Model Approximation")
    assert w.abstract.startswith("We consider the problem of designing a control policy")
    assert not w.abstract.endswith(("…", "..."))


@pytest.mark.parametrize(
    "chrome",
    ["new", "Subscribe", "Get trending papers in your email inbox!", "byAK and the research community", "Mar 11"],
)
def test_page_chrome_is_not_a_paper(papers, chrome):
    assert chrome in SECOND.read_text(encoding="utf-8")  # it really is in the file
    assert all(chrome.lower() not in p.title.lower() for p in papers.values())


def test_every_listing_record_in_the_second_file_has_an_abstract(parsed):
    # Chrome taken for a title would show up as a paper with no abstract.
    second = parsed[SECOND.name]
    assert second.papers[0].title == "Predictive auxiliary objectives in deep RL mimic learning in the brain"
    assert second.papers[-1].title == "BigNAS: Scaling Up Neural Architecture Search with Big Single-Stage Models"
    assert all(len(p.abstract) > 300 for p in second.papers)
    assert all(p.authors == () for p in second.papers)


@pytest.mark.parametrize("prefix", ["A Hitchhiker's Guide to Geometric GNNs", "Model Breadcrumbs"])
def test_duplicates_merge_into_one(parsed, prefix):
    text = FIRST.read_text(encoding="utf-8")
    assert sum(1 for line in text.splitlines() if line.startswith(prefix)) >= 3  # repeated in the file
    same = [p for p in parsed[FIRST.name].papers if p.title.startswith(prefix)]
    assert len(same) == 1
    merged = same[0]
    assert merged.abstract and merged.authors  # the longest abstract and the authors survive


def test_hitchhiker_keeps_all_nine_authors_and_longest_abstract(papers):
    h = by_prefix(papers, "A Hitchhiker's Guide")
    assert h.authors[0] == "Alexandre AGM Duval"
    assert h.authors[-1] == "Michael M. Bronstein"
    assert len(h.authors) == 9
    assert "equivariant networks in spherical basis" in h.abstract


def test_authors_parsed_in_first_file(papers):
    r = by_prefix(papers, "Relative Almost Sure Regret Bounds for Certainty Equivalence Control")
    assert r.authors == ("Borna Sayedana", "Mohammad Afshari", "Peter E. Caines")
    q = by_prefix(papers, "Q-learners Can Provably Collude")
    assert q.authors == ("Quentin Bertrand", "Juan Duque", "Emilio Calvano")
    g = by_prefix(papers, "Efficient Graphics Representation with Differentiable Indirection")
    assert g.authors[:2] == ("Sayantan Datta", "Carl Marshall")
    # no author line ever becomes part of a title or an abstract
    assert "Borna Sayedana" not in r.abstract and "Borna Sayedana" not in r.title


def test_paper_without_abstract_is_kept(papers):
    e = by_prefix(papers, "Explorable Mesh Deformation Subspaces")
    assert e.title == "Explorable Mesh Deformation Subspaces from Unstructured 3D Generative Models"
    assert e.abstract == ""
    assert e.authors[0] == "Arman Maesumi" and "Daniel Ritchie" in e.authors


def test_paper_id_ignores_case_and_punctuation():
    assert paper_id_for("Cyclical Curriculum Learning") == paper_id_for("cyclical curriculum-learning!")
    assert paper_id_for("Cyclical Curriculum Learning") != paper_id_for("Cyclical Curriculum")


# --- plain documents -----------------------------------------------------------------------

LONG = (
    "This paragraph describes the widget calibration procedure in considerable detail, so that it "
    "is long enough to look like body text to a parser that sorts lines by their length. "
)


def test_markdown_document_is_one_paper_titled_by_first_heading(tmp_path):
    f = tmp_path / "notes.md"
    f.write_text(f"Preface line\n\n# Widget Calibration Notes\n\n## Method\n{LONG * 2}\n\n## Results\n{LONG}\n", encoding="utf-8")
    sf = corpus.read_file(f)
    assert len(sf.papers) == 1
    paper = sf.papers[0]
    assert paper.title == "Widget Calibration Notes"
    assert "widget calibration procedure" in paper.abstract
    assert "Method" in paper.abstract and "#" not in paper.abstract
    assert "Preface line" in paper.abstract
    assert paper.source == str(f.resolve())


def test_text_document_is_one_paper_titled_by_first_line(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text(f"Widget Calibration Notes\n\n{LONG}\n\n{LONG}\n", encoding="utf-8")
    (paper,) = corpus.read_file(f).papers
    assert paper.title == "Widget Calibration Notes"
    assert paper.abstract.startswith("This paragraph describes")
    assert paper.authors == ()


@pytest.mark.parametrize("name", ["notes.txt", "notes.markdown"])
def test_document_with_markdown_headings_is_one_paper(tmp_path, name):
    f = tmp_path / name
    f.write_text(f"# Widget Calibration Notes\n\n## Method\n{LONG * 2}\n\n## Results\n{LONG}\n", encoding="utf-8")
    papers = corpus.read_file(f).papers
    assert [p.title for p in papers] == ["Widget Calibration Notes"]


def test_heading_only_markdown_file_uses_heading_as_title(tmp_path):
    f = tmp_path / "x.md"
    f.write_text("# Only A Title\n", encoding="utf-8")
    (paper,) = corpus.read_file(f).papers
    assert paper.title == "Only A Title" and paper.abstract == ""


# --- bad input -----------------------------------------------------------------------------


def test_binary_file_is_an_input_error(tmp_path):
    f = tmp_path / "blob.txt"
    f.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a text file"):
        corpus.read_file(f)


def test_latin1_control_garbage_is_an_input_error(tmp_path):
    f = tmp_path / "garbage.txt"
    f.write_bytes(bytes([0xFF, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06]) * 200)  # not UTF-8, no NUL
    with pytest.raises(InputError, match="not a text file"):
        corpus.read_file(f)


def test_latin1_text_is_read(tmp_path):
    f = tmp_path / "latin.txt"
    f.write_bytes("Caf\xe9 Notes\n\nUne \xe9tude des caf\xe9s.\n".encode("latin-1"))
    (paper,) = corpus.read_file(f).papers
    assert paper.title == "Café Notes"


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\n"])
def test_empty_file_is_an_input_error(tmp_path, content):
    f = tmp_path / "empty.md"
    f.write_bytes(content)
    with pytest.raises(InputError, match="empty"):
        corpus.read_file(f)


def test_missing_path_is_an_input_error(tmp_path):
    missing = tmp_path / "nope" / "papers.txt"
    with pytest.raises(InputError, match="no such file"):
        corpus.load([SEEDS_DIR, missing])


@pytest.mark.parametrize("name", ["notes.text", "README", "paper.rst"])
def test_format_is_told_by_content_not_only_the_suffix(tmp_path, name):
    f = tmp_path / name
    f.write_text("Some Title\n\nSome text.\n", encoding="utf-8")
    (paper,) = corpus.read_file(f).papers
    assert paper.title == "Some Title"


def test_pdf_named_file_without_the_pdf_header_is_a_corrupt_pdf(tmp_path):
    f = tmp_path / "paper.pdf"
    f.write_text("Some Title\n\nSome text.\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a valid PDF"):
        corpus.read_file(f)


def test_zip_document_is_not_text(tmp_path):
    f = tmp_path / "paper.docx"
    f.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a text file"):
        corpus.read_file(f)


def test_folder_skips_unsupported_files_and_recurses(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.md").write_text("# Alpha Paper\n\nAlpha body.\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Beta Paper\n\nBeta body.\n", encoding="utf-8")
    (tmp_path / "c.docx").write_bytes(b"PK\x03\x04\x00\x01")
    (tmp_path / "d.pdf").write_bytes(b"%PDF-1.4\x00\x01")  # picked up, and skipped as corrupt
    batch = corpus.load_batch([tmp_path])
    assert sorted(p.title for f in batch.files for p in f.papers) == ["Alpha Paper", "Beta Paper"]
    assert [Path(s.path).name for s in batch.skipped] == ["d.pdf"] and "corrupt PDF" in batch.skipped[0].reason


def test_input_error_messages_are_one_line(tmp_path):
    f = tmp_path / "blob.txt"
    f.write_bytes(b"\x00\x01\x02")
    for call in (lambda: corpus.read_file(f), lambda: corpus.load([tmp_path / "missing"])):
        with pytest.raises(InputError) as exc:
            call()
        assert "\n" not in str(exc.value)


def test_same_file_given_twice_is_read_once(tmp_path):
    f = tmp_path / "a.md"
    f.write_text("# Alpha Paper\n\nAlpha body.\n", encoding="utf-8")
    assert len(corpus.load([f, tmp_path / "." / "a.md", tmp_path])) == 1


# --- JSON lines corpora (BEIR's corpus.jsonl, reference-manager exports) ----------------------------

JSONL = "\n".join([
    '{"_id": "1", "title": "Zorblax Crystal Resonance", "text": "Zorblax crystals resonate at 7.5 kHz when cooled."}',
    '{"title": "Quantum Gravel Sorting", "abstract": "Gravel sorts itself.", "authors": ["Ada Stone", "Bo Reed"], "year": 2021, "journal": "J. Gravel"}',
    '{"title": "Strings of Authors", "text": "One string.", "authors": "Ada Stone and Bo Reed"}',
    "not json at all",
    '{"text": "no title here"}',
    "",
])


def test_a_jsonl_corpus_is_one_paper_a_line_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text(JSONL)
    f = corpus.read_file(path)
    by_title = {p.title: p for p in f.papers}
    assert set(by_title) == {"Zorblax Crystal Resonance", "Quantum Gravel Sorting", "Strings of Authors"}
    assert by_title["Zorblax Crystal Resonance"].abstract.startswith("Zorblax crystals resonate")
    gravel = by_title["Quantum Gravel Sorting"]
    assert (gravel.authors, gravel.year, gravel.venue, gravel.kind) == (("Ada Stone", "Bo Reed"), 2021, "J. Gravel", "record")
    assert by_title["Strings of Authors"].authors == ("Ada Stone", "Bo Reed")
    assert [p.split(": ", 1)[1] for p in f.problems] == ["line 4 is not JSON; skipped", "line 5 has no title; skipped"]


def test_a_gzipped_jsonl_corpus_is_read_and_told_by_its_content(tmp_path):
    import gzip

    packed = tmp_path / "corpus.jsonl.gz"
    packed.write_bytes(gzip.compress(JSONL.encode()))
    unnamed = tmp_path / "dump"  # no suffix at all: the content says what it is
    unnamed.write_text(JSONL)
    assert len(corpus.read_file(packed).papers) == len(corpus.read_file(unnamed).papers) == 3
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(JSONL.encode())[:30])
    with pytest.raises(InputError, match="damaged gzip"):
        corpus.read_file(broken)


SCIFACT = PROJECT_ROOT.parent / "shared" / "corpora" / "scifact" / "corpus.jsonl.gz"


@pytest.mark.skipif(not SCIFACT.exists(), reason=f"the shared SciFact corpus is not at {SCIFACT}")
def test_the_real_scifact_corpus_reads_in_one_file():
    f = corpus.read_file(SCIFACT)
    assert not f.problems
    assert len(f.papers) == 5180  # 5,183 abstracts, three titles twice: one paper a title
    assert all(p.title and p.abstract for p in f.papers)
