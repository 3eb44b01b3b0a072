#!/usr/bin/env python
"""Cold `rag search` against an older checkout of the project, back to back: each question runs
once per version in a fresh process, alternating, and the medians and their ratio are printed and
written to docs/cold_search.json. Each version needs its own copy of the store: two versions
sharing one rewrite each other's search cache on every run.

    git worktree add /tmp/old 04b4216
    cp -r ~/.local/share/paper-rag /tmp/seeds-old && cp -r ~/.local/share/paper-rag /tmp/seeds-new
    python scripts/cold_search.py --old-src /tmp/old --old-data /tmp/seeds-old --data /tmp/seeds-new
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "graph neural networks for molecules", "sparse mixture of experts", "human values alignment", "tabular transformers",
    "regret bounds for control", "speech recognition", "protein folding",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-src", type=Path, required=True, help="a checkout of the older commit (its rag/ is imported)")
    ap.add_argument("--old-data", type=Path, required=True, help="the older version's copy of the store")
    ap.add_argument("--data", type=Path, required=True, help="this version's copy of the store")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "cold_search.json")
    args = ap.parse_args()
    rag = str(Path(sys.executable).with_name("rag"))
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAG_DATA_DIR")}
    envs = {
        "old": {**base, "PYTHONPATH": str(args.old_src), "RAG_DATA_DIR": str(args.old_data), "RAG_MODELS_DIR": str(ROOT / "models")},
        "new": {**base, "RAG_DATA_DIR": str(args.data)},
    }
    for env in envs.values():  # a first search may build the cache
        subprocess.run([rag, "search", "warm up"], env=env, capture_output=True, check=True)
    times: dict[str, list[float]] = {name: [] for name in envs}
    for question in QUESTIONS:
        for name, env in envs.items():
            started = time.perf_counter()
            subprocess.run([rag, "search", question], env=env, capture_output=True, check=True)
            times[name].append(round(time.perf_counter() - started, 3))
    medians = {name: statistics.median(t) for name, t in times.items()}
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "load_avg": os.getloadavg(),
        "seconds": times, "median_s": medians, "ratio_new_over_old": round(medians["new"] / medians["old"], 3),
    }
    for name, t in times.items():
        print(f"{name}: median {medians[name]:.3f} s  {t}")
    print(f"ratio new/old: {report['ratio_new_over_old']:.2f}")
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
