"""Benchmarks for `rag bench` / scripts/bench.py: ingest, search and ask, measured in one run.

`corpus` builds the corpora (the seeds, plus synthetic papers made from them with a fixed random
seed), `measure` runs the measurements, `report` turns them into docs/benchmarks.md and .json,
`compare` sets a run beside a saved one (`--baseline`) as new / old ratios."""

from rag.bench.compare import ratios
from rag.bench.corpus import SEED_PAPERS, build_corpus, seed_papers, synthetic_papers
from rag.bench.measure import QUESTIONS, SEARCH_QUERIES, BenchPlan, machine_info, run
from rag.bench.report import NOTES_MARKER, AskResult, BenchReport, PdfResult, SizeResult, combine, load_report, render, targets, write

__all__ = [
    "ratios",
    "SEED_PAPERS", "build_corpus", "seed_papers", "synthetic_papers",
    "QUESTIONS", "SEARCH_QUERIES", "BenchPlan", "machine_info", "run",
    "NOTES_MARKER", "AskResult", "BenchReport", "PdfResult", "SizeResult", "combine", "load_report", "render", "targets", "write",
]
