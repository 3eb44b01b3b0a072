"""Parsed PDFs kept by their bytes' hash, so re-ingesting an unchanged library parses no PDF again
(the ten real papers: 1.8 s of a 2.75 s re-ingest was parsing). One JSON file a PDF in the
store's cache folder (`parsed/`); the file's name holds the content hash, the file name (a PDF
with no title is titled from it) and `pdf.READER_VERSION`, so a changed reader never serves an
old parse. A damaged or unreadable entry is a miss; a cache that cannot be written costs speed,
never the ingest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

from rag import pdf
from rag.pdf import PdfRead
from rag.types import Block, Paper

FOLDER = "parsed"  # under the store's cache dir


class PdfCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, content_hash: str, name: str) -> Path:
        key = hashlib.sha256(f"{pdf.READER_VERSION}\0{content_hash}\0{Path(name).name}".encode()).hexdigest()[:40]
        return self.folder / f"{key}.json"

    def get(self, content_hash: str, name: str, source: str) -> PdfRead | None:
        """The cached parse, its paper's source set to where the file is now."""
        try:
            data = json.loads(self._path(content_hash, name).read_text(encoding="utf-8"))
            p = data["paper"]
            paper = Paper(**{**p, "authors": tuple(p["authors"]), "categories": tuple(p["categories"]), "references": tuple(p.get("references", ())),
                             "blocks": tuple(Block(**b) for b in p["blocks"]), "source": source})
            return PdfRead(paper, tuple(data["warnings"]), int(data["pages"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, content_hash: str, name: str, read: PdfRead) -> None:
        data = {"paper": dataclasses.asdict(read.paper), "warnings": list(read.warnings), "pages": read.pages}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
            os.replace(tmp, self._path(content_hash, name))
        except OSError:
            return
