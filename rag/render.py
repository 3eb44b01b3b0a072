"""How answers, sources and papers look in a terminal: one copy for `rag` and `rag chat`. Every
line passes `safe_text.clean_line`, so a title or a model's output can never drive the terminal;
JSON output does not come through here."""

from __future__ import annotations

import sys
from typing import Callable

from rag.safe_text import clean, clean_line
from rag.types import Answer, Evidence, PaperInfo, Source


def sources_lines(answer: Answer, quotes: bool = False) -> list[str]:
    """'Sources:' and one line per cited paper (`Title, p. 4`), each quote under its paper."""
    lines = ["Sources:"]
    for c in sorted(answer.citations, key=lambda c: c.n):
        lines.append(f"  [{c.n}] {clean_line(c.label())}")
        if quotes and c.quote:
            lines.append(f'      "{clean_line(c.quote)}"')
    return lines


def evidence_lines(evidence: list[Evidence]) -> list[str]:
    """'Found:' and one line per paper the answer will draw on, with its sentence closest to the
    question, printed before the model's first word."""
    lines = ["Found:"]
    for e in evidence:
        page = f", p. {e.page}" if e.page is not None else ""
        lines.append(f"  [{e.n}] {clean_line(e.title)}{page}")
        if e.sentence:
            lines.append(f'      "{clean_line(e.sentence)}"')
    return lines


def evidence_writer() -> Callable[[list[Evidence]], None]:
    def write(evidence: list[Evidence]) -> None:
        sys.stdout.write("\n".join(evidence_lines(evidence)) + "\n\n")
        sys.stdout.flush()

    return write


def coverage_line(answer: Answer) -> str:
    """'(cites 2 of 5 relevant papers)' when more than one paper was relevant, else ''."""
    return f"(cites {answer.used_papers} of {answer.relevant_papers} relevant papers)" if answer.relevant_papers > 1 else ""


def paper_line(p: PaperInfo) -> str:
    authors = f" — {', '.join(p.authors[:3])}{' et al.' if len(p.authors) > 3 else ''}" if p.authors else ""
    year = f" ({p.year})" if p.year else ""
    return clean_line(f"{p.paper_id}  {p.title}{authors}{year}")


def search_lines(rank: int, s: Source) -> list[str]:
    page = f", p. {s.page}" if s.page is not None else ""
    return [f"{rank}. {clean_line(s.title)}{page}  (relevance {s.score:.2f})", clean(f"   {s.text[:200]}{'…' if len(s.text) > 200 else ''}")]


def stdout_writer() -> Callable[[str], None]:
    """Writes streamed pieces as they come; each piece is cleaned on its own (an ESC split from
    its sequence is gone all the same)."""

    def write(text: str) -> None:
        sys.stdout.write(clean(text))
        sys.stdout.flush()

    return write
