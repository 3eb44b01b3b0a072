"""Retrieved passages -> prompt -> checked `Answer`: `ask` and `summarize`.

A request comes in as one `Request` (question, filters, callbacks), carries its state in one
`_Run` (clock, timings) and its shape in one `Mode` (template, k, cut-offs, token limit), so no step takes more than a handful of
parameters and every call says what it passes. The parts (settings, retriever, store, embedder,
generator) come from the `Rag` facade through the small `Parts` protocol; this module never
builds them."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from rag import citations, evidence, judge as judging, passages, prompts
from rag.embedding import Embedder
from rag.errors import InputError
from rag.generation import Generator, OnToken
from rag.judge import Judge
from rag.rerank import Reranker
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Store
from rag.text import cited_numbers, focused
from rag.types import Answer, CheckedSentence, Evidence, Source, Timings

OnEvidence = Callable[[list[Evidence]], None]

RERANKED = 3  # passages the cross-encoder reads (~20 ms each) when relevance alone is not decisive
JUDGED_PAPERS = 1  # the best paper decides a yes/no question; the judge is too weak to weigh several (docs/evaluation.md)
QUOTED_SENTENCES = 2  # what a question the paper does not settle gets instead of an answer
MAX_QUESTION_CHARS = 2000  # a question or summary topic; sources need the rest of the context window


class Parts(Protocol):
    """What answering needs from the facade; each part may be built on first use."""

    settings: Settings
    store: Store
    retriever: Retriever
    embedder: Embedder
    generator: Generator
    judge: Judge | None
    reranker: Reranker | None

    def model_name(self) -> str: ...


@dataclass(frozen=True)
class Mode:
    """How one kind of request is answered."""

    template: str  # prompts.ASK, ASK_LIST or SUMMARIZE
    slot: str  # the template's field for the question: "question" or "topic"
    k: int  # papers given to the model
    threshold: float  # relevance the first paper needs; below it the answer is an abstention
    max_tokens: int
    secondary: float | None = None  # relevance later papers need (a list question wants every paper that fits)
    whole_papers: bool = False  # give whole abstracts instead of the best chunk
    quote_echo: bool = False  # quote the paper when the answer only restates the question


@dataclass(frozen=True)
class Request:
    """What was asked and where its results go. `retrieval_query`, when given, is what retrieval
    searches for instead of the question (`rag chat` folds the conversation into it); the model
    still sees the question as asked."""

    question: str
    k: int | None = None
    paper_ids: set[str] | None = None  # the papers a filter allows; None: all
    retrieval_query: str | None = None
    on_token: OnToken | None = None
    on_evidence: OnEvidence | None = None  # called once, before the model starts


@dataclass
class _Run:
    """One request as it goes: what was asked, where the answer streams, and its clock."""

    question: str
    on_token: OnToken | None = None
    on_evidence: OnEvidence | None = None
    about: str = ""  # what the papers are searched and cut for: a follow-up folds in the turn before
    started: float = field(default_factory=time.perf_counter)
    timings: Timings = field(default_factory=Timings)
    relevant: int = 0  # papers that passed the relevance cut-off

    def lap(self) -> float:
        return time.perf_counter() - self.started

    def show_evidence(self, sources: list[Source]) -> None:
        """The papers the answer will come from, numbered as it will cite them, each with its
        sentence closest to the question."""
        if not sources:
            return
        self.timings.evidence_s = self.lap()
        if self.on_evidence:
            self.on_evidence([Evidence(n, s.title, s.page, citations.best_quote(self.question, s.text)) for n, s in enumerate(sources, 1)])

    @classmethod
    def of(cls, request: Request) -> "_Run":
        return cls(request.question, request.on_token, request.on_evidence, request.retrieval_query or request.question)


def require_text(value: str, what: str, max_chars: int | None = None) -> str:
    value = (value or "").strip()
    if not value:
        raise InputError(f"the {what} is empty")
    if max_chars is not None and len(value) > max_chars:
        # A 100 KB question overflowed the model's context window with a llama.cpp traceback.
        raise InputError(f"the {what} is {len(value):,} characters long; the limit is {max_chars:,}")
    return value


def relevant(sources: list[Source], threshold: float) -> list[Source]:
    """Sources close enough to be worth the model's time; this cut-off is what lets the tool say
    'not covered' instead of answering from a poor match."""
    return [s for s in sources if s.score >= threshold]


def ask(parts: Parts, request: Request) -> Answer:
    s, question, k = parts.settings, request.question, request.k
    if asks_for_list(question):
        mode = Mode(prompts.ASK_LIST, "question", k or s.list_k, s.min_relevance, s.max_tokens * 2, secondary=s.list_min_relevance)
    else:
        mode = Mode(prompts.ASK, "question", k or s.k, s.min_relevance, s.max_tokens, whole_papers=True, quote_echo=True)
    run = _Run.of(request)
    candidates = parts.retriever.search(run.about, max(mode.k * 3, 10), paper_ids=request.paper_ids)
    passing = relevant(candidates, mode.threshold)
    first, scored = answering_paper(parts, question, candidates)
    sources = [first] if first else []
    if first:
        later = mode.threshold if mode.secondary is None else mode.secondary
        sources += [c for c in relevant(candidates, later) if c.paper_id != first.paper_id][: mode.k - 1]
        gate = mode.secondary is None and not asks_yes_no(question)
        sources = _best_passages_first(parts, question, sources, candidates, scored, gate_later=gate)
    run.timings.retrieve_s = run.lap()
    run.relevant = max(len(passing), len(sources))
    if sources and asks_yes_no(question) and parts.judge is not None:
        run.show_evidence(sources[:JUDGED_PAPERS])
        return _answer_yes_no(parts, run, mode, sources)
    run.show_evidence(sources)
    return _respond(parts, run, mode, sources)


Scored = dict[str, tuple[Source, float]]  # paper id -> the paper with its passages in the cross-encoder's order, its best score


def answering_paper(parts: Parts, question: str, candidates: list[Source]) -> tuple[Source | None, Scored]:
    """The paper that lets the question be answered at all, or None (the answer is an abstention),
    and what the cross-encoder scored on the way. A best paper of high relevance answers; below
    that, the cross-encoder must find a passage among the best RERANKED papers' passages that
    answers the question. Without a reranker: the old cut-off. Calibrated by
    scripts/calibrate_abstain.py (docs/evaluation.md)."""
    s = parts.settings
    if not candidates:
        return None, {}
    if parts.reranker is None:
        return (candidates[0] if candidates[0].score >= s.min_relevance else None), {}
    if candidates[0].score >= s.confident_relevance:
        return candidates[0], {}
    scored = {source.paper_id: (source, score) for source, score in passages.reranked(parts.reranker, question, candidates[:RERANKED])}
    best, score = max(scored.values(), key=lambda pair: pair[1])
    # A yes/no question gets past a lower bar: past it, the judge says only what it is sure of and
    # otherwise the paper is quoted, so a weak match costs a quote, not a made-up answer.
    # (The setting, not `parts.judge`: building the judge would load the model for a question
    # that may yet be refused.)
    bar = s.min_rerank_yes_no if s.judge != "off" and asks_yes_no(question) else s.min_rerank
    return (best if score >= bar else None), scored


def _best_passages_first(parts: Parts, question: str, sources: list[Source], candidates: list[Source], scored: Scored, gate_later: bool) -> list[Source]:
    """A full-text paper's passages in the cross-encoder's order (a paper it has scored already is
    not scored again). With `gate_later`, a paper after the answering one stays only if one of its
    passages reaches `support_min_rerank`: one found by its words alone (a questionnaire quote
    beside a corpus paper's answer) cost the model ~200 tokens of reading and gave it something
    to misquote; on pdf-dev the median prompt fell ~965 -> ~711 tokens with the same facts in it."""
    if parts.reranker is None:
        return sources
    first = sources[0]

    def found(s: Source) -> bool:  # as retrieval returned it (the cross-encoder's pick is a new object)
        return any(s is c for c in candidates)

    fresh = [s for s in sources if found(s) and s.paper_id not in scored and (len(s.passages) > 1 or (gate_later and s is not first))]
    scored = scored | {s.paper_id: r for s, r in zip(fresh, passages.reranked(parts.reranker, question, fresh) if fresh else [])}
    bar = parts.settings.support_min_rerank
    kept = [s for s in sources if s is first or not gate_later or s.paper_id not in scored or scored[s.paper_id][1] >= bar]
    return [scored[s.paper_id][0] if found(s) and s.paper_id in scored else s for s in kept]


def _answer_yes_no(parts: Parts, run: _Run, mode: Mode, sources: list[Source]) -> Answer:
    """The direction first, decided by the judge on the best paper(s) in rank order, then the
    model's account of what the deciding paper found. When no paper decides it, the closest
    paper's own sentences are quoted instead of an answer: nothing is made up."""
    sources = passages.given(_with_full_text(parts.retriever, sources), parts.settings.context_tokens)
    for n, source in enumerate(sources[:JUDGED_PAPERS], 1):
        verdict = parts.judge.judge(run.question, source)
        if verdict != judging.NOT_SETTLED:
            break
    else:
        return _not_settled(parts, run, sources[0])
    lead = "Yes: " if verdict == judging.YES else "No: "
    if run.on_token:
        run.on_token(lead)
    sources = [sources[n - 1]]  # only the deciding paper is given to the model, and cited
    template = prompts.EXPLAIN_YES if verdict == judging.YES else prompts.EXPLAIN_NO
    user = template.format(question=run.question, sources=prompts.format_source(1, sources[0].title, sources[0].authors, sources[0].text))
    checker, _ = _checked_generation(parts, run, user, sources, mode.max_tokens, _without_lead(run.on_token))
    text, checked = _LEAD.sub("", checker.text, count=1), list(checker.sentences)
    if not checker.kept:
        # The model's account did not hold up: the deciding paper's own words instead.
        quote = citations.best_quote(run.question, sources[0].text)
        added = f'"{sources[0].title.strip()}" reports: "{quote}" [1]'
        checked.append(CheckedSentence(added, (1,), 1.0, True, quote, page=sources[0].page_of(quote)))
        text = added
        if run.on_token:
            run.on_token(added)
    answer = _answer_from(parts, run, lead + text, sources, checked, abstained=False)
    answer.verdict = verdict
    return answer


_LEAD = re.compile(r"^\s*(?:yes|no)\b[,.:;!]?\s*", re.IGNORECASE)


def _without_lead(on_token: OnToken | None) -> OnToken | None:
    """The model's account often opens with its own "Yes," after the code's "Yes: "; the
    sentence check releases whole sentences, so the first piece holds it."""
    if on_token is None:
        return None
    first = True

    def forward(piece: str) -> None:
        nonlocal first
        if first and piece.strip():
            piece, first = _LEAD.sub("", piece, count=1), False
        on_token(piece)

    return forward


def _not_settled(parts: Parts, run: _Run, best: Source) -> Answer:
    """No direction: the best paper's own sentences closest to the question, quoted and cited,
    for the reader to weigh. Nothing is said that the paper does not say."""
    quote = " … ".join(judging.focus_sentences(run.question, best.text, QUOTED_SENTENCES))
    text = f'{prompts.NOT_SETTLED} "{best.title.strip().rstrip(".")}": "{quote}" [1]'
    if run.on_token:
        run.on_token(text)
    answer = _answer_from(parts, run, text, [best], [CheckedSentence(text, (1,), 1.0, True, quote, page=best.page_of(quote))], abstained=False)
    answer.verdict = judging.NOT_SETTLED
    return answer


def summarize(parts: Parts, request: Request) -> Answer:
    """A cited synthesis. When more papers pass the cut-off than fit one prompt, each group of
    `k` is summarised first and the group summaries are combined (map-reduce)."""
    s, topic, on_token = parts.settings, request.question, request.on_token
    k = request.k or s.summary_k
    run = _Run.of(request)
    candidates = parts.retriever.search(topic, max(s.summary_max_papers, k), paper_ids=request.paper_ids)
    chosen = relevant(candidates, s.summary_min_relevance)
    if chosen:
        chosen = relevant(chosen, max(r.score for r in chosen) * s.summary_relative)
    run.relevant = len(chosen)
    run.timings.retrieve_s = run.lap()
    run.show_evidence(chosen)
    if len(chosen) <= k:
        return _respond(parts, run, Mode(prompts.SUMMARIZE, "topic", k, s.summary_min_relevance, s.summary_max_tokens), chosen)
    sources = passages.given(chosen, s.context_tokens * len(chosen) // k)
    checked, notes = [], []
    for first in range(0, len(sources), k):
        group = "\n\n".join(prompts.format_source(n, src.title, src.authors, src.text) for n, src in enumerate(sources[first : first + k], first + 1))
        user = prompts.SUMMARIZE_GROUP.format(topic=topic, sources=group)
        checker, _ = _checked_generation(parts, run, user, sources, s.summary_max_tokens, _spaced(on_token) if notes else on_token)
        checked += checker.sentences
        if checker.text:
            notes.append(checker.text)
    if not notes:
        return _answer_from(parts, run, "", sources, checked, abstained=True)
    user = prompts.COMBINE.format(topic=topic, notes="\n".join(notes))
    checker, _ = _checked_generation(parts, run, user, sources, s.combine_max_tokens, _spaced(on_token))
    text = " ".join(notes + ([checker.text] if checker.text else []))
    return _answer_from(parts, run, text, sources, checked + checker.sentences, abstained=False)


def _respond(parts: Parts, run: _Run, mode: Mode, sources: list[Source]) -> Answer:
    """One prompt over the chosen papers, or the abstention when none was chosen."""
    if not sources:
        run.timings.total_s = run.lap()
        return Answer(run.question, prompts.ABSTAIN_MESSAGE, True, [], [], parts.model_name(), run.timings)
    if mode.whole_papers:
        sources = _with_full_text(parts.retriever, sources)
        if parts.settings.focus_tokens:
            # The model reads ~70 tokens/s here: 250 tokens an abstract took the dev set's median
            # prompt from 547 to 420 tokens and its answers from 9.0 s to 7.6 s at the same fact
            # coverage; 200 lost a fact, 100 lost 20 (docs/evaluation.md). A PDF passage is
            # already the best chunk and stays whole.
            chars = parts.settings.focus_tokens * passages.CHARS_PER_TOKEN
            sources = [s if s.page is not None else dataclasses.replace(s, text=focused(s.text, run.about, chars)) for s in sources]
    # Every passage but the answering paper's best is cut to its sentences closest to the question,
    # at half an abstract's focus: on pdf-dev the asked facts in the prompt stayed 7 of 8 questions,
    # the median prompt went from 979 to 867 tokens and the median answer from 19.2 s to 13.9 s.
    focus = parts.settings.focus_tokens * passages.CHARS_PER_TOKEN // 2 if mode.whole_papers else 0
    sources = passages.given(sources, parts.settings.context_tokens, run.about, focus)
    body = "\n\n".join(prompts.format_source(n, s.title, s.authors, s.text) for n, s in enumerate(sources, 1))
    user = mode.template.format(**{mode.slot: run.question, "sources": body})
    checker, markers = _checked_generation(parts, run, user, sources, mode.max_tokens, run.on_token)
    text, checked = checker.text, list(checker.sentences)
    if mode.quote_echo and not markers.abstained:
        quotes = _quotes_for_echo(parts, run.question, text, sources)
        if quotes:
            added = evidence.quoted(quotes)
            checked += [CheckedSentence(f'"{q.sentence}" [{q.n}]', (q.n,), 1.0, True, q.sentence, page=sources[q.n - 1].page_of(q.sentence)) for q in quotes]
            text = f"{text} {added}"
            if run.on_token:
                run.on_token(" " + added)
    return _answer_from(parts, run, text, sources, checked, markers.abstained)


def _checked_generation(parts: Parts, run: _Run, user: str, sources: list[Source], max_tokens: int, on_token: OnToken | None):
    """Run the model with invalid markers stripped and every sentence checked as it streams;
    the call's tokens and times are added to the run's timings."""
    markers = citations.CitationFilter(len(sources))
    checker = citations.SentenceChecker(sources, parts.settings.min_support, run.question)

    def forward(token: str) -> None:
        shown = checker.feed(markers.feed(token))
        if shown and on_token:
            on_token(shown)

    gen = parts.generator.generate(prompts.messages(user), max_tokens, forward)
    tail = checker.feed(markers.flush()) + checker.flush(truncated=gen.truncated)
    if tail and on_token:
        on_token(tail)
    run.timings.add(gen, run.lap())
    return checker, markers


def _quotes_for_echo(parts: Parts, question: str, text: str, sources: list[Source]) -> list[evidence.Quote]:
    """Quotes from the paper the answer cites first, when the answer only restates the question."""
    cited = [n for n in cited_numbers(text) if 1 <= n <= len(sources)]
    if not cited or not evidence.adds_nothing(text, question, [s.title for s in sources], [s.text for s in sources]):
        return []
    n = cited[0]
    return evidence.answering_sentences(evidence.question_parts(question), [(n, sources[n - 1].text)], parts.embedder, parts.retriever.lexical.idf)


def _answer_from(parts: Parts, run: _Run, text: str, sources: list[Source], checked: list, abstained: bool) -> Answer:
    """The checked text becomes an Answer: an abstention, or citations that name given papers only."""
    abstained = abstained or not text or (not cited_numbers(text) and citations.is_abstention(text))
    run.timings.total_s = run.lap()
    answer = Answer(run.question, text, abstained, [], sources, parts.model_name(), run.timings, checked=checked, relevant_papers=run.relevant)
    if abstained:
        answer.answer = prompts.ABSTAIN_MESSAGE
        return answer
    answer.citations = [dataclasses.replace(c, page=sources[c.n - 1].page_of(c.quote)) for c in citations.citations_for(text, sources)]
    answer.used_papers = len(answer.citations)
    return answer


def _with_full_text(retriever: Retriever, sources: list[Source]) -> list[Source]:
    """Whole abstracts; a full-text paper (it has pages) keeps its passages for the question
    instead (`passages.given` picks among them), since the budget cut would keep only its first
    pages, which are rarely the ones that answer."""
    texts = retriever.paper_texts([s.paper_id for s in sources if s.page is None])
    return [s if s.page is not None else dataclasses.replace(s, text=texts.get(s.paper_id, s.text)) for s in sources]


_LIST_QUESTION = re.compile(
    r"\b(?:which|what|list|name)\s+(?:\w+\s+)?(?:papers|studies|works|articles|methods|approaches)\b|\bpapers\s+(?:that|which)\b",
    re.IGNORECASE,
)


_YES_NO = re.compile(
    r"^\s*(?:is it (?:true|the case|correct|so) that|(?:is|are|was|were|does|do|did|can|could|has|have|had|will|would|should|may|might)\b)",
    re.IGNORECASE,
)
_ASKS_FOR_PAPERS = re.compile(r"^\s*(?:are there|is there|(?:do|does|did|are|is|has|have)\s+(?:any|some|other|more|the)\s+(?:\w+\s+)?(?:papers?|studies|works|articles))\b", re.I)


def asks_yes_no(question: str) -> bool:
    """'Is it true that ...?', 'Does X cause Y?': a question the papers answer with a direction.
    'Are there papers on X?' and 'Which papers ...' ask for papers instead."""
    return bool(_YES_NO.match(question)) and not _ASKS_FOR_PAPERS.match(question) and not asks_for_list(question)


def asks_for_list(question: str) -> bool:
    """'Which papers ...' asks for every matching paper; the answer is shaped differently."""
    return bool(_LIST_QUESTION.search(question))


def _spaced(on_token: OnToken | None) -> OnToken | None:
    """Stream a later part of an answer: a space before its first piece joins it to the earlier part."""
    if on_token is None:
        return None
    first = True

    def forward(piece: str) -> None:
        nonlocal first
        on_token((" " if first else "") + piece)
        first = False

    return forward
