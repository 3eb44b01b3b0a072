"""Measure retrieval and answers on a question file (JSON lines: question, gold_titles,
answer_facts, kind). Retrieval is compared across BM25 only, dense only and the project's
hybrid search in the same run, so a change can be judged against its own baselines."""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rag.errors import InputError
from rag.pipeline import Rag
from rag.stats import percentile
from rag.text import normalize_title
from rag.types import Answer

MODES = ("lexical", "dense", "hybrid")


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    gold_titles: tuple[str, ...]
    answer_facts: tuple[str, ...]
    kind: str

    @property
    def answerable(self) -> bool:
        return bool(self.gold_titles)


@dataclass
class RetrievalScores:
    hit_at_1: float
    recall_at_5: float
    mrr: float


@dataclass
class AnswerScores:
    gold_citation_rate: float
    fact_coverage: float
    abstention_unanswerable: float
    false_abstention: float
    citations_not_given: int
    unsupported_sentences: int
    sentences: int
    latency_p50_s: float
    latency_p95_s: float
    # Of the answers that state an asked fact from a PDF passage, the share whose cited page holds
    # it; None when no answer cited a page.
    cited_page_right: float | None = None


@dataclass
class EvalReport:
    questions: int
    answerable: int
    retrieval: dict[str, RetrievalScores]
    answers: AnswerScores | None
    per_question: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def load_questions(path: Path) -> list[EvalQuestion]:
    """JSON lines; a line that is not a question object is an error naming the file and line."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file (JSON lines: question, gold_titles, answer_facts, kind)") from None
    questions = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not a question line (not JSON: {exc.msg})") from None
        problem = _question_problem(row)
        if problem:
            raise InputError(f"{path}:{number}: not a question line ({problem})")
        questions.append(
            EvalQuestion(
                str(row.get("id", number)),
                row["question"],
                tuple(row.get("gold_titles", [])),
                tuple(row.get("answer_facts", [])),
                row.get("kind", ""),
            )
        )
    if not questions:
        raise InputError(f"{path}: no questions")
    return questions


def _question_problem(row) -> str:
    """What is wrong with one parsed line, or '' when it is a usable question."""
    if not isinstance(row, dict):
        return "needs a JSON object with a 'question'"
    if not isinstance(row.get("question"), str) or not row["question"].strip():
        return "needs a 'question' that is a non-empty string"
    for key in ("gold_titles", "answer_facts"):
        value = row.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"'{key}' must be a list of strings"
    if not isinstance(row.get("kind", ""), str):
        return "'kind' must be a string"
    return ""


def synthetic_questions(rag: Rag, n: int, seed: int = 0) -> list[EvalQuestion]:
    """Questions whose right paper is known, made from the indexed papers themselves: a middle
    sentence of the paper with the title's words taken out, so a user can check retrieval on a
    collection nobody wrote questions for."""
    import random

    from rag.text import split_sentences

    papers = rag.papers()
    if not papers:
        raise InputError("nothing is indexed; run `rag ingest` first")
    rng = random.Random(seed)
    chosen = rng.sample(papers, min(n, len(papers)))
    texts = rag.store.paper_texts([p.paper_id for p in chosen])
    questions = []
    for paper in chosen:
        sentences = [s for s in split_sentences(texts.get(paper.paper_id, "")) if len(s.split()) >= 8]
        if not sentences:
            continue
        sentence = sentences[len(sentences) // 2]
        title_words = set(normalize_title(paper.title).split())
        kept = [w for w in sentence.split() if normalize_title(w) not in title_words]
        questions.append(EvalQuestion(f"syn-{paper.paper_id}", "Which paper says: " + " ".join(kept), (paper.title,), (), "synthetic"))
    if not questions:
        raise InputError("the indexed papers have no abstract text to make questions from")
    return questions


def _retrieval_scores(ranked: list[list[str]], gold: list[set[str]]) -> RetrievalScores:
    hits, recalls, rr = [], [], []
    for titles, g in zip(ranked, gold):
        hits.append(1.0 if titles and titles[0] in g else 0.0)
        recalls.append(len(g & set(titles[:5])) / len(g))
        rr.append(next((1.0 / (i + 1) for i, t in enumerate(titles) if t in g), 0.0))
    n = max(len(gold), 1)
    return RetrievalScores(sum(hits) / n, sum(recalls) / n, sum(rr) / n)


def evaluate(rag: Rag, questions: list[EvalQuestion], use_llm: bool = True, progress: Callable[[int, int], None] | None = None) -> EvalReport:
    answerable = [q for q in questions if q.answerable]
    gold = [{normalize_title(t) for t in q.gold_titles} for q in answerable]
    total = len(answerable) * len(MODES) + (len(questions) if use_llm else 0)
    done = 0
    retrieval = {}
    for mode in MODES:
        ranked = []
        for q in answerable:
            ranked.append([normalize_title(s.title) for s in rag.search(q.question, k=10, mode=mode)])
            done += 1
            if progress:
                progress(done, total)
        retrieval[mode] = _retrieval_scores(ranked, gold)
    if not use_llm:
        return EvalReport(len(questions), len(answerable), retrieval, None)

    rows, latencies = [], []
    for q in questions:
        run = rag.summarize if q.kind == "summary" else rag.ask
        answer = run(q.question)
        latencies.append(answer.timings.total_s)
        cited = {normalize_title(c.title) for c in answer.citations}
        given = {normalize_title(s.title) for s in answer.sources}
        golds = {normalize_title(t) for t in q.gold_titles}
        text = answer.answer.lower()
        rows.append(
            {
                "id": q.id,
                "kind": q.kind,
                "abstained": answer.abstained or answer.verdict == "not settled",  # quoted, not answered
                "cites_gold": bool(cited & golds),
                "facts": sum(states(text, f) for f in q.answer_facts) / len(q.answer_facts) if q.answer_facts else None,
                "not_given": len(cited - given),
                "unsupported": sum(not s.supported for s in answer.checked),
                "sentences": len(answer.checked),
                "seconds": round(answer.timings.total_s, 2),
                "prompt_tokens": answer.timings.prompt_tokens,
                "page_right": page_right(answer, q.answer_facts),
                "answer": answer.answer,
            }
        )
        done += 1
        if progress:
            progress(done, total)
    ans = [r for r, q in zip(rows, questions) if q.answerable]
    unans = [r for r, q in zip(rows, questions) if not q.answerable]
    facts = [r["facts"] for r in ans if r["facts"] is not None]
    pages = [r["page_right"] for r in ans if r["page_right"] is not None]
    scores = AnswerScores(
        gold_citation_rate=sum(r["cites_gold"] for r in ans) / max(len(ans), 1),
        fact_coverage=statistics.mean(facts) if facts else 0.0,
        abstention_unanswerable=sum(r["abstained"] for r in unans) / len(unans) if unans else 1.0,
        false_abstention=sum(r["abstained"] for r in ans) / max(len(ans), 1),
        citations_not_given=sum(r["not_given"] for r in rows),
        unsupported_sentences=sum(r["unsupported"] for r in rows),
        sentences=sum(r["sentences"] for r in rows),
        latency_p50_s=percentile(latencies, 50) if latencies else 0.0,
        latency_p95_s=percentile(latencies, 95) if latencies else 0.0,
        cited_page_right=sum(pages) / len(pages) if pages else None,
    )
    return EvalReport(len(questions), len(answerable), retrieval, scores, rows)


_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


def states(text: str, fact: str) -> bool:
    """Whether an answer states a fact: its words, or for a small count its word ("4" as "four")."""
    text, fact = text.lower(), fact.lower()
    if fact in text:
        return True
    return fact.isdigit() and int(fact) < len(_NUMBER_WORDS) and re.search(rf"\b{_NUMBER_WORDS[int(fact)]}\b", text) is not None


def page_right(answer: Answer, facts: tuple[str, ...]) -> bool | None:
    """Whether every shown sentence that states an asked fact cites a page whose passage holds that
    fact; None when no such sentence cites a page (abstracts have none)."""
    verdicts = []
    for s in answer.checked:
        stated = [f.lower() for f in facts if states(s.text, f)]
        if not s.supported or s.page is None or not stated or not s.citations:
            continue
        source = answer.sources[s.citations[0] - 1]
        texts = [p.text for p in source.passages if p.page == s.page] or ([source.text] if source.page == s.page else [])
        verdicts.append(any(states(t, f) for t in texts for f in stated))
    return all(verdicts) if verdicts else None


def render(report: EvalReport) -> str:
    """A Markdown table, the same text for the terminal and for docs/."""
    lines = [
        f"{report.questions} questions, {report.answerable} answerable",
        "",
        "| retrieval (paper level) | hit@1 | recall@5 | MRR |",
        "|---|---|---|---|",
    ]
    names = {"lexical": "BM25 only", "dense": "dense only", "hybrid": "hybrid (project)"}
    for mode, s in report.retrieval.items():
        lines.append(f"| {names[mode]} | {s.hit_at_1:.3f} | {s.recall_at_5:.3f} | {s.mrr:.3f} |")
    if report.answers:
        a = report.answers
        lines += [
            "",
            "| answers | value |",
            "|---|---|",
            f"| answers citing a gold paper | {a.gold_citation_rate:.3f} |",
            f"| fact coverage | {a.fact_coverage:.3f} |",
            f"| abstention on unanswerable | {a.abstention_unanswerable:.3f} |",
            f"| false abstention on answerable | {a.false_abstention:.3f} |",
            f"| citations to papers not given to the model | {a.citations_not_given} |",
            f"| unsupported sentences withheld | {a.unsupported_sentences} of {a.sentences} |",
            f"| latency p50 / p95 | {a.latency_p50_s:.1f} s / {a.latency_p95_s:.1f} s |",
        ]
        if a.cited_page_right is not None:
            lines.append(f"| fact answers whose cited page holds the fact | {a.cited_page_right:.3f} |")
    return "\n".join(lines)
