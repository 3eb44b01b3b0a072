"""`rag ingest --zotero DIR`: a Zotero library read where Zotero keeps it (zotero.sqlite and
storage/), read-only. Each regular item is a paper with the item's metadata, and its PDF is that
paper's text (one paper, not two), as with a .bib export's `file` field (tests/test_papers.py).
The library is a tiny zotero.sqlite with only the tables and columns the reader uses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from conftest import FakeEmbedder, FakeGenerator
from pdfmaker import sample_paper
from rag import cli, corpus
from rag.pipeline import Rag
from rag.settings import Settings

ARTICLE = "Sparse Routing for Efficient Transformers: Extended Version"  # the PDF's own title is shorter
CONFERENCE = "Quokka Routing at Scale"
SCHEMA = """
CREATE TABLE itemTypes (itemTypeID INTEGER PRIMARY KEY, typeName TEXT);
CREATE TABLE items (itemID INTEGER PRIMARY KEY, itemTypeID INT, key TEXT, libraryID INT);
CREATE TABLE fields (fieldID INTEGER PRIMARY KEY, fieldName TEXT);
CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value);
CREATE TABLE itemData (itemID INT, fieldID INT, valueID INT);
CREATE TABLE creatorTypes (creatorTypeID INTEGER PRIMARY KEY, creatorType TEXT);
CREATE TABLE creators (creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT, fieldMode INT);
CREATE TABLE itemCreators (itemID INT, creatorID INT, creatorTypeID INT, orderIndex INT);
CREATE TABLE itemAttachments (itemID INTEGER PRIMARY KEY, parentItemID INT, linkMode INT, contentType TEXT, path TEXT);
CREATE TABLE deletedItems (itemID INTEGER PRIMARY KEY);
INSERT INTO itemTypes VALUES (1, 'journalArticle'), (2, 'conferencePaper'), (3, 'note'), (4, 'attachment');
INSERT INTO fields VALUES (1, 'title'), (2, 'date'), (3, 'abstractNote'), (4, 'publicationTitle'), (5, 'proceedingsTitle');
INSERT INTO creatorTypes VALUES (1, 'author'), (2, 'editor');
"""


def zotero_library(folder: Path, missing_link: bool = True) -> Path:
    """A journal article by two authors with a stored PDF, a conference paper by an institution
    (plus an editor) with a linked PDF, a note, and a deleted article."""
    (folder / "storage" / "PDFKEY01").mkdir(parents=True)
    sample_paper(folder / "storage" / "PDFKEY01" / "lovelace2020.pdf")
    linked = folder.parent / ("gone.pdf" if missing_link else "quokka.pdf")
    if not missing_link:
        sample_paper(linked, title=CONFERENCE)
    con = sqlite3.connect(folder / "zotero.sqlite")
    con.executescript(SCHEMA)
    items = [(1, 1, "ARTICLE1"), (2, 2, "CONFPAP1"), (3, 3, "NOTE0001"), (4, 1, "DELETED1"), (5, 4, "PDFKEY01"), (6, 4, "LINKED01")]
    con.executemany("INSERT INTO items VALUES (?, ?, ?, 1)", items)
    data = {
        1: {1: ARTICLE, 2: "2020-07-00 2020-07", 3: "We route tokens to sparse experts.", 4: "Journal of Imaginary Learning"},
        2: {1: CONFERENCE, 2: "2021-12-06 December 6, 2021", 5: "Proceedings of Imaginary ML"},
        4: {1: "A Paper Moved to the Trash", 2: "2019"},
        5: {1: "Full Text PDF"},
    }
    for item, values in data.items():
        for field, value in values.items():
            value_id = con.execute("INSERT INTO itemDataValues (value) VALUES (?)", (value,)).lastrowid
            con.execute("INSERT INTO itemData VALUES (?, ?, ?)", (item, field, value_id))
    con.executemany("INSERT INTO creators VALUES (?, ?, ?, ?)", [(1, "Ada", "Lovelace", 0), (2, "Alan", "Turing", 0), (3, "", "Quokka Research Lab", 1), (4, "Ed", "Itor", 0)])
    con.executemany("INSERT INTO itemCreators VALUES (?, ?, ?, ?)", [(1, 1, 1, 0), (1, 2, 1, 1), (2, 3, 1, 0), (2, 4, 2, 1), (4, 1, 1, 0)])
    con.executemany(
        "INSERT INTO itemAttachments VALUES (?, ?, ?, ?, ?)",
        [(5, 1, 0, "application/pdf", "storage:lovelace2020.pdf"), (6, 2, 2, "application/pdf", str(linked))],
    )
    con.execute("INSERT INTO deletedItems VALUES (4)")
    con.commit()
    con.close()
    return folder


@pytest.fixture
def fake_runner(runner, fake_embedder):
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=fake_embedder, generator=FakeGenerator())
    return runner


def stored(embedder: FakeEmbedder) -> dict:
    return {p.title: p for p in Rag(Settings.load(), embedder=embedder).papers()}


def test_each_zotero_item_is_a_paper_and_its_pdf_is_that_paper(fake_runner, fake_embedder, tmp_path):
    library = zotero_library(tmp_path / "Zotero")
    note = tmp_path / "note.md"
    note.write_text("# Reading notes\n\nRouting ideas to try next week.\n", encoding="utf-8")
    result = fake_runner.invoke(cli.app, ["ingest", str(note), "--zotero", str(library)])
    assert result.exit_code == 1, result.output  # read, but one attachment is not there
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("warning: ")]
    assert "item CONFPAP1: attached file" in line and "gone.pdf" in line and "not found" in line
    papers = stored(fake_embedder)
    assert set(papers) == {ARTICLE, CONFERENCE, "Reading notes"}  # no note item, nothing from the trash
    article = papers[ARTICLE]
    assert (article.authors, article.year, article.venue) == (("Ada Lovelace", "Alan Turing"), 2020, "Journal of Imaginary Learning")
    pdf = (library / "storage" / "PDFKEY01" / "lovelace2020.pdf").resolve()
    assert set(article.sources) == {str((library / "zotero.sqlite").resolve()), str(pdf)}  # one paper: the item and its PDF
    assert article.chunks > 1  # the PDF's full text
    conference = papers[CONFERENCE]
    assert (conference.authors, conference.year, conference.venue) == (("Quokka Research Lab",), 2021, "Proceedings of Imaginary ML")
    assert conference.chunks >= 1  # the metadata, though its PDF is missing


def test_the_reader_keeps_the_abstract_and_the_library_api(tmp_path, fake_embedder):
    read = corpus.read_zotero(zotero_library(tmp_path / "linked" / "Zotero", missing_link=False))
    assert {p.title: p.abstract for p in read.papers}[ARTICLE] == "We route tokens to sparse experts."
    assert (read.problems, read.warnings, len(read.attachments)) == ((), (), 2)
    library = zotero_library(tmp_path / "Zotero")
    rag = Rag(Settings.load(), embedder=fake_embedder)
    first = rag.ingest(zotero=library)  # the library alone: not the seed folder
    assert (first.papers, first.added, len(first.skipped)) == (2, 2, 1)
    again = rag.ingest(zotero=library)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 2, 0)
    with sqlite3.connect(library / "zotero.sqlite") as con:
        con.execute("INSERT INTO deletedItems VALUES (2)")  # the conference paper (no PDF) moved to the trash
    trashed = rag.ingest(zotero=library)
    assert (trashed.removed, [p.title for p in rag.papers()]) == (1, [ARTICLE])


def test_the_library_is_only_read(fake_runner, tmp_path):
    library = zotero_library(tmp_path / "Zotero", missing_link=False)
    db = library / "zotero.sqlite"
    before, files = db.read_bytes(), sorted(library.rglob("*"))
    mtime = db.stat().st_mtime_ns
    result = fake_runner.invoke(cli.app, ["ingest", "--zotero", str(library)])
    assert result.exit_code == 0, result.output
    assert db.read_bytes() == before and db.stat().st_mtime_ns == mtime
    assert sorted(library.rglob("*")) == files  # no journal, no -wal or -shm file left behind


def _no_library(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _not_zotero(tmp_path: Path) -> Path:
    (tmp_path / "other").mkdir()
    sqlite3.connect(tmp_path / "other" / "zotero.sqlite").executescript("CREATE TABLE notes (x); INSERT INTO notes VALUES (1);")
    return tmp_path / "other"


def _not_sqlite(tmp_path: Path) -> Path:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "zotero.sqlite").write_bytes(b"not a database at all\n" * 200)
    return tmp_path / "junk"


@pytest.mark.parametrize(
    "make, expected",
    [
        (_no_library, "no Zotero library here (zotero.sqlite not found); give the folder that holds it, e.g. rag ingest --zotero ~/Zotero"),
        (_not_zotero, "not a Zotero database (no `items` table)"),
        (_not_sqlite, "not a Zotero database (file is not a database)"),
    ],
    ids=["no-library", "other-sqlite", "not-sqlite"],
)
def test_a_folder_without_a_zotero_library_is_one_error_line(fake_runner, tmp_path, make, expected):
    result = fake_runner.invoke(cli.app, ["ingest", "--zotero", str(make(tmp_path))])
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line


def test_a_library_zotero_is_writing_is_one_error_line(fake_runner, fake_embedder, tmp_path):
    library = zotero_library(tmp_path / "Zotero")
    zotero_app = sqlite3.connect(library / "zotero.sqlite", isolation_level=None)
    zotero_app.execute("BEGIN EXCLUSIVE")  # what a running Zotero holds
    try:
        result = fake_runner.invoke(cli.app, ["ingest", "--zotero", str(library)])
    finally:
        zotero_app.execute("ROLLBACK")
        zotero_app.close()
    assert result.exit_code == 2 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and line.endswith("is locked by Zotero; close Zotero or try again")
    assert fake_embedder.calls == []  # nothing was ingested


def test_watch_does_not_follow_a_zotero_library(fake_runner, tmp_path):
    result = fake_runner.invoke(cli.app, ["ingest", "--watch", "--zotero", str(zotero_library(tmp_path / "Zotero"))])
    assert result.exit_code == 2 and result.stderr.startswith("error: --watch") and len(result.stderr.strip().splitlines()) == 1
