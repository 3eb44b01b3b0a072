#!/usr/bin/env python
"""Calibrate the yes/no judge on SciFact's TRAIN claims (the test claims are kept for the report):
for each claim, the local model's log-probabilities of YES / NO / UNCLEAR when it reads the claim's
evidence abstract the way `rag ask` shows it to the judge; then every calibration on a grid, scored
on how often a contradicted claim would be endorsed, stance accuracy and 'not settled' on claims
the abstract does not decide. Prints the trade-off and writes it as JSON.

    python scripts/calibrate_judge.py [--per-label 40] [--scores saved.json] [--out docs/judge_calibration.json]
    python scripts/calibrate_judge.py --split test --out docs/judge_test.json   # the report
"""

import argparse
import gzip
import itertools
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import claims as claims_lib  # noqa: E402
from rag.judge import CALIBRATION, Calibration, ModelJudge, decide, opposes  # noqa: E402
from rag.types import Source  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "corpora" / "scifact"
LABELS = claims_lib.LABELS


def train_claims(folder: Path, per_label: int, seed: int, split: str = "train") -> list[tuple[str, str, dict, str]]:
    """(claim id, claim text, evidence paper, label): SUPPORT/CONTRADICT from the claim's evidence,
    NOT_ENOUGH_INFO for a claim with a cited paper but no evidence."""
    corpus = {}
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            corpus[row["_id"]] = row
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        queries[row["_id"]] = row
    cited = defaultdict(list)
    for line in (folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc, _ = line.split("\t")
        cited[qid].append(doc)
    items = []
    for qid, docs in cited.items():
        meta = queries[qid].get("metadata") or {}
        doc = next(iter(meta)) if meta else docs[0]
        label = meta[doc][0]["label"] if meta else "NOT_ENOUGH_INFO"
        items.append((qid, queries[qid]["text"], corpus[doc], label))
    rng = random.Random(seed)
    return [i for label in LABELS for i in rng.sample([i for i in items if i[3] == label], per_label)]


def with_opposed(rows: list[dict], items) -> None:
    """Scores saved before the words were compared get the comparison (it needs no model)."""
    papers = {qid: (text, paper) for qid, text, paper, _ in items}
    for r in rows:
        text, paper = papers[r["id"]]
        r["opposed"] = opposes(claims_lib.Claim(r["id"], text, r["label"], ()).question, paper["text"])


def score_claims(items, models_dir: Path) -> list[dict]:
    from rag.generation import build_generator
    from rag.settings import Settings

    generator = build_generator(Settings.load(models_dir=models_dir))
    rows = []
    for n, (qid, text, paper, label) in enumerate(items, 1):
        question = claims_lib.Claim(qid, text, label, ()).question
        source = Source(paper["_id"], paper["title"], (), paper["text"], 1.0, 1.0, 1.0)
        scores = generator.choose(ModelJudge.messages(question, source), ["YES", "NO", "UNCLEAR"])
        rows.append({"id": qid, "label": label, "scores": scores, "opposed": opposes(question, paper["text"])})
        print(f"{n}/{len(items)} {label:16} {[round(s, 2) for s in scores]}", file=sys.stderr, flush=True)
    return rows


def measure(rows: list[dict], cal: Calibration) -> dict:
    """A wrong direction is 'yes' to a contradicted claim or 'no' to a supported one: the answer
    says the opposite of its paper."""
    verdicts = [(r["label"], decide(r["scores"], cal, r["opposed"])) for r in rows]
    count = {label: sum(label == lab for lab, _ in verdicts) or 1 for label in LABELS}
    decided = count["SUPPORT"] + count["CONTRADICT"]
    return {
        "yes": cal.yes, "no": cal.no, "unclear": cal.unclear,
        "contradicted_endorsed": sum(lab == "CONTRADICT" and v == "yes" for lab, v in verdicts) / count["CONTRADICT"],
        "supported_denied": sum(lab == "SUPPORT" and v == "no" for lab, v in verdicts) / count["SUPPORT"],
        "stance_accuracy": sum(lab != "NOT_ENOUGH_INFO" and claims_lib.EXPECTED[lab] == v for lab, v in verdicts) / decided,
        "not_settled_nei": sum(lab == "NOT_ENOUGH_INFO" and v == "not settled" for lab, v in verdicts) / count["NOT_ENOUGH_INFO"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-label", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scifact", type=Path, default=SCIFACT)
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--split", choices=["train", "test"], default="train", help="test: the report on claims the calibration never saw")
    ap.add_argument("--scores", type=Path, help="reuse scores saved by an earlier run instead of running the model")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "judge_calibration.json")
    args = ap.parse_args()
    if args.scores:
        rows = json.loads(args.scores.read_text())["scores"]
        with_opposed(rows, train_claims(args.scifact, args.per_label, args.seed, args.split))
    else:
        rows = score_claims(train_claims(args.scifact, args.per_label, args.seed, args.split), args.models_dir)
    grid = [x / 10 for x in range(-10, 21)]
    results = [measure(rows, Calibration(y, n, u)) for y, n, u in itertools.product(grid, grid, [x / 2 for x in range(-4, 5)])]
    # The curve: for each ceiling on wrong directions, the calibration with the most right ones
    # (stance on SUPPORT/CONTRADICT plus 'not settled' on NOT_ENOUGH_INFO).
    curve = []
    for ceiling in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5):
        ok = [r for r in results if max(r["contradicted_endorsed"], r["supported_denied"]) <= ceiling]
        if ok:
            curve.append({"max_wrong": ceiling, **max(ok, key=lambda r: (r["stance_accuracy"] + r["not_settled_nei"], r["stance_accuracy"]))})
    print("| wrong directions at most | yes | no | unclear | contradicted endorsed | supported denied | stance right | NEI not settled |")
    print("|---|---|---|---|---|---|---|---|")
    shipped = [{"max_wrong": "shipped", **measure(rows, CALIBRATION)}, {"max_wrong": "shipped, no YES veto", **measure([{**r, "opposed": False} for r in rows], CALIBRATION)}]
    for c in curve + shipped:
        limit = c["max_wrong"] if isinstance(c["max_wrong"], str) else f"{c['max_wrong']:.2f}"
        print(f"| {limit} | {c['yes']} | {c['no']} | {c['unclear']} | {c['contradicted_endorsed']:.3f} | {c['supported_denied']:.3f} | "
              f"{c['stance_accuracy']:.3f} | {c['not_settled_nei']:.3f} |")
    args.out.write_text(json.dumps({"claims": len(rows), "curve": curve, "scores": rows}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
