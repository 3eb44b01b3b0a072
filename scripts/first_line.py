#!/usr/bin/env python
"""How long a user looks at an empty screen: seconds from starting `rag ask` (a cold process, as
a user runs it) to its first printed line, with the evidence block and without it
(`--no-evidence`, where the first line is the model's first sentence), measured back to back on
the same questions. Prints a table and writes docs/first_line.json.

    RAG_DATA_DIR=... python scripts/first_line.py [--reps 1] [--out docs/first_line.json]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What does TabPFN do, and how fast is it?",
    "What speedups does the data-efficient augmentation method achieve on CIFAR10?",
    "Which papers study model-based reinforcement learning?",
    "How does MANSA decide when to use centralised learning?",
    "What is the boiling point of ethanol?",
]


def timed_ask(args: list[str]) -> tuple[float, float, str]:
    """A cold `rag ask ARGS` process: (seconds to its first non-empty stdout line, seconds to exit,
    its whole output). Also used by scripts/prompt_cache.py."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag", "ask", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    first, lines = None, []
    for raw in proc.stdout:
        if raw.strip() and first is None:
            first = time.perf_counter() - started
        lines.append(raw)
    proc.wait()
    total = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"error: rag ask {args[0]!r} failed with exit code {proc.returncode}")
    return first if first is not None else total, total, "".join(lines)


def first_line(args: list[str]) -> tuple[float, float, str]:
    """(seconds to the first non-empty stdout line, seconds to exit, that line)."""
    first, total, output = timed_ask(args)
    return first, total, next((line.strip() for line in output.splitlines() if line.strip()), "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=1, help="runs of each question in each mode")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "first_line.json")
    args = ap.parse_args()
    rows = []
    for q in QUESTIONS:
        for _ in range(args.reps):
            with_evidence = first_line([q])
            without = first_line([q, "--no-evidence"])
            rows.append({"question": q, "evidence_first_s": with_evidence[0], "answer_first_s": without[0],
                         "total_s": with_evidence[1], "first_line": with_evidence[2][:80]})
            print(f"{with_evidence[0]:5.2f}s  {without[0]:5.2f}s  {with_evidence[1]:5.1f}s  {q}", file=sys.stderr, flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in ("evidence_first_s", "answer_first_s", "total_s")}
    print("| first printed line, cold `rag ask` (median) | seconds |")
    print("|---|---:|")
    print(f"| with the evidence block (default) | {med['evidence_first_s']:.2f} |")
    print(f"| `--no-evidence` (the answer's first sentence) | {med['answer_first_s']:.2f} |")
    print(f"| whole answer | {med['total_s']:.2f} |")
    print(f"| ratio evidence / answer first | {med['evidence_first_s'] / med['answer_first_s']:.2f} |")
    args.out.write_text(json.dumps({"machine_cpus": os.cpu_count(), "median": med, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
