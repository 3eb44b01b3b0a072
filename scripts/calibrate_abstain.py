#!/usr/bin/env python
"""Calibrate the decision whether a question is answered at all: for every question, the best
paper's hybrid relevance and the cross-encoder's best score over the top three passages, then
every (min_rerank, confident_relevance) pair on a grid, scored on false abstention (answerable
questions refused) and unanswerable questions answered. The questions: the dev set, near-domain
questions written for this (scripts/data/calibration_questions.jsonl: 24 the seeds do not answer,
5 they do), and synthetic questions made from the papers; summaries are left out (their own gate).
Prints the trade-off and writes it as JSON.

    python scripts/calibrate_abstain.py [--dev ../shared/eval/dev.jsonl] [--synthetic 30] [--out docs/abstain_calibration.json]
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import answer, evaluation  # noqa: E402
from rag.pipeline import Rag  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--written", type=Path, default=ROOT / "scripts" / "data" / "calibration_questions.jsonl")
    ap.add_argument("--synthetic", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "abstain_calibration.json")
    args = ap.parse_args()
    rag = Rag(Settings.load(rerank="model"))
    questions = [(q, "written") for q in evaluation.load_questions(args.written)]
    if args.dev.is_file():
        questions += [(q, "dev") for q in evaluation.load_questions(args.dev) if q.kind != "summary"]
    questions += [(q, "synthetic") for q in evaluation.synthetic_questions(rag, args.synthetic, seed=3)]
    rows = []
    for q, origin in questions:
        found = rag.search(q.question, k=answer.RERANKED)
        scores = rag.reranker.score(q.question, [answer.passage(s) for s in found]) if found else []
        rows.append({"question": q.question, "origin": origin, "answerable": q.answerable,
                     "relevance": round(found[0].score, 4) if found else 0.0, "rerank": round(max(scores), 3) if scores else -99.0})
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def point(passes) -> dict:
        return {"false_abstention": sum(not passes(r) for r in answerable) / len(answerable),
                "unanswerable_answered": sum(passes(r) for r in unanswerable) / len(unanswerable)}

    today = point(lambda r: r["relevance"] >= Settings().min_relevance)
    grid = []
    for rr, conf in itertools.product([x / 4 for x in range(-12, 13)], [x / 100 for x in range(40, 81, 5)]):
        grid.append({"min_rerank": rr, "confident_relevance": conf, **point(lambda r: r["rerank"] >= rr or r["relevance"] >= conf)})
    frontier = []
    for g in sorted(grid, key=lambda g: (g["false_abstention"], g["unanswerable_answered"])):
        if not frontier or g["unanswerable_answered"] < frontier[-1]["unanswerable_answered"]:
            frontier.append(g)
    print(f"{len(answerable)} answerable, {len(unanswerable)} unanswerable questions")
    print(f"relevance cut-off {Settings().min_relevance} alone: false abstention {today['false_abstention']:.3f}, "
          f"unanswerable answered {today['unanswerable_answered']:.3f}")
    print("| min_rerank | confident_relevance | false abstention | unanswerable answered |")
    print("|---|---|---|---|")
    for g in frontier:
        print(f"| {g['min_rerank']} | {g['confident_relevance']} | {g['false_abstention']:.3f} | {g['unanswerable_answered']:.3f} |")
    chosen = Settings()
    mine = point(lambda r: r["rerank"] >= chosen.min_rerank or r["relevance"] >= chosen.confident_relevance)
    print(f"chosen (min_rerank {chosen.min_rerank}, confident_relevance {chosen.confident_relevance}): "
          f"false abstention {mine['false_abstention']:.3f}, unanswerable answered {mine['unanswerable_answered']:.3f}")
    args.out.write_text(json.dumps({"cut_off_alone": today, "chosen": mine, "frontier": frontier, "questions": rows}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
