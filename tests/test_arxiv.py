"""arXiv metadata: the arXiv API's JSON, the Kaggle snapshot's CSV and JSON lines become papers
with authors, year and categories, and `--category` filters by them (issue #16)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import FakeEmbedder, FakeGenerator, RagRunner
from rag import cli, corpus
from rag.filters import Filters
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings

ARXIV = PROJECT_ROOT.parent / "shared" / "corpora" / "arxiv"
API = [
    {"id": "2603.11048v1", "title": "COMIC: Agentic Sketch Comedy Generation", "abstract": "Agents write sketch comedy.",
     "authors": ["Susung Hong", "Brian Curless"], "year": 2026, "categories": ["cs.CV", "cs.CL"]},
    {"id": "2603.00001v1", "title": "Parsing Legal Summaries", "abstract": "Summaries of civil rights cases.",
     "authors": ["Ada Lovelace"], "year": 2026, "categories": ["cs.CL"]},
]
CSV = (
    "id,title,abstract,categories,authors,update_date\n"
    "0708.2003,The logarithmic Sobolev inequality along the Ricci flow in dimension 2,We study the Ricci flow.,math.DG,Rugang Ye,2007-08-16\n"
    '0709.2627,Semiconductor nanorings,"Excitons in rings, studied.",cond-mat.mes-hall,Michal Grochol and Roland Zimmermann,2009-11-13\n'
    ",,A record without a title.,math.AP,Nobody,2008-01-01\n"
)
KAGGLE_LINE = {"id": "0704.0001", "submitter": "Pavel Nadolsky", "authors": "C. Bal\\'azs, E. L. Berger, P. M. Nadolsky, C.-P. Yuan",
               "title": "Calculation of prompt diphoton production cross sections", "categories": "hep-ph",
               "abstract": "A fully differential calculation in perturbative QCD.", "update_date": "2008-11-13"}


@pytest.fixture
def exports(tmp_path) -> Path:
    (tmp_path / "api.json").write_text(json.dumps(API), encoding="utf-8")
    (tmp_path / "snapshot.csv").write_text(CSV, encoding="utf-8")
    (tmp_path / "snapshot.jsonl").write_text(json.dumps(KAGGLE_LINE) + "\n", encoding="utf-8")
    return tmp_path


def test_each_export_gives_authors_year_and_categories(exports):
    (comic, legal) = corpus.read_file(exports / "api.json").papers
    assert comic.authors == ("Susung Hong", "Brian Curless") and comic.year == 2026 and comic.categories == ("cs.CV", "cs.CL")
    read = corpus.read_file(exports / "snapshot.csv")
    ricci, rings = read.papers
    assert ricci.year == 2007 and ricci.categories == ("math.DG",) and ricci.authors == ("Rugang Ye",)
    assert rings.year == 2007  # from the arXiv id: update_date (2009) is the last revision
    assert rings.authors == ("Michal Grochol", "Roland Zimmermann") and rings.abstract == "Excitons in rings, studied."
    assert read.problems == (f"{exports / 'snapshot.csv'}: record 3 has no title; skipped",)
    (photon,) = corpus.read_file(exports / "snapshot.jsonl").papers
    assert photon.year == 2007 and photon.categories == ("hep-ph",) and len(photon.authors) == 4


def test_category_filters_by_category_or_archive(fake_rag, exports):
    fake_rag.ingest([exports / "api.json", exports / "snapshot.csv"])
    titles = lambda category: {p.title for p in fake_rag.papers(Filters.parse(category=category))}  # noqa: E731
    assert titles("cs.CL") == {"COMIC: Agentic Sketch Comedy Generation", "Parsing Legal Summaries"}
    assert titles("cs.cv") == {"COMIC: Agentic Sketch Comedy Generation"}
    assert titles("math") == {"The logarithmic Sobolev inequality along the Ricci flow in dimension 2"}
    assert titles("cs.C") == set()  # a category is matched whole, an archive by its name
    hits = fake_rag.search("sketch comedy agents", k=5, filters=Filters.parse(category="cs.CV"))
    assert [h.title for h in hits] == ["COMIC: Agentic Sketch Comedy Generation"]


def test_cli_category_and_a_malformed_export(exports):
    runner = RagRunner()
    embedder = FakeEmbedder()
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=embedder, generator=FakeGenerator())
    (exports / "broken.json").write_text('[{"title": "Half a record",', encoding="utf-8")
    result = runner.invoke(cli.app, ["ingest", str(exports / "api.json"), str(exports / "snapshot.csv"), str(exports / "broken.json")])
    assert result.exit_code == 1
    warnings = [x for x in result.stderr.splitlines() if x.startswith("warning: ")]
    assert any("broken.json: not valid JSON" in w and w.endswith("file skipped") for w in warnings)
    assert any("record 3 has no title" in w for w in warnings)
    listed = runner.invoke(cli.app, ["papers", "--category", "cs.CL", "--json"])
    assert listed.exit_code == 0
    data = json.loads(listed.stdout)
    assert {p["title"] for p in data} == {"COMIC: Agentic Sketch Comedy Generation", "Parsing Legal Summaries"}
    assert data[0]["categories"]


@pytest.mark.skipif(not ARXIV.is_dir(), reason="../shared/corpora/arxiv is not here (the real arXiv samples)")
def test_the_real_arxiv_samples():
    api = corpus.read_file(ARXIV / "arxiv-2026-cscl-500.json")
    assert len(api.papers) == 500 and all("cs.CL" in p.categories for p in api.papers) and all(p.year == 2026 for p in api.papers)
    snapshot = corpus.read_file(ARXIV / "arxiv-sample-2000.csv")
    assert len(snapshot.papers) + len(snapshot.problems) == 2000
    assert all(p.categories and p.authors and 1990 <= p.year <= 2026 for p in snapshot.papers)


def test_csl_json_as_zotero_exports_it(tmp_path):
    items = [{"id": "http://zotero.org/users/1/items/ABC", "type": "article-journal", "title": "Compilers for Everyone",
              "author": [{"family": "Hopper", "given": "Grace"}, {"literal": "The COBOL Committee"}],
              "issued": {"date-parts": [[1995, 5]]}, "container-title": "Journal of Compilers", "abstract": "English-like statements."}]
    (tmp_path / "library.json").write_text(json.dumps(items), encoding="utf-8")
    (paper,) = corpus.read_file(tmp_path / "library.json").papers
    assert paper.authors == ("Grace Hopper", "The COBOL Committee") and paper.year == 1995 and paper.venue == "Journal of Compilers"
