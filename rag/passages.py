"""Which passages of a long paper reach the model, and how the prompt's token budget is shared.

An abstract is given whole (or focused, see `text.focused`); a full-text paper is 40-140 chunks,
and the one that holds the asked detail is rarely the one most similar to the question. Retrieval
hands over a paper's best few chunks (`Source.passages`); here the cross-encoder, when there is
one, puts them in the order that answers the question, and the best of them are given to the
model, each keeping its page so a citation can name it."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from rag import prompts
from rag.rerank import Reranker
from rag.text import focused
from rag.types import Passage, Source

CHARS_PER_TOKEN = 4  # close enough for English prose with these tokenizers
FIRST_PAPER_PASSAGES = 3  # the paper that answers: a detail and its context are often in two chunks
OTHER_PAPER_PASSAGES = 2
_BETWEEN = "\n\n"  # between two passages of one paper in the prompt


def passage(source: Source, text: str | None = None) -> str:
    """What the cross-encoder reads: the title and authors too, so "What did <author> propose?"
    finds its paper (without them such questions scored -6 to -10)."""
    return f"{source.title}. {', '.join(source.authors)}. {source.text if text is None else text}"


def reranked(reranker: Reranker, question: str, sources: Sequence[Source]) -> list[tuple[Source, float]]:
    """Each source with its passages in the cross-encoder's order, and its best passage's score;
    one call for all of them (the model batches the pairs)."""
    texts = [[p.text for p in s.passages] or [s.text] for s in sources]
    flat = reranker.score(question, [passage(s, t) for s, ts in zip(sources, texts) for t in ts])
    out, at = [], 0
    for source, ts in zip(sources, texts):
        scores, at = flat[at : at + len(ts)], at + len(ts)
        order = sorted(range(len(ts)), key=lambda i: -scores[i])
        if source.passages:
            ordered = tuple(source.passages[i] for i in order)
            source = dataclasses.replace(source, text=ordered[0].text, page=ordered[0].page, passages=ordered)
        out.append((source, scores[order[0]]))
    return out


def given(sources: Sequence[Source], budget_tokens: int, question: str = "", focus_chars: int = 0) -> list[Source]:
    """What the model reads of each source, within the budget: the first (answering) paper may give
    FIRST_PAPER_PASSAGES passages and its opening one (the abstract), the others OTHER_PAPER_PASSAGES; a share another source does
    not use goes to the rest. A source over its share loses whole passages from the end, then is
    cut at a sentence boundary. The text is the one the model sees (`prompts.data_only`), so the
    sentence check cannot count an instruction planted in a paper as support, and a number is
    checked against the passages the model was shown. With `focus_chars`, every passage but the
    answering paper's best is cut to its sentences closest to `question` (`text.focused`)."""
    wanted = [_with_passages(s, FIRST_PAPER_PASSAGES if i == 0 else OTHER_PAPER_PASSAGES, (question, focus_chars), i == 0) for i, s in enumerate(sources)]
    shares = _shares([len(s.text) for s in wanted], budget_tokens * CHARS_PER_TOKEN)
    return [_fit(s, share) for s, share in zip(wanted, shares)]


def _with_passages(source: Source, n: int, focus: tuple[str, int], answering: bool) -> Source:
    if len(source.passages) < 2:
        return dataclasses.replace(source, text=prompts.data_only(source.text), passages=())
    question, chars = focus
    chosen = list(source.passages[:n])
    if answering:  # the abstract stays within reach: what the paper does, its headline numbers
        chosen += [p for p in source.passages[n:] if p.opening]
    kept = []
    for i, p in enumerate(chosen):
        text = prompts.data_only(p.text)
        kept.append(Passage(focused(text, question, chars) if chars and not (answering and i == 0) else text, p.page, p.opening))
    return _joined(source, tuple(kept))


def _joined(source: Source, passages: tuple[Passage, ...]) -> Source:
    return dataclasses.replace(source, text=_BETWEEN.join(p.text for p in passages), page=passages[0].page, passages=passages)


def _shares(lengths: list[int], budget: int) -> list[int]:
    """An even share each, and what a short source leaves over shared among the longer ones."""
    shares = [0] * len(lengths)
    left, open_ = budget, sorted(range(len(lengths)), key=lambda i: lengths[i])
    while open_:
        share = max(left // len(open_), 60 * CHARS_PER_TOKEN)
        i = open_.pop(0)
        shares[i] = min(lengths[i], share) if open_ else max(share, 0)
        left -= shares[i]
    return shares


def _fit(source: Source, share: int) -> Source:
    if len(source.text) <= share:
        return source
    passages = source.passages
    while len(passages) > 1 and len(_BETWEEN.join(p.text for p in passages)) > share:
        passages = passages[:-1]
    if passages and len(passages[0].text) <= share:
        return _joined(source, passages)
    text = _cut(source.text if not passages else passages[0].text, share)
    if passages:
        return _joined(source, (Passage(text, passages[0].page),))
    return dataclasses.replace(source, text=text)


def _cut(text: str, share: int) -> str:
    cut = text[:share]
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: end + 1] if end > share // 2 else cut.rsplit(" ", 1)[0] + " …"
