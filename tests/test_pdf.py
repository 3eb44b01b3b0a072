"""PDF titles from the first page's layout: the largest text near the top, joined across its lines,
never a venue header, a running header or an author line; checked against the metadata title; a
page with no title is titled from its file name, with a warning. Unit tests on PDFs written by
tests/pdfmaker.py, and the ten real papers in ../shared/corpora/pdfs when that folder is there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FakeEmbedder, FakeGenerator, RagRunner
from pdfmaker import LOREM, make_pdf
from rag import cli, corpus
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings

LONG_TITLE = "Learned Routers Keep Sparse Mixtures of Experts Balanced Across Three Model Sizes and Two Datasets"
AUTHORS = "Ada Lovelace, Alan Turing"


def first_page(*top: str) -> list[list[str]]:
    return [[*top, AUTHORS, "", "## Abstract", LOREM, "", "## 1 Introduction", LOREM], ["## 2 Method", LOREM, LOREM]]


def read(path: Path) -> corpus.SourceFile:
    return corpus.read_file(path)


def test_a_title_over_two_lines_is_joined(tmp_path):
    f = read(make_pdf(tmp_path / "p.pdf", first_page(f"# {LONG_TITLE}")))
    assert f.papers[0].title == LONG_TITLE and not f.warnings


@pytest.mark.parametrize("header", [
    "~ Proceedings of the 3rd Workshop on Imaginary Learning, pages 12-20, Dublin, May 2022",
    "# Proceedings of Imaginary ML 2022",  # as large as the title
])
def test_a_venue_header_above_the_title_is_not_the_title(tmp_path, header):
    f = read(make_pdf(tmp_path / "p.pdf", first_page(header, f"# {LONG_TITLE}")))
    assert f.papers[0].title == LONG_TITLE


def test_a_running_header_set_large_is_not_the_title(tmp_path):
    pages = first_page("# Notes on Sparse Models", "# Quokka Routing")
    pages[1].insert(0, "# Notes on Sparse Models")
    f = read(make_pdf(tmp_path / "p.pdf", pages))
    assert f.papers[0].title == "Quokka Routing"


def test_a_title_repeated_in_the_next_pages_headers_is_still_the_title(tmp_path):
    pages = first_page("~ Preprint. Under review.", "", "", "", "# Quokka Routing: A Study")  # below the top margin
    pages[1].insert(0, "~ Quokka Routing: A Study")
    assert read(make_pdf(tmp_path / "p.pdf", pages)).papers[0].title == "Quokka Routing: A Study"


def test_a_page_without_a_title_is_titled_from_the_file_name_with_a_warning(tmp_path):
    table = ["Field Task Dataset Frozen Finetune", "NER BC5CDR 88.85 90.01", "REL ChemProt 76.68 83.64", "",
             "Table 2: Results on all tasks. " + LOREM, "## 4.2 Computer Science", LOREM]
    path = make_pdf(tmp_path / "1903.10676.pdf", [table])
    f = read(path)
    assert f.papers[0].title == "1903.10676" and f.papers[0].authors == () and f.papers[0].blocks
    assert len(f.warnings) == 1 and "from the file name" in f.warnings[0]
    batch = corpus.load_batch([tmp_path])
    assert len(batch.files) == 1 and [s.whole_file for s in batch.skipped] == [False]
    assert batch.skipped[0].line() == f"{path}: {f.warnings[0]}"


def test_ingest_warns_about_a_pdf_titled_from_its_file_name_and_exits_1(tmp_path):
    make_pdf(tmp_path / "excerpt.pdf", [["Quokka routing numbers 17.2 and 1.25 on the wiki benchmark.", LOREM]])
    runner = RagRunner()
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=FakeEmbedder(), generator=FakeGenerator())
    result = runner.invoke(cli.app, ["ingest", str(tmp_path)])
    assert result.exit_code == 1 and "warning:" in result.stderr and "'excerpt' from the file name" in result.stderr
    assert "excerpt" in runner.invoke(cli.app, ["papers"]).stdout


def test_the_metadata_title_wins_only_when_the_page_prints_it(tmp_path):
    printed = read(make_pdf(tmp_path / "a.pdf", first_page("# Quokka Routing:  a Study"), title="Quokka Routing: A Study"))
    assert printed.papers[0].title == "Quokka Routing: A Study"  # the author's spelling and spacing
    draft = read(make_pdf(tmp_path / "b.pdf", first_page("# Quokka Routing: A Study"), title="Draft Version Three Final"))
    assert draft.papers[0].title == "Quokka Routing: A Study"
    word = read(make_pdf(tmp_path / "c.pdf", first_page("# Quokka Routing: A Study"), title="Microsoft Word - quokka.docx"))
    assert word.papers[0].title == "Quokka Routing: A Study"
    cut = read(make_pdf(tmp_path / "d.pdf", first_page(f"# {LONG_TITLE}"), title=LONG_TITLE[:40]))
    assert cut.papers[0].title == LONG_TITLE


# --- the real papers ----------------------------------------------------------------------------

PDFS = PROJECT_ROOT.parent / "shared" / "corpora" / "pdfs"
# Read off each PDF's first page (its largest text), not from any output of this code.
REAL_TITLES = {
    "2020.acl-main.447.pdf": "S2ORC: The Semantic Scholar Open Research Corpus",
    "2023.eacl-main.121.pdf": "LongEval: Guidelines for Human Evaluation of Faithfulness in Long-form Summarization",
    "2203.00130v1.pdf": "Paper Plain: Making Medical Research Papers Approachable to Healthcare Consumers with Natural Language Processing",
    "2206.10883v3.pdf": "Multi-LexSum: Real-World Summaries of Civil Rights Lawsuits at Multiple Granularities",
    "2302.07302v1.pdf": "CiteSee: Augmenting Citations in Scientific Papers with Persistent and Personalized Historical Context",
    "2304.02623v1.pdf": "Beyond Summarization: Designing AI Support for Real-World Expository Writing Tasks",
    "molecular-prediction-explanations.pdf": "A Perspective on Explanations of Molecular Prediction Models",
    "papermage.pdf": "PaperMage: A Unified Toolkit for Processing, Representing, and Manipulating Visually-Rich Scientific Documents",
    "pasa.pdf": "PaSa: An LLM Agent for Comprehensive Academic Paper Search",
}
real = pytest.mark.skipif(not PDFS.is_dir(), reason=f"the shared real-paper PDFs are not at {PDFS}")


def _same(title: str) -> str:
    return re.sub(r"\s+", "", title).lower()


@real
@pytest.mark.parametrize("name", sorted(REAL_TITLES))
def test_real_papers_get_their_printed_title(name):
    f = read(PDFS / name)
    assert _same(f.papers[0].title) == _same(REAL_TITLES[name]) and not f.warnings


@real
def test_a_real_one_page_excerpt_is_titled_from_its_file_name_with_a_warning():
    f = read(PDFS / "1903.10676.pdf")
    assert f.papers[0].title == "1903.10676" and len(f.warnings) == 1


def test_a_pdf_titled_from_its_file_name_replaces_what_the_file_held(tmp_path):
    """The warning is a guess about a file read whole, not a part of it skipped: re-ingest replaces
    the paper the file held before (a title from an older version of this reader) as usual."""
    folder = tmp_path / "papers"
    folder.mkdir()
    make_pdf(folder / "excerpt.pdf", first_page("# Quokka Routing: A Study"))
    rag = Rag(Settings.load(), embedder=FakeEmbedder(), generator=FakeGenerator())
    rag.ingest([folder])
    make_pdf(folder / "excerpt.pdf", [["Quokka routing numbers 17.2 and 1.25 on the wiki benchmark.", LOREM]])
    report = rag.ingest([folder])
    assert len(report.skipped) == 1 and [p.title for p in rag.papers()] == ["excerpt"]


# --- the text: page chrome, ligatures, hyphens (issue #14, item 1) -----------------------------


def test_running_headers_page_numbers_and_front_matter_are_not_passages(tmp_path):
    words = LOREM.split()
    pages = [["# Quokka Routing: A Study", AUTHORS, "Proceedings of Imaginary ML 2022", "", "## Abstract", LOREM]]
    for n in range(1, 5):  # each page: a running header, its own text, its page number
        pages.append(["~ Quokka Routing: A Study - Imaginary ML 2022", f"## {n} Part", " ".join(words[n:] + words[:n]), "", str(n + 1)])
    blocks = read(make_pdf(tmp_path / "q.pdf", pages)).papers[0].blocks
    text = " ".join(b.text for b in blocks)
    assert "Imaginary ML" not in text and "Ada Lovelace" not in text  # header, venue and names are not evidence
    assert blocks[0].section == "Abstract" and blocks[0].text.startswith("We study sparse mixture routing")
    assert not any(re.fullmatch(r"\d+", b.text) for b in blocks)
    assert sum("learned router" in b.text for b in blocks) == 5  # the body of every page is kept


def test_ligatures_become_letters_and_a_broken_word_is_joined():
    from rag.pdf import pdf_blocks, repaired

    (block,) = pdf_blocks(["The ﬁrst eﬃcient classiﬁer was trained substan-\ntially longer."])
    assert block.text == "The first efficient classifier was trained substantially longer."
    assert repaired("a substan\ufffetially smaller BERT\ufffeBase and SQuAL\ufffeITY on GPT\ufffe4\r\nnext\rline") == (
        "a substantially smaller BERT-Base and SQuALITY on GPT-4\nnext\nline"
    )



def test_a_compound_broken_at_a_line_end_keeps_its_hyphen():
    """Both halves are words of the paper and it never writes them joined: a compound; a word
    the paper writes whole elsewhere, or whose halves are not words, is joined."""
    from rag.pdf import repaired, vocabulary

    pages = ["We score at the token\ufffelevel and the sentence level of each token.", "An under\ufffestanding of the data and a substan\ufffetial understanding."]
    words = vocabulary(pages)
    assert "tokenlevel" not in words and "token" in words  # the halves of a broken word are not counted
    assert repaired(pages[0], words) == "We score at the token-level and the sentence level of each token."
    assert repaired(pages[1], words) == "An understanding of the data and a substantial understanding."
    assert repaired(pages[0]) == "We score at the tokenlevel and the sentence level of each token."  # no vocabulary: joined as before

@real
def test_real_papers_read_without_glued_words_or_ligatures():
    """pypdf glued words on ACL papers ("Keepingwithpastwork,wereportmacro"); PDFium does not."""
    for name in REAL_TITLES:
        text = " ".join(b.text for b in read(PDFS / name).papers[0].blocks)
        assert not re.search("[\ufb00-\ufb06\ufffe]", text), name
        glued = [w for w in text.split() if len(w) > 25 and w.isalpha()]
        assert len(glued) <= 2, (name, glued[:5])


@real
def test_real_compounds_broken_at_a_line_end_keep_their_hyphen():
    text = " ".join(b.text for b in read(PDFS / "pasa.pdf").papers[0].blocks)
    assert "token-level" in text and "open-vocabulary" in text
    assert "tokenlevel" not in text and "openvocabulary" not in text


# --- re-ingest parses no unchanged PDF (issue #14, targets) -------------------------------------


@pytest.fixture
def parses(monkeypatch):
    from rag import pdf

    calls = []
    real_read = pdf.read_pdf

    def counted(data, source, name):
        calls.append(name)
        return real_read(data, source, name)

    monkeypatch.setattr(pdf, "read_pdf", counted)
    return calls


def test_an_unchanged_pdf_is_not_parsed_again_and_a_moved_one_keeps_its_parse(tmp_path, parses, monkeypatch):
    from rag import pdf

    folder = tmp_path / "lib"
    folder.mkdir()
    make_pdf(folder / "q.pdf", first_page("# Quokka Routing: A Study"))
    rag = Rag(Settings.load(data_dir=tmp_path / "data"), embedder=FakeEmbedder(), generator=FakeGenerator())
    first = rag.ingest([folder])
    assert len(parses) == 1 and first.pages == 2 and first.added == 1
    again = rag.ingest([folder])
    assert len(parses) == 1 and again.unchanged == 1 and again.pages == 2  # read from the cache
    (folder / "q.pdf").rename(folder / "moved.pdf")  # the same bytes elsewhere: a parse of its own name
    moved = rag.ingest([folder])
    assert len(parses) == 2 and moved.removed == 0 and rag.papers()[0].sources == (str((folder / "moved.pdf").resolve()),)
    monkeypatch.setattr(pdf, "READER_VERSION", pdf.READER_VERSION + 1)  # a changed reader never serves an old parse
    rag.ingest([folder])
    assert len(parses) == 3


def test_a_damaged_cache_entry_is_a_parse_not_an_error(tmp_path, parses):
    make_pdf(tmp_path / "q.pdf", first_page("# Quokka Routing: A Study"))
    rag = Rag(Settings.load(data_dir=tmp_path / "data"), embedder=FakeEmbedder(), generator=FakeGenerator())
    rag.ingest([tmp_path / "q.pdf"])
    for entry in (tmp_path / "data" / "parsed").glob("*.json"):
        entry.write_text("{not json", encoding="utf-8")
    assert rag.ingest([tmp_path / "q.pdf"]).unchanged == 1 and len(parses) == 2


def test_the_reference_list_is_kept_apart_and_stored_and_an_appendix_after_it_is_text(tmp_path):
    pages = [
        ["# Quokka Routing: A Study", AUTHORS, "", "## Abstract", LOREM, "", "## 1 Introduction", LOREM],
        ["## References", "[1] Ada Lovelace. Notes on the analytical engine. 1843.", "",
         "[2] Alan Turing. 2020. Computing Machinery: And Intelligence. Mind.", "", "## Appendix",
         "The appendix lists the quokka hyperparameters in full."],
    ]
    paper = read(make_pdf(tmp_path / "q.pdf", pages)).papers[0]
    assert paper.references == ("[1] Ada Lovelace. Notes on the analytical engine. 1843.", "[2] Alan Turing. 2020. Computing Machinery: And Intelligence. Mind.")
    text = " ".join(b.text for b in paper.blocks)
    assert "analytical engine" not in text and "Computing Machinery" not in text  # never evidence
    assert any(b.section == "Appendix" and "hyperparameters" in b.text for b in paper.blocks)
    rag = Rag(Settings.load(data_dir=tmp_path / "data"), embedder=FakeEmbedder(), generator=FakeGenerator())
    rag.ingest([tmp_path / "q.pdf"])
    assert rag.store.references(paper.paper_id) == list(paper.references)
    assert all("analytical engine" not in r.text for r in rag.retriever.lexical.records)


def test_a_lettered_appendix_after_the_references_is_text_and_a_title_line_is_not_a_heading():
    from rag.pdf import pdf_blocks

    pages = [
        "1 Introduction\nQuokkas route packets.\nReferences\nLee. 2016. A Visualization Tool to Support Literature Review. Proceedings of the 2016 CHI\n"
        "Conference. Kim and Park. Haptics.\nA Handheld VR Device for Rendering Size, Shape, and Stiffness of Virtual Objects\n"
        "In UIST.\nB Tables of results\nStill the references: appendices open with A.",
        "A Background & Terminology\nWe distinguish bibliography entries from inline citations.\nA.1 More terms\nA span is a range of characters.\n"
        "B PDF filters\nWe drop scanned PDFs.",
    ]
    blocks = pdf_blocks(pages)
    refs = " ".join(b.text for b in blocks if b.section == "References")
    assert "Handheld VR Device" in refs and "Visualization Tool" in refs and "Tables of results" in refs
    assert [(b.section, b.text) for b in blocks if b.page == 2] == [
        ("Background & Terminology", "We distinguish bibliography entries from inline citations."),
        ("More terms", "A span is a range of characters."),
        ("PDF filters", "We drop scanned PDFs."),
    ]


@real
def test_real_appendices_are_not_reference_entries():
    """S2ORC, LongEval's neighbours, PaSa and papermage letter their appendices ("A Appendix",
    "B Implementation Details of the Selector"); before, those pages were stored as references."""
    for name in ("2020.acl-main.447.pdf", "pasa.pdf", "papermage.pdf", "2206.10883v3.pdf"):
        paper = read(PDFS / name).papers[0]
        assert not any(re.match(r"[A-H](\.\d+)* [A-Z][a-z]+ [a-z]+", e) and not re.search(r"(19|20)\d\d", e) for e in paper.references), name
    text = " ".join(b.text for b in read(PDFS / "papermage.pdf").papers[0].blocks)
    assert "Comparison and Compatibility with XML" in text or "capturing" in text

def test_authors_are_read_from_the_lines_under_the_title():
    from rag.pdf_title import first_page_authors

    title = "Quokka Routing: A Study of Packets"
    lower = {"paper", "search", "we", "route", "packets"}
    marks = ["Quokka Routing: A Study", "of Packets", "Kyle Lo†∗ Lucy Lu Wang†‡ Mark Neumannα", "Weinan E2 Hang Li1",
             "†Allen Institute for AI ‡University of Washington", "{kylel, lucyw}@allenai.org", "Paper Search", "Abstract", "Ann Other"]
    assert first_page_authors(marks, title, lower) == ["Kyle Lo", "Lucy Lu Wang", "Mark Neumann", "Weinan E", "Hang Li"]
    capitals = [title, "TAL AUGUST, University of Washington, USA", "MARTI A. HEARST, University of California, Berkeley, USA",
                "We route packets through quokka burrows in this paper and measure how far they go."]
    assert first_page_authors(capitals, title, lower) == ["Tal August", "Marti A. Hearst"]
    stacked = [title, "Geemi P. Wellawatte,† Heta A. Gandhi,‡", "and Andrew", "D. White∗,‡", "¶Vial Health Technology, Inc., San Francisco, CA 94111",
               "Amy X. Zhang", "axz@cs.uw.edu", "Seattle, WA, USA"]
    assert first_page_authors(stacked, title, lower) == ["Geemi P. Wellawatte", "Heta A. Gandhi", "Andrew D. White", "Amy X. Zhang"]
    assert first_page_authors(["Some Other Paper", "Kyle Lo"], title, lower) == []  # the title is not on the page: no guess


@real
def test_real_papers_authors_come_from_the_first_page():
    """8 of the 9 titled papers carry no author metadata; their names are read off the page."""
    expected = {
        "2023.eacl-main.121.pdf": 7, "2203.00130v1.pdf": 6, "2206.10883v3.pdf": 6, "2302.07302v1.pdf": 7,
        "2304.02623v1.pdf": 9, "molecular-prediction-explanations.pdf": 4, "papermage.pdf": 17, "pasa.pdf": 7,
    }
    for name, count in expected.items():
        authors = read(PDFS / name).papers[0].authors
        assert len(authors) == count, (name, authors)
    assert read(PDFS / "2203.00130v1.pdf").papers[0].authors[:2] == ("Tal August", "Lucy Lu Wang")
    assert read(PDFS / "molecular-prediction-explanations.pdf").papers[0].authors[-1] == "Andrew D. White"
    assert read(PDFS / "pasa.pdf").papers[0].authors[-1] == "Weinan E"

def test_numbered_reference_entries_are_split():
    from rag.pdf import reference_entries

    text = "[1] A. Author. First paper title. 2019. [2] B. Author. Second paper title. 2020. [3] C. Author. Third one here. 2021."
    assert [e[:3] for e in reference_entries([text])] == ["[1]", "[2]", "[3]"]
