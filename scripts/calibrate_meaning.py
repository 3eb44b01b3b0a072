#!/usr/bin/env python
"""Measure the meaning check of answer sentences (`rag.meaning.compare`) on SciFact's claims with
sentence-level evidence: each claim against the abstract its annotators marked as supporting or
contradicting it, compared the way an answer sentence is compared with the paper it cites (the
abstract's two sentences closest to it). A contradicting pair should come out CONTRADICTED; a
supporting one should not (that sentence would be withheld from a right answer). Train claims
tune, test claims report. Needs no model; runs in seconds.

    python scripts/calibrate_meaning.py [--out docs/meaning_calibration.json]
"""

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import meaning  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "corpora" / "scifact"


def pairs(folder: Path, split: str) -> list[tuple[str, str, str]]:
    """(claim, abstract, SUPPORT or CONTRADICT) for every evidence abstract of the split's claims."""
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        corpus = {row["_id"]: row["text"] for row in map(json.loads, fh)}
    ids = {line.split("\t")[0] for line in (folder / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]}
    out = []
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["_id"] in ids:
            for doc, evidence in (row.get("metadata") or {}).items():
                out.append((row["text"], corpus[doc], evidence[0]["label"]))
    return out


def measure(rows: list[tuple[str, str, str]]) -> dict:
    outcome = {label: [meaning.compare(claim, text) for claim, text, lab in rows if lab == label] for label in ("SUPPORT", "CONTRADICT")}
    return {
        "support_pairs": len(outcome["SUPPORT"]),
        "contradict_pairs": len(outcome["CONTRADICT"]),
        "contradictions_found": outcome["CONTRADICT"].count(meaning.CONTRADICTED) / max(len(outcome["CONTRADICT"]), 1),
        "supported_flagged": outcome["SUPPORT"].count(meaning.CONTRADICTED) / max(len(outcome["SUPPORT"]), 1),
        "supported_not_stated": outcome["SUPPORT"].count(meaning.NOT_STATED) / max(len(outcome["SUPPORT"]), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scifact", type=Path, default=SCIFACT)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "meaning_calibration.json")
    args = ap.parse_args()
    if not (args.scifact / "queries.jsonl").exists():
        sys.exit(f"error: no SciFact claims under {args.scifact}")
    result = {split: measure(pairs(args.scifact, split)) for split in ("train", "test")}
    print("| claims | supported pairs | contradicting pairs | contradictions found | supported pairs flagged |")
    print("|---|---:|---:|---:|---:|")
    for split, r in result.items():
        print(f"| {split} | {r['support_pairs']} | {r['contradict_pairs']} | {r['contradictions_found']:.3f} | {r['supported_flagged']:.3f} |")
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
