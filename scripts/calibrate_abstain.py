#!/usr/bin/env python
"""Calibrate the decision whether a question is answered at all: for every question, the best
paper's hybrid relevance and the cross-encoder's best score over the top three passages, then
every (min_rerank, confident_relevance) pair on a grid, scored on false abstention (answerable
questions refused) and unanswerable questions answered. The questions: the dev set, near-domain
questions written for this (scripts/data/calibration_questions.jsonl: 24 the seeds do not answer,
5 they do), synthetic questions made from the papers, and with --scifact-data the SciFact train
claims the judge was calibrated on (asked as "Is it true that ...?" against the SciFact store);
summaries are left out (their own gate). Prints the trade-off and writes it as JSON.

    python scripts/calibrate_abstain.py [--dev ../shared/eval/dev.jsonl] [--synthetic 30] [--out docs/abstain_calibration.json]
    python scripts/calibrate_abstain.py --scifact-data /tmp/scifact     # after: RAG_DATA_DIR=/tmp/scifact rag ingest ../shared/corpora/scifact/corpus.jsonl.gz
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import calibrate_judge  # noqa: E402
from rag import answer, claims, evaluation, passages  # noqa: E402
from rag.pipeline import Rag  # noqa: E402
from rag.settings import Settings  # noqa: E402


def measure(rag: Rag, question: str, origin: str, answerable: bool) -> dict:
    """The two numbers the decision reads: the best paper's relevance and the cross-encoder's best score."""
    found = rag.search(question, k=answer.RERANKED)
    scores = rag.reranker.score(question, [passages.passage(s) for s in found]) if found else []
    return {"question": question, "origin": origin, "answerable": answerable, "yes_no": answer.asks_yes_no(question),
            "relevance": round(found[0].score, 4) if found else 0.0, "rerank": round(max(scores), 3) if scores else -99.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--written", type=Path, default=ROOT / "scripts" / "data" / "calibration_questions.jsonl")
    ap.add_argument("--synthetic", type=int, default=30)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "abstain_calibration.json")
    ap.add_argument("--scifact-data", type=Path, help="a data dir with SciFact's corpus ingested: its train claims join as answerable questions")
    ap.add_argument("--scifact-claims", type=int, default=40, help="train claims per label, with --scifact-data")
    args = ap.parse_args()
    rag = Rag(Settings.load(rerank="model"))
    questions = [(q, "written") for q in evaluation.load_questions(args.written)]
    if args.dev.is_file():
        questions += [(q, "dev") for q in evaluation.load_questions(args.dev) if q.kind != "summary"]
    questions += [(q, "synthetic") for q in evaluation.synthetic_questions(rag, args.synthetic, seed=3)]
    rows = [measure(rag, q.question, origin, q.answerable) for q, origin in questions]
    if args.scifact_data:
        # Real claims nobody here wrote, about another field: every one has its paper in the corpus.
        scifact = Rag(Settings.load(rerank="model", data_dir=args.scifact_data))
        for qid, text, _, label in calibrate_judge.train_claims(calibrate_judge.SCIFACT, args.scifact_claims, seed=0):
            rows.append(measure(scifact, claims.Claim(qid, text, label, ()).question, "scifact-train", True))
    chosen = Settings()
    report = {}
    for kind, gate in (("other", chosen.min_rerank), ("yes_no", chosen.min_rerank_yes_no)):
        print(f"\n## {kind.replace('_', '/')} questions")
        report[kind] = curve([r for r in rows if r["yes_no"] == (kind == "yes_no")], gate, chosen.confident_relevance)
    args.out.write_text(json.dumps({**report, "questions": rows}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


def curve(rows: list[dict], min_rerank: float, confident_relevance: float) -> dict:
    """The trade-off over a grid of (min_rerank, confident_relevance), its frontier printed."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def point(passes) -> dict:
        return {"false_abstention": sum(not passes(r) for r in answerable) / max(len(answerable), 1),
                "unanswerable_answered": sum(passes(r) for r in unanswerable) / max(len(unanswerable), 1)}

    today = point(lambda r: r["relevance"] >= Settings().min_relevance)
    grid = []
    for rr, conf in itertools.product([x / 4 for x in range(-16, 13)], [x / 100 for x in range(40, 81, 5)]):
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
    passes = lambda r: r["rerank"] >= min_rerank or r["relevance"] >= confident_relevance  # noqa: E731
    mine = point(passes)
    print(f"chosen (min_rerank {min_rerank}, confident_relevance {confident_relevance}): "
          f"false abstention {mine['false_abstention']:.3f}, unanswerable answered {mine['unanswerable_answered']:.3f}")
    mine["by_origin"] = {}
    for origin in sorted({r["origin"] for r in answerable}):
        mine_rows = [r for r in answerable if r["origin"] == origin]
        refused = sum(not passes(r) for r in mine_rows)
        mine["by_origin"][origin] = {"answerable": len(mine_rows), "false_abstention": refused / len(mine_rows)}
        print(f"  {origin}: {refused} of {len(mine_rows)} answerable refused")
    return {"cut_off_alone": today, "chosen": mine, "frontier": frontier}


if __name__ == "__main__":
    main()
