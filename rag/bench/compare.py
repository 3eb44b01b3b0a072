"""New against old: one `rag bench` run set beside a saved one (`--baseline benchmarks.json`), as
ratios, so a change is judged on the same machine kind without trusting absolute times across
days (this 2-core machine's cold `rag search` read 0.95 s one day and 1.47 s another, same code)."""

from __future__ import annotations

import statistics

from rag.bench.report import BenchReport


def ratios(new: BenchReport, old: BenchReport) -> list[dict]:
    """One row per measure both runs have: old, new, new / old, and which way is better."""
    rows: list[dict] = []

    def add(measure: str, before: float, after: float, better: str) -> None:
        if before and after and before == before and after == after:  # both measured, not NaN
            rows.append({"measure": measure, "old": round(before, 3), "new": round(after, 3), "ratio": round(after / before, 3), "better": better})

    olds = {s.size: s for s in old.sizes}
    for s in new.sizes:
        o = olds.get(s.size)
        if o:
            add(f"cold `rag search` s, {s.size:,} papers (median)", o.cold_median_s, s.cold_median_s, "lower")
            add(f"warm search p95 ms, {s.size:,} papers", o.warm_p95_ms, s.warm_p95_ms, "lower")
            add(f"ingest papers/s, {s.size:,} papers", o.papers_per_s, s.papers_per_s, "higher")
            add(f"re-ingest unchanged s, {s.size:,} papers", o.reingest_s, s.reingest_s, "lower")
    if new.asks and old.asks:
        for name, key in (("`ask` total s", "total_s"), ("`ask` first text s", "first_text_s"), ("`ask` prompt tokens", "prompt_tokens")):
            add(f"{name} (median)", statistics.median(getattr(a, key) for a in old.asks), statistics.median(getattr(a, key) for a in new.asks), "lower")
        add("`ask` total / the model alone (median)", _model_share(old), _model_share(new), "lower")
    if new.pdfs and old.pdfs:
        add("PDF ingest pages/s", old.pdfs.pages_per_s, new.pdfs.pages_per_s, "higher")
    return rows


def _model_share(report: BenchReport) -> float:
    shares = [a.total_s / a.raw_total_s for a in report.asks if a.raw_total_s > 0]
    return statistics.median(shares) if shares else float("nan")
