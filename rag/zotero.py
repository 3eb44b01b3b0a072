"""A Zotero library read where Zotero keeps it (`zotero.sqlite` and its `storage/` folder) into
what a BibTeX export with `file` fields gives (`readers.BibResult`): one paper per regular item,
and the item's PDFs attached, so each PDF becomes that item's paper (one paper, not two).

Why a module of its own, next to readers.py: it reads a database another program owns, maybe
while that program runs, and has its own ways to fail (no library in the folder, the file is
locked by Zotero, the file is not Zotero's). It never writes: the database is opened read-only
(`mode=ro`; never `immutable=1`, which would read pages Zotero is rewriting) and read inside one
read transaction, so it sees one consistent state of the library, and nothing is created in the
library's folder. Standard library only.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rag.errors import InputError
from rag.papers import clean_text, paper_id_for
from rag.readers import BibResult, first_year
from rag.types import Paper

DB_NAME = "zotero.sqlite"
EXAMPLE = "rag ingest --zotero ~/Zotero"
LOCK_WAIT_S = 2.0  # Zotero's own short writes finish within this; a running Zotero holds its lock
TABLES = ("items", "itemTypes", "fields", "itemData", "itemDataValues", "creators", "itemCreators", "itemAttachments", "deletedItems")
NOT_PAPERS = ("attachment", "note", "annotation")
TITLE_FIELDS = ("title", "caseName", "nameOfAct", "subject")  # what Zotero calls the title of a case, a statute, an email
VENUE_FIELDS = ("publicationTitle", "proceedingsTitle", "conferenceName")
NOT_AUTHORS = ("editor", "seriesEditor", "translator", "reviewedAuthor", "bookAuthor")  # creators who did not write the item
PDF = "application/pdf"

_ITEMS = f"""SELECT i.itemID, i.key FROM items i JOIN itemTypes t ON t.itemTypeID = i.itemTypeID
  WHERE t.typeName NOT IN ({", ".join("?" * len(NOT_PAPERS))}) AND i.itemID NOT IN (SELECT itemID FROM deletedItems)
  ORDER BY i.itemID"""
_FIELDS = """SELECT d.itemID, f.fieldName, v.value FROM itemData d JOIN fields f ON f.fieldID = d.fieldID
  JOIN itemDataValues v ON v.valueID = d.valueID"""
_CREATORS = """SELECT ic.itemID, c.firstName, c.lastName, c.fieldMode{type} FROM itemCreators ic
  JOIN creators c ON c.creatorID = ic.creatorID{join} ORDER BY ic.itemID, ic.orderIndex"""
_ATTACHMENTS = """SELECT a.parentItemID, i.key, a.contentType, a.path FROM itemAttachments a JOIN items i ON i.itemID = a.itemID
  WHERE a.parentItemID IS NOT NULL AND a.itemID NOT IN (SELECT itemID FROM deletedItems) ORDER BY a.itemID"""


def library_file(folder: Path) -> Path:
    """The library's database: `folder/zotero.sqlite` (the file itself, when a file is given)."""
    folder = folder.expanduser()
    db = folder if folder.is_file() else folder / DB_NAME
    if not db.is_file():
        raise InputError(f"{folder}: no Zotero library here ({DB_NAME} not found); give the folder that holds it, e.g. {EXAMPLE}")
    return db


def read_library(db: Path, source: str) -> BibResult:
    """Every regular item of the library at `db` as a paper whose `source` is `source`; its PDF
    attachments in `attachments` (path -> the item's title), one warning per attachment whose file
    is not there, one problem per item without a title. An `InputError` naming `db` when the
    library cannot be read at all."""
    try:
        con = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=LOCK_WAIT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise InputError(f"{db}: cannot open the Zotero library ({exc})") from None
    try:
        con.execute("BEGIN")  # deferred: the first read takes a shared lock, held until close
        missing = [t for t in TABLES if t not in _tables(con)]
        if missing:
            raise InputError(f"{db}: not a Zotero database (no `{missing[0]}` table); give the folder that holds Zotero's {DB_NAME}, e.g. {EXAMPLE}")
        return _read(con, db.parent, source)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise InputError(f"{db}: the Zotero library is locked by Zotero; close Zotero or try again") from None
        raise InputError(f"{db}: cannot read the Zotero library ({exc})") from None
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{db}: not a Zotero database ({exc})") from None
    finally:
        con.close()


def _tables(con: sqlite3.Connection) -> set[str]:
    return {name for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _read(con: sqlite3.Connection, folder: Path, source: str) -> BibResult:
    fields: dict[int, dict[str, str]] = {}
    for item_id, name, value in con.execute(_FIELDS):
        fields.setdefault(item_id, {})[name] = str(value or "")
    authors = _authors(con)
    pdfs: dict[int, list[tuple[str, str]]] = {}
    for parent, key, content_type, path in con.execute(_ATTACHMENTS):
        if path and (content_type == PDF or str(path).lower().endswith(".pdf")):
            pdfs.setdefault(parent, []).append((key, str(path)))
    papers: list[Paper] = []
    problems: list[str] = []
    attachments: dict[str, str] = {}
    missing: list[str] = []
    for item_id, key in con.execute(_ITEMS, NOT_PAPERS).fetchall():
        item = fields.get(item_id, {})
        title = clean_text(next((item[f] for f in TITLE_FIELDS if item.get(f)), ""))
        if not title:
            problems.append(f"item {key} has no title, skipped")
            continue
        for attachment_key, path in pdfs.get(item_id, ()):
            found, why = _attached_file(folder, attachment_key, path)
            if found:
                attachments[found] = title
            else:
                missing.append(f"item {key}: attached file {why}")
        venue = next((item[f] for f in VENUE_FIELDS if item.get(f)), "")
        papers.append(
            Paper(
                paper_id=paper_id_for(title), title=title, authors=tuple(authors.get(item_id, ())),
                abstract=clean_text(item.get("abstractNote", "")), source=source,
                year=first_year(item.get("date", "")), venue=clean_text(venue),
            )
        )
    if not papers and problems:
        raise InputError(f"{source}: no usable Zotero item ({problems[0]})")
    if not papers:
        raise InputError(f"{source}: no items in this Zotero library")
    return BibResult(papers, problems, attachments, missing)


def _authors(con: sqlite3.Connection) -> dict[int, list[str]]:
    """Each item's creators in Zotero's order, "First Last" (or the one-field name of an
    institution); editors and translators are left out when the library says who is which."""
    typed = "creatorTypes" in _tables(con)
    sql = _CREATORS.format(
        type=", ct.creatorType" if typed else ", ''",
        join=" LEFT JOIN creatorTypes ct ON ct.creatorTypeID = ic.creatorTypeID" if typed else "",
    )
    names: dict[int, list[str]] = {}
    for item_id, first, last, mode, role in con.execute(sql):
        if role in NOT_AUTHORS:
            continue
        name = clean_text(str(last or "") if mode == 1 else f"{first or ''} {last or ''}")
        if name:
            names.setdefault(item_id, []).append(name)
    return names


def _attached_file(folder: Path, key: str, path: str) -> tuple[str, str]:
    """(the PDF's resolved path, "") when its file is there, else ("", why not). Zotero stores a
    file it keeps as `storage:NAME.pdf` (in storage/<attachment key>/), a linked file by its
    absolute path, and a linked file under the base folder of its preferences as `attachments:...`,
    which the database does not name."""
    if path.startswith("attachments:"):
        return "", f"{path} is relative to Zotero's linked-attachment base folder, which the library does not name; not read"
    file = folder / "storage" / key / path[len("storage:"):] if path.startswith("storage:") else Path(path).expanduser()
    if not file.is_absolute() or not file.is_file():
        return "", f"{file} not found"
    return str(file.resolve()), ""
