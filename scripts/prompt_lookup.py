#!/usr/bin/env python
"""Does prompt-lookup decoding write answers faster here (issue #15, item 3)? Answers copy phrases
from the papers, so llama-cpp-python's LlamaPromptLookupDecoding can propose the next tokens from
the prompt and the model checks several at once. This script builds the real prompts of dev
questions (the pipeline, with a generator that only records), then lets the local model answer
each with and without the draft, greedy both times, alternating, and reports writing speed and
whether the answers are the same. Adds the run to docs/prompt_lookup.json (one run per draft length).

    python scripts/prompt_lookup.py [--questions ../shared/eval/dev.jsonl] [--n 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation, generation, prompts  # noqa: E402
from rag.models import resolve_llm  # noqa: E402
from rag.pipeline import Rag  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.types import Generation  # noqa: E402


class Recorder:
    """A generator that keeps the messages it is given and answers nothing."""

    name = "recorder"

    def __init__(self):
        self.calls: list[list[dict]] = []

    def generate(self, messages, max_tokens, on_token=None) -> Generation:
        self.calls.append(messages)
        return Generation("", 0, 0, 0.0, 0.0)


def answer(llm, messages: list[dict], max_tokens: int) -> tuple[str, int, float, float]:
    """(text, tokens, seconds to the first token, seconds in all) for one greedy answer."""
    llm.reset()
    start = time.perf_counter()
    first, pieces = 0.0, []
    for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, stream=True, **generation.SAMPLING):
        piece = chunk["choices"][0].get("delta", {}).get("content")
        if piece:
            first = first or time.perf_counter() - start
            pieces.append(piece)
    total = time.perf_counter() - start
    text = "".join(pieces)
    return text, len(llm.tokenize(text.encode(), add_bos=False)), first, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared" / "eval" / "dev.jsonl")
    ap.add_argument("--n", type=int, default=8, help="questions (answerable, not summaries)")
    ap.add_argument("--draft-tokens", type=int, default=10, help="tokens the draft proposes at a time")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "prompt_lookup.json")
    args = ap.parse_args()
    settings = Settings.load()
    recorder = Recorder()
    rag = Rag(settings, generator=recorder)
    questions = [q for q in evaluation.load_questions(args.questions) if q.answerable and q.kind != "summary"][: args.n]
    for q in questions:
        rag.ask(q.question)
    asked = [m for m in recorder.calls if m[0]["content"] == prompts.SYSTEM]

    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    _, path = resolve_llm(settings.model, settings.models_dir)
    threads = os.cpu_count() or 2
    common = dict(model_path=str(path), n_ctx=settings.n_ctx, n_threads=threads, n_threads_batch=threads, n_batch=512, seed=0, verbose=False)
    plain = Llama(**{**common, "n_ctx": 2048})
    # The draft's tokens are checked against the logits of every position: llama-cpp-python keeps
    # them all (logits_all), n_ctx x vocabulary floats (2,048 x 151,936 x 4 B = 1.2 GB here).
    drafted = Llama(**{**common, "n_ctx": 2048}, logits_all=True, draft_model=LlamaPromptLookupDecoding(num_pred_tokens=args.draft_tokens))
    rows = []
    for messages in asked:
        a = answer(plain, messages, settings.max_tokens)
        b = answer(drafted, messages, settings.max_tokens)
        write = lambda r: (r[1] - 1) / (r[3] - r[2]) if r[1] > 1 and r[3] > r[2] else float("nan")  # noqa: E731
        rows.append({"tokens": a[1], "plain_write_tok_s": round(write(a), 2), "draft_write_tok_s": round(write(b), 2),
                     "plain_total_s": round(a[3], 2), "draft_total_s": round(b[3], 2), "same_answer": a[0] == b[0]})
        print(rows[-1], flush=True)
    ratio = statistics.median(r["draft_write_tok_s"] / r["plain_write_tok_s"] for r in rows)
    total = sum(r["draft_total_s"] for r in rows) / sum(r["plain_total_s"] for r in rows)
    report = {"model": path.name, "threads": threads, "draft_tokens": args.draft_tokens, "questions": len(rows),
              "median_write_speed_ratio": round(ratio, 3), "total_time_ratio": round(total, 3),
              "same_answers": sum(r["same_answer"] for r in rows), "rows": rows}
    # One file for every draft length tried: a run replaces the earlier one of its length.
    saved = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = [r for r in saved.get("runs", []) if r.get("draft_tokens") != args.draft_tokens] + [report]
    args.out.write_text(json.dumps({**saved, "runs": sorted(runs, key=lambda r: r["draft_tokens"])}, indent=2) + "\n")
    print(f"writing speed with the draft / without: {ratio:.2f} (median); whole answers {total:.2f}x the time; "
          f"{report['same_answers']} of {len(rows)} answers the same; wrote {args.out}")


if __name__ == "__main__":
    main()
