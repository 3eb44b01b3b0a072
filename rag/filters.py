"""Metadata filters (`--author`, `--year`, `--source`, `--title`, `--category`) shared by search, ask, summarize
and papers.

A filter narrows the set of papers *before* retrieval: the store computes the matching paper ids
from chunk metadata, and both the dense query (a Chroma `where`) and BM25 are restricted to them.
Filtering after retrieval would instead return fewer than k papers, or none, whenever the best
matches overall fall outside the filter.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import InputError

YEARS = (1000, 2100)  # the years `--year` accepts
_YEAR_RANGE = re.compile(r"^\s*(\d{4})?\s*(?:(\.\.|-|–)\s*(\d{4})?)?\s*$")


@dataclass(frozen=True)
class Filters:
    author: str = ""  # case-insensitive substring of any author name
    year_from: int | None = None
    year_to: int | None = None
    source: str = ""  # a file or folder path (matched by resolved prefix) or a substring of one
    title: str = ""  # case-insensitive substring of the title
    category: str = ""  # an arXiv category ("cs.CL") or archive ("cs", "math")

    @classmethod
    def parse(
        cls, author: str | None = None, year: str | None = None, source: str | None = None, title: str | None = None, category: str | None = None,
    ) -> "Filters | None":
        """From CLI strings; None when no filter is given. `year` is `2021`, `2020..2023`, `2020..` or `..2023`."""
        year_from = year_to = None
        if year:
            m = _YEAR_RANGE.match(year)
            if not m or not (m.group(1) or m.group(3)):
                raise InputError(f"--year {year!r}: give a year or a range like 2020..2023")
            year_from = int(m.group(1)) if m.group(1) else None
            year_to = int(m.group(3)) if m.group(3) else (year_from if not m.group(2) else None)
            # `--year 0000` read as "no year" and was silently ignored: papers are dated 1000..2100.
            for y in (year_from, year_to):
                if y is not None and not YEARS[0] <= y <= YEARS[1]:
                    raise InputError(f"--year {year!r}: {y:04d} is not a year between {YEARS[0]} and {YEARS[1]}")
            if year_from is not None and year_to is not None and year_from > year_to:
                raise InputError(f"--year {year!r}: the range is empty")
        f = cls((author or "").strip(), year_from, year_to, (source or "").strip(), (title or "").strip(), (category or "").strip())
        return f if f.active else None

    @property
    def active(self) -> bool:
        return bool(self.author or self.source or self.title or self.category or self.year_from or self.year_to)

    def category_matches(self, stored: str) -> bool:
        """`cs.CL` matches cs.CL only; `cs` matches every cs.* category (case-insensitive)."""
        wanted, stored = self.category.lower(), stored.lower()
        return stored == wanted or ("." not in wanted and stored.split(".")[0] == wanted)

    def source_matches(self, stored: str) -> bool:
        wanted = Path(self.source).expanduser()
        if wanted.exists():
            resolved = str(wanted.resolve())
            if stored == resolved or stored.startswith(resolved.rstrip(os.sep) + os.sep):
                return True
        return self.source.lower() in stored.lower()
