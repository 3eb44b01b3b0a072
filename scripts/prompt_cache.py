#!/usr/bin/env python
"""What the saved prompt start (rag/prompt_cache.py) saves a user: cold `rag ask` processes on the
same questions, back to back, once with the models folder's prompt cache emptied first (the
process reads the whole prompt and writes the state) and once with it in place (the process
restores the shared start). Reports seconds to the answer's first line (`--no-evidence`) and to
exit, their ratios, and whether the answers are identical (they must be: greedy decoding).

    RAG_DATA_DIR=... python scripts/prompt_cache.py [--questions ../shared/eval/dev.jsonl] [-n 8] [--out docs/prompt_cache.json]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from first_line import timed_ask  # noqa: E402  (scripts/ is on the path when this runs)
from rag.generation import PROMPT_CACHE_DIR  # noqa: E402
from rag.settings import Settings  # noqa: E402


def ask(question: str) -> tuple[float, float, str]:
    """(seconds to the answer's first printed line, seconds to exit, the whole output)."""
    return timed_ask([question, "--no-evidence"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("-n", type=int, default=8, help="questions (answerable ones, from the top of the file)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "prompt_cache.json")
    args = ap.parse_args()
    cache = Settings.load().models_dir / PROMPT_CACHE_DIR
    rows = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    questions = [r["question"] for r in rows if r.get("gold_titles")][: args.n]
    out = []
    for q in questions:
        shutil.rmtree(cache, ignore_errors=True)
        cold = ask(q)
        warm = ask(q)
        out.append({"question": q, "without_first_s": cold[0], "without_total_s": cold[1], "with_first_s": warm[0],
                    "with_total_s": warm[1], "same_answer": cold[2] == warm[2]})
        print(f"{cold[0]:5.2f}s -> {warm[0]:5.2f}s first, {cold[1]:5.2f}s -> {warm[1]:5.2f}s total, same={cold[2] == warm[2]}  {q[:60]}", file=sys.stderr, flush=True)
    med = {k: statistics.median(r[k] for r in out) for k in ("without_first_s", "with_first_s", "without_total_s", "with_total_s")}
    print("| cold `rag ask --no-evidence` (median) | without the saved start | with it | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| answer's first line (s) | {med['without_first_s']:.2f} | {med['with_first_s']:.2f} | {med['with_first_s'] / med['without_first_s']:.2f} |")
    print(f"| whole answer (s) | {med['without_total_s']:.2f} | {med['with_total_s']:.2f} | {med['with_total_s'] / med['without_total_s']:.2f} |")
    print(f"| identical answers | {sum(r['same_answer'] for r in out)} of {len(out)} | | |")
    args.out.write_text(json.dumps({"machine_cpus": os.cpu_count(), "median": med, "rows": out}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
