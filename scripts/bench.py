#!/usr/bin/env python
"""Run the benchmarks (same as `rag bench`) and write docs/benchmarks.md, docs/benchmarks.json and
docs/bench_latency.png. Run from anywhere; it uses this checkout's `rag` package.

    RAG_MODELS_DIR=models python scripts/bench.py --sizes 82,1000 --no-llm
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import cli  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        args += ["--out", str(ROOT / "docs")]
    cli.app(["bench", *args], prog_name="scripts/bench.py")
