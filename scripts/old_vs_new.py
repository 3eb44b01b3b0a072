#!/usr/bin/env python
"""Cold `rag search` or `rag ask` processes of this checkout against an older one, back to back:
each question runs once per version in a fresh process (as a user runs it), alternating, so both
versions see the same machine; medians, 90th percentiles and new/old ratios are printed and
written as JSON. Each version needs its own copy of the store: two versions sharing one rewrite
each other's search cache on every run, and an older version may use another embedder.

    git worktree add /tmp/old 04b4216
    cp -r ~/.local/share/paper-rag /tmp/seeds-new
    (cd /tmp/old && PYTHONPATH=. RAG_DATA_DIR=/tmp/seeds-old rag ingest seeds/)
    python scripts/old_vs_new.py --old-src /tmp/old --old-data /tmp/seeds-old --data /tmp/seeds-new
    python scripts/old_vs_new.py ... --ask ../shared/eval/dev.jsonl   # whole answers instead
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
sys.path.insert(0, str(ROOT))
from rag.stats import percentile  # noqa: E402

QUESTIONS = [
    "graph neural networks for molecules", "sparse mixture of experts", "human values alignment", "tabular transformers",
    "regret bounds for control", "speech recognition", "protein folding",
]


def run(rag: str, env: dict, ask: bool, question: str) -> dict:
    """One cold process: its wall time and, for an answer, what its JSON says."""
    command = [rag, "ask", question, "--json"] if ask else [rag, "search", question]
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = round(time.perf_counter() - started, 3)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(command[1:3])!r} failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    row = {"wall_s": wall}
    if ask:
        answer = json.loads(proc.stdout)
        timings = answer["timings"]
        row |= {"prompt_tokens": timings["prompt_tokens"], "answer_tokens": timings["completion_tokens"],
                "first_token_s": timings["first_token_s"], "abstained": answer["abstained"]}
    return row


def summary(rows: list[dict], key: str) -> dict:
    values = [r[key] for r in rows if key in r and not r.get("abstained")]
    return {"median": statistics.median(values), "p90": percentile(values, 90)} if values else {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-src", type=Path, required=True, help="a checkout of the older commit (its rag/ is imported)")
    ap.add_argument("--old-data", type=Path, required=True, help="the older version's copy of the store")
    ap.add_argument("--data", type=Path, required=True, help="this version's copy of the store")
    ap.add_argument("--ask", type=Path, help="time `rag ask --json` on this JSONL file's questions instead of searches")
    ap.add_argument("--out", type=Path, help="JSON report (default docs/cold_search.json or docs/cold_ask.json)")
    args = ap.parse_args()
    ask = args.ask is not None
    out = args.out or ROOT / "docs" / ("cold_ask.json" if ask else "cold_search.json")
    questions = [json.loads(line)["question"] for line in args.ask.read_text().splitlines() if line.strip()] if ask else QUESTIONS
    rag = str(Path(sys.executable).with_name("rag"))
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAG_DATA_DIR")}
    envs = {
        "old": {**base, "PYTHONPATH": str(args.old_src), "RAG_DATA_DIR": str(args.old_data), "RAG_MODELS_DIR": str(ROOT / "models")},
        "new": {**base, "RAG_DATA_DIR": str(args.data)},
    }
    for env in envs.values():  # a first search may build the cache
        subprocess.run([rag, "search", "warm up"], env=env, capture_output=True, check=True)
    rows: dict[str, list[dict]] = {name: [] for name in envs}
    for question in questions:
        for name, env in envs.items():
            rows[name].append({"question": question, **run(rag, env, ask, question)})
        print(" ".join(f"{name} {r[-1]['wall_s']:6.2f}s" for name, r in rows.items()), question[:70], file=sys.stderr, flush=True)
    keys = ["wall_s", "first_token_s", "prompt_tokens", "answer_tokens"] if ask else ["wall_s"]
    stats = {name: {key: summary(r, key) for key in keys} for name, r in rows.items()}
    ratios = {key: round(stats["new"][key]["median"] / stats["old"][key]["median"], 3) for key in keys if stats["old"][key]}
    print(f"| {'answered questions' if ask else 'searches'} ({len(questions)} run) | old median (p90) | new median (p90) | new / old |")
    print("|---|---:|---:|---:|")
    for key in keys:
        if key in ratios:
            old, new = stats["old"][key], stats["new"][key]
            print(f"| {key} | {old['median']:.2f} ({old['p90']:.2f}) | {new['median']:.2f} ({new['p90']:.2f}) | {ratios[key]:.2f} |")
    if ask:
        print("abstained: " + ", ".join(f"{name} {sum(r['abstained'] for r in rs)}" for name, rs in rows.items()))
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "load_avg": os.getloadavg(),
              "stats": stats, "ratio_new_over_old": ratios, "runs": rows}
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
