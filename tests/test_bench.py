"""`rag bench`: the synthetic corpus, the report, and one tiny real run through the CLI
(--no-llm, the real embedder in `rag ingest` / `rag search` subprocesses). No wall-clock limits
are asserted: the numbers depend on the machine."""

from __future__ import annotations

import json

import pytest

from typer.testing import CliRunner

from conftest import SEED_PAPERS, MODELS_DIR
from rag import bench, cli, corpus
from rag.text import normalize_title


def test_synthetic_papers_are_deterministic_unique_and_seed_like():
    seeds = bench.seed_papers()
    assert len(seeds) == SEED_PAPERS
    a = bench.synthetic_papers(300, seeds)
    assert a == bench.synthetic_papers(300, seeds)  # fixed random seed
    titles = {normalize_title(t) for t, _ in a} | {normalize_title(p.title) for p in seeds}
    assert len(titles) == 300 + SEED_PAPERS  # every paper is a new paper, none merges with another
    seed_sentences = " ".join(p.abstract for p in seeds)
    title, abstract = a[0]
    assert title and len(abstract) > 100 and abstract.split(". ")[0].rstrip(".") in seed_sentences


def test_build_corpus_sizes(tmp_path):
    small = bench.build_corpus(5, tmp_path / "small")
    assert len(list(small.glob("*.md"))) == 5
    big = bench.build_corpus(100, tmp_path / "big")
    papers = {p.paper_id for f in corpus.load([big]) for p in f.papers}
    assert len(papers) == 100


def _report() -> bench.BenchReport:
    report = bench.BenchReport("2026-01-01 00:00 UTC", {"cpu": "test", "cores": 2, "load_at_start": "1.50 1.00 0.90"}, "rag bench")
    s = bench.SizeResult(82, papers=82, chunks=158, ingest_s=2.0, papers_per_s=41, chunks_per_s=79, reingest_s=0.3)
    s.cold_search_s, s.warm_search_ms = [0.8, 0.9, 1.2], [10, 12, 60]
    report.sizes.append(s)
    report.asks.append(bench.AskResult("q?", first_token_s=2.0, total_s=10.0, raw_total_s=9.5, naive_total_s=25.0, completion_tokens=50, total_cpu_s=18, raw_cpu_s=17, naive_cpu_s=40))
    report.model = "m"
    return report


def test_targets_and_render():
    report = _report()
    verdicts = {t: v for t, _, v in bench.targets(report)}
    assert verdicts["cold `rag search` <= 1.0 s on the seeds"] == "met"
    assert verdicts["warm search p95 <= 50 ms at 10,000 papers"] == "not measured"
    assert verdicts["ingest >= 100 papers/s"] == "NOT met"
    assert verdicts["`ask` total <= 1.10 x the model's own prompt+generation time"] == "met"
    assert verdicts[">= 2x faster end to end than the naive pipeline"] == "met"
    text = bench.render(report)
    assert "| 82 | 158 |" in text and "python scripts/bench.py" in text
    assert "noisy" in text and "1.50 on 2 cores" in text  # what the machine said, not a fixed sentence
    report.machine.update(cores=16, load_at_start="0.40 0.30 0.20", load_at_end="0.50 0.40 0.30")
    assert "noisy" not in bench.render(report) and "at most 0.50 on 16 cores" in bench.render(report)
    assert json.loads(json.dumps(report.to_json()))["sizes"][0]["warm_p95_ms"] > 12


def test_bench_cli_quick_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MODELS_DIR", str(MODELS_DIR))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli.app, ["bench", "--sizes", "6", "--no-llm", "--cold-reps", "1", "--warm-reps", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, (result.output, result.exception)
    data = json.loads((out / "benchmarks.json").read_text())
    (size,) = data["sizes"]
    assert (size["papers"], size["size"]) == (6, 6) and size["chunks"] >= 6
    assert size["papers_per_s"] > 0 and size["peak_rss_mb"] > 0 and size["reingest_s"] > 0 and size["ingest_cpu_s"] > 0
    assert len(size["cold_search_cpu_s"]) == 1
    assert len(size["cold_search_s"]) == 1 and len(size["warm_search_ms"]) == len(bench.SEARCH_QUERIES)
    assert data["asks"] == []
    text = (out / "benchmarks.md").read_text()
    assert "| 6 |" in text and "not measured" in text
    assert "ingest >= 100 papers/s" in result.stdout


def test_bench_rejects_bad_sizes():
    result = CliRunner().invoke(cli.app, ["bench", "--sizes", "ten"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")


def test_rewrite_keeps_the_hand_written_analysis(tmp_path):
    report = _report()
    bench.write(report, tmp_path)
    md = tmp_path / "benchmarks.md"
    md.write_text(md.read_text() + "\n" + bench.NOTES_MARKER + "\n\n## Analysis\n\nkept words\n")
    report.sizes[0].papers_per_s = 123.0
    bench.write(report, tmp_path)
    text = md.read_text()
    assert "123.0" in text and text.count("kept words") == 1 and text.count(bench.NOTES_MARKER) == 1


def test_from_json_combines_runs(tmp_path):
    sizes_run, ask_run = _report(), _report()
    ask_run.sizes, sizes_run.asks = [], []
    ask_run.command = "rag bench --sizes 82 --questions 3"
    (tmp_path / "a.json").write_text(json.dumps(sizes_run.to_json()))
    (tmp_path / "b.json").write_text(json.dumps(ask_run.to_json()))
    result = CliRunner().invoke(cli.app, ["bench", "--from-json", str(tmp_path / "a.json"), "--from-json", str(tmp_path / "b.json"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, (result.output, result.exception)
    text = (tmp_path / "out" / "benchmarks.md").read_text()
    assert "| 82 | 158 |" in text and "| q? |" in text and "rag bench --sizes 82 --questions 3" in text


def test_bench_measures_pdf_pages_per_second(tmp_path, monkeypatch):
    from pdfmaker import sample_paper

    monkeypatch.setenv("RAG_MODELS_DIR", str(MODELS_DIR))
    folder = tmp_path / "pdfs"
    folder.mkdir()
    sample_paper(folder / "a.pdf")
    sample_paper(folder / "b.pdf", title="Dense Routing for Slow Transformers")
    out = tmp_path / "out"
    args = ["bench", "--sizes", "6", "--no-llm", "--cold-reps", "1", "--warm-reps", "1", "--out", str(out), "--pdfs", str(folder)]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    pdfs = json.loads((out / "benchmarks.json").read_text())["pdfs"]
    assert (pdfs["files"], pdfs["pages"]) == (2, 6) and pdfs["pages_per_s"] > 0 and pdfs["reingest_s"] > 0
    assert "## PDF ingest" in (out / "benchmarks.md").read_text()
    assert bench.load_report(json.loads((out / "benchmarks.json").read_text())).pdfs.pages == 6
    bad = CliRunner().invoke(cli.app, ["bench", "--sizes", "6", "--no-llm", "--pdfs", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "--pdfs needs a folder" in bad.output


def test_a_run_is_set_beside_a_saved_baseline_as_ratios(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_MODELS_DIR", str(MODELS_DIR))
    quick = ["bench", "--sizes", "6", "--no-llm", "--cold-reps", "1", "--warm-reps", "1"]
    first = CliRunner().invoke(cli.app, [*quick, "--out", str(tmp_path / "old")])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli.app, [*quick, "--out", str(tmp_path / "new"), "--baseline", str(tmp_path / "old" / "benchmarks.json")])
    assert second.exit_code == 0, second.output
    data = json.loads((tmp_path / "new" / "benchmarks.json").read_text())
    rows = {r["measure"]: r for r in data["against"]}
    cold = rows["cold `rag search` s, 6 papers (median)"]
    assert cold["ratio"] == pytest.approx(cold["new"] / cold["old"], rel=0.01) and cold["better"] == "lower"
    assert rows["ingest papers/s, 6 papers"]["better"] == "higher"
    assert "## Against the baseline (`rag bench --sizes 6 --no-llm`" in (tmp_path / "new" / "benchmarks.md").read_text()
    (tmp_path / "bad.json").write_text("[1, 2]")
    bad = CliRunner().invoke(cli.app, [*quick, "--out", str(tmp_path / "x"), "--baseline", str(tmp_path / "bad.json")])
    assert bad.exit_code == 2 and "not a benchmarks.json" in bad.output and not (tmp_path / "x").exists()
