#!/usr/bin/env python
"""Which thread counts read a prompt and write an answer fastest on this machine: the local model
reads a 500-token prompt and writes 40 tokens with every (reading threads, writing threads) pair
up to the core count, twice each. Prints tokens/s and writes docs/threads.json; RAG_THREADS sets
both counts (llama.cpp allows them to differ).

    python scripts/threads.py [--model models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf]
"""

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(path: Path, read_threads: int, write_threads: int, text: str) -> tuple[float, float]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=write_threads, n_threads_batch=read_threads, n_batch=512, verbose=False)
    tokens = llm.tokenize(text.encode())[:500]
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens)
    read = len(tokens) / (time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(40):
        llm.eval([llm.sample(temp=0.0)])
    write = 40 / (time.perf_counter() - start)
    del llm
    return read, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "threads.json")
    args = ap.parse_args()
    if not args.model.is_file():
        sys.exit(f"error: no model at {args.model}; run `rag models pull`")
    text = (ROOT / "README.md").read_text(encoding="utf-8")[:2400]
    cores = os.cpu_count() or 1
    rows = []
    print("| reading threads | writing threads | read tok/s | write tok/s |")
    print("|---:|---:|---:|---:|")
    for read_threads, write_threads in itertools.product(range(1, cores + 1), repeat=2):
        runs = [measure(args.model, read_threads, write_threads, text) for _ in range(2)]
        read, write = max(r for r, _ in runs), max(w for _, w in runs)
        rows.append({"read_threads": read_threads, "write_threads": write_threads, "read_tok_s": round(read, 1), "write_tok_s": round(write, 1)})
        print(f"| {read_threads} | {write_threads} | {read:.1f} | {write:.1f} |")
    args.out.write_text(json.dumps({"cpu_count": cores, "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
