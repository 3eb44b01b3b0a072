"""The paper's own sentences that answer a question, for when the model's answer says nothing new.

Given a paraphrased question ("Which study did X, and what did its method beat?") the small local
models often restate the question word for word and cite the right paper, but never say what the
paper found. Such an answer is detected in code (outside the titles it names, it holds no word of
the paper that the question did not already have), and the tool then quotes, for each part of the
question, the sentence of the cited paper that answers it best. A verbatim quote cannot misstate
the paper, so the sentence check and the citation rules still hold."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from rag.embedding import Embedder
from rag.text import (
    is_prose,
    root,
    roots,
    split_sentences,
    tokenize,
    without_markers,
    without_titles,
)

# ", and what ...", " and which ...": where a question asks a second thing. A bare ", and" also
# splits ("shows X, converts Y, and finds Z"): each clause is a claim the answer should cover.
_PARTS = re.compile(
    r",?\s+and\s+(?=(?:what|which|how|who|whom|where|when|why|whether|on what|on which|in which|for which|does|did|do|is|are|was|were)\b)"
    r"|,\s+and\s+",
    re.I,
)
LEXICAL_WEIGHT = 0.5  # a sentence's share of the part's IDF-weighted words, against its cosine similarity


def question_parts(question: str) -> list[str]:
    """The things a question asks, in order; a part of one or two words stays with the one before."""
    parts: list[str] = []
    for piece in _PARTS.split(question.strip()):
        piece = piece.strip(" ?.,;")
        if parts and len(piece.split()) < 3:
            parts[-1] += f" and {piece}"
        elif piece:
            parts.append(piece)
    return parts or [question.strip()]


def adds_nothing(answer: str, question: str, titles: list[str], source_texts: list[str]) -> bool:
    """True when every word the answer takes from the papers, outside the titles it names, was
    already in the question: it restates the question instead of answering it. A title's words
    count when the answer uses them in its own sentence ("they play the iterated prisoner's dilemma")."""
    plain = without_titles(without_markers(answer), titles)
    said = roots(plain) & roots(" ".join(source_texts))
    return not (said - roots(question))


@dataclass(frozen=True)
class Quote:
    n: int  # the source's number in the prompt
    sentence: str


def answering_sentences(
    parts: list[str], sources: list[tuple[int, str]], embedder: Embedder, idf: Callable[[str], float] | None = None,
) -> list[Quote]:
    """For each part, the source sentence closest to it (cosine similarity plus IDF-weighted word
    overlap, so a rare term the part names counts even where the embedding misses it); a sentence
    chosen for an earlier part is not quoted twice."""
    candidates = [(n, s) for n, text in sources for s in split_sentences(text) if is_prose(s)]
    if not candidates or not parts:
        return []
    similarity = embedder.embed(parts) @ embedder.embed([s for _, s in candidates]).T
    sentence_roots = [roots(s) for _, s in candidates]
    chosen: list[Quote] = []
    for i, part in enumerate(parts):
        weights: dict[str, float] = {}
        for term in tokenize(part):
            weights[root(term)] = max(weights.get(root(term), 0.0), max(idf(term), 0.0) if idf else 1.0)
        total = sum(weights.values()) or 1.0

        def score(j: int) -> float:
            overlap = sum(w for r, w in weights.items() if r in sentence_roots[j]) / total
            return float(similarity[i, j]) + LEXICAL_WEIGHT * overlap

        ranked = sorted(range(len(candidates)), key=score, reverse=True)
        best = next((j for j in ranked if Quote(*candidates[j]) not in chosen), None)
        if best is not None:
            chosen.append(Quote(*candidates[best]))
    return chosen


def quoted(quotes: list[Quote]) -> str:
    """'The paper states: "..." [1]' for each quote, in the order of the question's parts."""
    lead = ("The paper states", "It also states")
    return " ".join(f'{lead[min(i, 1)]}: "{q.sentence.strip()}" [{q.n}]' for i, q in enumerate(quotes))
