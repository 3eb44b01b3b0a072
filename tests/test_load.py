"""scripts/load.py: its pure parts (percentiles, the report, the docs section, argument checks) and
one small real run with both servers (2 clients x 1 question, short answers, 5 papers ingested)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SEED_PAPERS, load_script
from rag.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "load.py"


load = load_script()


def _record(latency, ttft=0.5, retrieval=0.1, abstained=False, tokens=10, prompt=1000):
    return {"ok": True, "latency_s": latency, "ttft_s": ttft, "retrieval_s": retrieval, "abstained": abstained, "tokens": tokens,
            "prompt_tokens": prompt, "error": ""}


def test_percentiles_interpolate_between_ranks():
    assert load.percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert load.percentile([1.0, 2.0, 3.0, 4.0, 5.0], 95) == pytest.approx(4.8)
    assert load.percentile([7.0], 95) == 7.0
    assert load.percentile([], 50) != load.percentile([], 50)  # NaN: no values, no number


def test_summary_counts_errors_and_leaves_failed_questions_out_of_the_latencies():
    records = [_record(1.0, prompt=900), _record(3.0, abstained=True, ttft=0.0, tokens=0, prompt=0), _record(2.0, prompt=1100),
               {"ok": False, "error": "ModelError: server went away"}]
    ingest = {"papers": 60, "seconds": 12.345, "errors": ["ingest StoreError: busy"]}
    s = load.summarise(records, ingest, wall_s=4.0)
    assert (s["questions"], s["answered"], s["abstained"], s["errors"]) == (4, 3, 1, 2)
    assert s["error_messages"] == ["ModelError: server went away", "ingest StoreError: busy"]
    assert s["latency_p50_s"] == 2.0 and s["latency_p95_s"] == 2.9
    assert s["ttft_p50_s"] == 0.5  # the answer with no model call (ttft 0) is not a first token
    assert s["throughput_qps"] == 0.75
    assert s["prompt_tokens_p50"] == 1000  # the answer with no model call sent no prompt
    assert (s["completion_tokens"], s["ingest_papers"], s["ingest_s"]) == (20, 60, 12.35)


def test_summary_of_nothing_answered_has_no_latencies():
    s = load.summarise([{"ok": False, "error": "x"}], {"papers": 0, "seconds": 0.0}, wall_s=1.0)
    assert s["errors"] == 1 and s["latency_p50_s"] is None and s["ttft_p50_s"] is None
    json.dumps(s)  # still valid JSON (no NaN)


def test_docs_section_is_replaced_between_the_markers_only():
    text = f"# Deploy\n\nbefore\n\n{load.START}\nold table\n{load.END}\n\nafter\n"
    out = load.replace_section(text, "| new | table |\n")
    assert out == f"# Deploy\n\nbefore\n\n{load.START}\n| new | table |\n{load.END}\n\nafter\n"
    assert load.replace_section(out, "| new | table |") == out  # idempotent
    with pytest.raises(load.BadInput):
        load.replace_section("no markers here", "x")


def test_only_a_clean_run_is_written_into_the_docs(tmp_path):
    docs = tmp_path / "deploy.md"
    docs.write_text(f"a\n{load.START}\nold\n{load.END}\n")
    report = {"clients": 1, "questions_per_client": 1, "max_tokens": 8, "max_seconds": 60.0, "model": "m", "threads": 1,
              "papers_in_store": 82, "seed_ingest_s": 1.0, "load_avg_peak": 1.0, "load_avg_end": 1.0, "cores": 2}
    report.update(load.summarise([{"ok": False, "error": "boom"}], {"papers": 0, "seconds": 0.0}, 1.0))
    assert not load.write_docs(docs, report)
    assert "old" in docs.read_text()
    report.update(load.summarise([_record(1.0)], {"papers": 0, "seconds": 0.0}, 1.0))
    assert load.write_docs(docs, report)
    assert "old" not in docs.read_text() and "| errors | 0 |" in docs.read_text()


def test_the_repository_docs_have_the_section_the_script_writes():
    text = (PROJECT_ROOT / "docs" / "deploy.md").read_text()
    assert text.count(load.START) == 1 and text.count(load.END) == 1
    assert text.index(load.START) < text.index(load.END)


def test_the_model_server_leaves_a_core_for_the_clients():
    assert [load.server_threads(n) for n in (1, 2, 16)] == [1, 1, 15]


def test_questions_are_distinct_and_shaped_per_client():
    titles = [f"Paper {i}" for i in range(82)]
    qs = load.questions_for(titles, clients=8, per_client=3)
    assert [len(q) for q in qs] == [3] * 8
    flat = [q for client in qs for q in client]
    assert len(set(flat)) == 24
    assert all(any(t in q for t in titles) for q in flat)


def test_render_names_every_measure():
    report = {"clients": 2, "questions_per_client": 1, "max_tokens": 8, "max_seconds": 60.0, "model": "m", "threads": 1, "papers_in_store": 87,
              "seed_ingest_s": 3.0, "load_avg_peak": 2.5, "load_avg_end": 2.0, "cores": 2}
    report.update(load.summarise([_record(1.0), _record(2.0)], {"papers": 5, "seconds": 1.0}, 2.0))
    table = load.render(report)
    for label in ["model server", "questions answered", "errors", "wall time", "throughput", "latency p50 / p95",
                  "time to first token p50", "retrieval p50", "ingested meanwhile", "load average"]:
        assert f"| {label}" in table
    assert "| errors | 0 |" in table


@pytest.mark.parametrize("argv, message", [
    (["--clients", "0"], "--clients must be at least 1, got 0"),
    (["--questions", "-1"], "--questions must be at least 1"),
    (["--max-seconds", "0"], "--max-seconds must be more than 0"),
    (["--ingest-papers", "-5"], "--ingest-papers must be 0 or more"),
    (["--clients", "many"], "invalid int value"),
    (["--no-such-flag"], "unrecognized arguments"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert load.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_write_docs_refuses_a_file_without_the_markers(tmp_path, capsys):
    docs = tmp_path / "deploy.md"
    docs.write_text("# nothing to replace\n")
    assert load.main(["--write-docs", "--docs", str(docs)]) == 2
    assert "has no <!-- load:start -->" in capsys.readouterr().err


def test_help_runs():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--clients" in result.stdout and "--write-docs" in result.stdout


def test_a_small_real_run_answers_everything(models_dir, tmp_path):
    """Both servers for real, 2 clients x 1 question with a concurrent ingest of 5 papers."""
    docs = tmp_path / "deploy.md"
    docs.write_text(f"intro\n{load.START}\nold\n{load.END}\nend\n")
    cmd = [sys.executable, str(SCRIPT), "--clients", "2", "--questions", "1", "--max-tokens", "16",
           "--ingest-papers", "5", "--threads", "2", "--max-seconds", "240", "--models-dir", str(models_dir),
           "--json", "--write-docs", "--docs", str(docs)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert set(load.KEYS) <= set(report)
    assert report["errors"] == 0, report["error_messages"]
    assert (report["questions"], report["answered"]) == (2, 2)
    assert report["ingest_papers"] == 5
    assert report["papers_in_store"] == SEED_PAPERS + 5
    assert report["latency_p50_s"] > 0 and report["throughput_qps"] > 0
    written = docs.read_text()
    assert written.startswith(f"intro\n{load.START}\n| measure | value |") and written.endswith(f"{load.END}\nend\n")
    assert "| errors | 0 |" in written
    # Torn down: the work dir is gone and nothing listens on the servers' ports any more.
    started = re.search(r"starting chroma on :(\d+) and .* on :(\d+) \(work dir (.+)\)", result.stderr)
    assert started, result.stderr[-2000:]
    assert not Path(started.group(3)).exists()
    for port in started.group(1, 2):
        with socket.socket() as s, pytest.raises(OSError):
            s.connect(("127.0.0.1", int(port)))
