"""Measure answers on scientific claims with known verdicts (SciFact's shape: one JSON line per
claim with `claim`, `label` SUPPORT / CONTRADICT / NOT_ENOUGH_INFO and `relevant_doc_ids`).
Each claim is asked as "Is it true that ...?"; what counts is the direction the answer gives,
above all that it never endorses a claim its own evidence contradicts."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rag.errors import InputError
from rag.stats import percentile
from rag.text import normalize_title
from rag.types import Answer

LABELS = ("SUPPORT", "CONTRADICT", "NOT_ENOUGH_INFO")
EXPECTED = {"SUPPORT": "yes", "CONTRADICT": "no", "NOT_ENOUGH_INFO": "not settled"}


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    label: str
    evidence_titles: tuple[str, ...]

    @property
    def question(self) -> str:
        text = self.claim.strip().rstrip(".")
        return f"Is it true that {text[:1].lower() + text[1:] if text[1:2].islower() else text}?"


@dataclass
class ClaimScores:
    claims: dict[str, int]
    contradicted_endorsed: int
    stance_accuracy: float  # SUPPORT -> yes, CONTRADICT -> no
    evidence_cited: float  # SUPPORT and CONTRADICT claims whose evidence paper is cited
    not_settled_rate: float  # NOT_ENOUGH_INFO claims answered as not settled (or abstained)
    latency_p50_s: float
    latency_p95_s: float


@dataclass
class ClaimsReport:
    scores: ClaimScores
    per_claim: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def is_claims_file(path: Path) -> bool:
    """A claims file's first line has a `claim`; a question file's has a `question`."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            first = next((line for line in fh if line.strip()), "")
        return isinstance(row := json.loads(first), dict) and "claim" in row
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def load_claims(path: Path, titles_by_id: dict[str, str], per_label: int = 0) -> list[Claim]:
    """`per_label` > 0 keeps that many claims of each label, spread evenly over the file (the
    file is sorted by claim text, so the first N would all start alike)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the claims ({exc.__class__.__name__})") from None
    claims = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{number}: not a claim line (not JSON)") from None
        if not isinstance(row, dict) or not str(row.get("claim", "")).strip() or row.get("label") not in LABELS:
            raise InputError(f"{path}:{number}: a claim line needs `claim` and `label` ({' / '.join(LABELS)})")
        ids = [str(i) for i in row.get("relevant_doc_ids", [])]
        missing = [i for i in ids if i not in titles_by_id]
        if missing and not row.get("evidence_titles"):
            raise InputError(f"{path}:{number}: paper id {missing[0]} is not in the corpus given with --corpus")
        titles = tuple(row.get("evidence_titles") or [titles_by_id[i] for i in ids])
        claims.append(Claim(str(row.get("id", number)), row["claim"], row["label"], titles))
    if not claims:
        raise InputError(f"{path}: no claims")
    if per_label:
        claims = [c for label in LABELS for c in _spread([c for c in claims if c.label == label], per_label)]
    return claims


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    return [items[i * len(items) // n] for i in range(n)]


def stance(answer: Answer) -> str:
    """The direction an answer gives: its verdict when the tool gave one, else read off its
    first word (how answers were judged before verdicts existed)."""
    if answer.verdict:
        return answer.verdict
    if answer.abstained:
        return "not settled"
    first = answer.answer.lstrip().split(maxsplit=1)[0].strip(",.:;").lower() if answer.answer.strip() else ""
    return {"yes": "yes", "no": "no"}.get(first, "unclear")


def evaluate_claims(ask: Callable[[str], Answer], claims: list[Claim], progress: Callable[[int, int], None] | None = None) -> ClaimsReport:
    rows = []
    for done, claim in enumerate(claims, 1):
        answer = ask(claim.question)
        cited = {normalize_title(c.title) for c in answer.citations}
        rows.append(
            {
                "id": claim.id, "label": claim.label, "question": claim.question, "stance": stance(answer),
                "cites_evidence": bool(cited & {normalize_title(t) for t in claim.evidence_titles}),
                "seconds": round(answer.timings.total_s, 2), "answer": answer.answer,
            }
        )
        if progress:
            progress(done, len(claims))
    decided = [r for r in rows if r["label"] != "NOT_ENOUGH_INFO"]
    open_ = [r for r in rows if r["label"] == "NOT_ENOUGH_INFO"]
    seconds = [r["seconds"] for r in rows]
    scores = ClaimScores(
        claims={label: sum(r["label"] == label for r in rows) for label in LABELS},
        contradicted_endorsed=sum(r["label"] == "CONTRADICT" and r["stance"] == "yes" for r in rows),
        stance_accuracy=_share(r["stance"] == EXPECTED[r["label"]] for r in decided),
        evidence_cited=_share(r["cites_evidence"] for r in decided),
        not_settled_rate=_share(r["stance"] == "not settled" for r in open_),
        latency_p50_s=percentile(seconds, 50) if seconds else 0.0,
        latency_p95_s=percentile(seconds, 95) if seconds else 0.0,
    )
    return ClaimsReport(scores, rows)


def _share(flags) -> float:
    flags = list(flags)
    return statistics.mean(flags) if flags else 0.0


def render(report: ClaimsReport) -> str:
    s = report.scores
    counts = ", ".join(f"{n} {label}" for label, n in s.claims.items())
    return "\n".join(
        [
            f"{sum(s.claims.values())} claims ({counts})",
            "",
            "| claims | value |",
            "|---|---|",
            f"| contradicted claims endorsed | {s.contradicted_endorsed} of {s.claims['CONTRADICT']} |",
            f"| stance right (SUPPORT: yes, CONTRADICT: no) | {s.stance_accuracy:.3f} |",
            f"| evidence paper cited (SUPPORT, CONTRADICT) | {s.evidence_cited:.3f} |",
            f"| not enough info answered as not settled | {s.not_settled_rate:.3f} |",
            f"| latency p50 / p95 | {s.latency_p50_s:.1f} s / {s.latency_p95_s:.1f} s |",
        ]
    )
