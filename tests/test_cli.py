"""The `rag` command through Typer's CliRunner: help texts, JSON contracts, and one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import SEED_PAPERS, SEEDS_DIR, FakeEmbedder, FakeGenerator
from rag import cli, prompts
from rag.pipeline import Rag
from rag.settings import Settings

AUG = "Data-Efficient Augmentation for Training Neural Networks"
AUG_Q = "What speedups does the data-efficient augmentation method achieve on CIFAR10?"
AUG_FACT = "The subset selection method achieves 6.3x speedup on CIFAR10 and 2.2x speedup on SVHN"

BRIEF_COMMANDS = [["ingest"], ["ask"], ["summarize"], ["search"], ["papers"], ["doctor"], ["models", "pull"], ["models", "list"]]


def run(runner: CliRunner, *args: str):
    return runner.invoke(cli.app, list(args))


def all_commands() -> list[list[str]]:
    """Every command and subcommand the app defines (so a new command needs a help text too)."""
    root = typer_main_command()
    found: list[list[str]] = []

    def walk(group, prefix: list[str]) -> None:  # Typer may vendor its own click: duck-type groups
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, prefix + [name])
            else:
                found.append(prefix + [name])

    walk(root, [])
    return found


def typer_main_command():
    import typer.main

    return typer.main.get_command(cli.app)


def assert_one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit) or result.exception is None, result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- help -------------------------------------------------------------------------------------


def test_brief_commands_exist():
    found = all_commands()
    for cmd in BRIEF_COMMANDS:
        assert cmd in found, f"`rag {' '.join(cmd)}` is missing"


@pytest.mark.parametrize("cmd", all_commands(), ids=lambda c: " ".join(c))
def test_every_command_has_help_with_an_example(runner, cmd):
    result = run(runner, *cmd, "--help")
    assert result.exit_code == 0, result.output
    assert "Example:" in result.stdout
    assert f"rag {cmd[-1]}" in result.stdout or f"rag {' '.join(cmd)}" in result.stdout


@pytest.mark.parametrize("group", [[], ["models"]], ids=["rag", "rag models"])
def test_groups_have_help_with_an_example(runner, group):
    result = run(runner, *group, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout


# --- ingest / search / papers -----------------------------------------------------------------


@pytest.fixture
def fake_embedding_cli(runner):
    """`rag` with the fake embedder (fast ingest), everything else real."""
    embedder = FakeEmbedder()
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=embedder)
    return embedder


def test_ingest_then_search_json_contract(runner, fake_embedding_cli, data_dir):
    result = run(runner, "ingest", str(SEEDS_DIR))
    assert result.exit_code == 0, result.output
    assert f"{SEED_PAPERS} papers from 2 files: {SEED_PAPERS} added" in result.stdout
    assert (data_dir / "chroma").is_dir()

    result = run(runner, "search", "real-time bidding for display advertising", "--json", "-k", "4")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"query", "results"}
    assert data["query"] == "real-time bidding for display advertising"
    results = data["results"]
    assert len(results) == 4
    for rank, r in enumerate(results, 1):
        assert set(r) >= {"rank", "paper_id", "title", "score", "text"}
        assert r["rank"] == rank and r["text"] and r["title"]
    assert len({r["paper_id"] for r in results}) == 4  # one per paper
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    assert results[0]["title"] == "Real-Time Bidding by Reinforcement Learning in Display Advertising"

    again = run(runner, "ingest", str(SEEDS_DIR), "--json")
    assert again.exit_code == 0
    report = json.loads(again.stdout)
    assert (report["unchanged"], report["added"], report["chunks_embedded"]) == (SEED_PAPERS, 0, 0)


def test_ingest_with_no_path_reads_seeds(runner, fake_embedding_cli):
    result = run(runner, "ingest", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == SEED_PAPERS


def test_ingest_data_dir_option(runner, fake_embedding_cli, tmp_path):
    other = tmp_path / "elsewhere"
    result = run(runner, "ingest", str(SEEDS_DIR), "--data-dir", str(other), "--json")
    assert result.exit_code == 0, result.output
    assert (other / "chroma").is_dir()


def test_search_with_the_real_default_embedder(runner, seeded_real, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    result = run(runner, "search", "fish fin ray propulsion with asynchronous reinforcement learning", "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert len(results) == 5  # the command's default -k
    assert results[0]["title"].startswith("Asynchronous Parallel Reinforcement Learning")
    plain = run(runner, "search", "fish fin ray propulsion", "-k", "2")
    assert plain.exit_code == 0 and plain.stdout.startswith("1. Asynchronous Parallel Reinforcement Learning")
    assert "2. " in plain.stdout and "3. " not in plain.stdout


def test_papers_lists_82(runner, seeded_real, monkeypatch):
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    result = run(runner, "papers")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"{SEED_PAPERS} papers"
    assert len(lines) == SEED_PAPERS + 1
    assert any("Relative Almost Sure Regret Bounds" in l and "Borna Sayedana" in l for l in lines)
    data = json.loads(run(runner, "papers", "--json").stdout)
    assert len(data) == SEED_PAPERS and len({p["paper_id"] for p in data}) == SEED_PAPERS
    assert set(data[0]) >= {"paper_id", "title", "authors", "source", "chunks"}


# --- ask / summarize with a fake model -----------------------------------------------------------


@pytest.fixture
def fake_model_cli(runner, monkeypatch, seeded_real, real_embedder):
    """`rag` on the shared seeded store, with the real embedder and a fake model."""
    llm = FakeGenerator()
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=real_embedder, generator=llm)
    return llm


def test_ask_prints_what_it_found_before_the_answer(runner, fake_model_cli):
    fake_model_cli.queue(f"{AUG_FACT} [1].")
    result = run(runner, "ask", AUG_Q)
    assert result.exit_code == 0, result.output
    found, answer = result.stdout.split("\n\n", 1)
    lines = found.splitlines()
    assert lines[0] == "Found:" and lines[1] == f"  [1] {AUG}"
    assert "CIFAR10" in lines[2] and lines[2].strip().startswith('"')  # the paper's sentence closest to the question
    assert answer.startswith(f"{AUG_FACT} [1].")


def test_no_evidence_prints_the_answer_alone(runner, fake_model_cli):
    fake_model_cli.queue(f"{AUG_FACT} [1].")
    result = run(runner, "ask", AUG_Q, "--no-evidence")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{AUG_FACT} [1].") and "Found:" not in result.stdout


def test_ask_streams_answer_and_lists_sources(runner, fake_model_cli):
    fake_model_cli.queue(f"{AUG_FACT} [1].")
    result = run(runner, "ask", AUG_Q, "--no-evidence")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"{AUG_FACT} [1].")
    assert "Sources:" in out
    sources_block = out.split("Sources:", 1)[1]
    assert f"[1] {AUG}" in sources_block
    assert out.index(AUG_FACT) < out.index("Sources:")
    assert result.stderr == ""
    assert len(fake_model_cli.calls) == 1


def test_ask_json_prints_only_json(runner, fake_model_cli):
    fake_model_cli.queue(f"{AUG_FACT} [1].")
    result = run(runner, "ask", AUG_Q, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # fails if any streamed text leaked into stdout
    assert data["answer"] == f"{AUG_FACT} [1]."
    assert [{k: c[k] for k in ("n", "paper_id", "title", "page")} for c in data["citations"]] == [
        {"n": 1, "paper_id": data["sources"][0]["paper_id"], "title": AUG, "page": None}
    ]
    assert {"question", "answer", "abstained", "citations", "sources", "model", "timings"} <= set(data)
    timings = data["timings"]
    assert 0 < timings["retrieve_s"] <= timings["evidence_s"] <= timings["total_s"]


def test_ask_abstains_without_sources_block(runner, fake_model_cli):
    result = run(runner, "ask", "What is the boiling point of ethanol at sea level?")
    assert result.exit_code == 0, result.output
    assert prompts.ABSTAIN_MESSAGE in result.stdout and "Sources:" not in result.stdout and "Found:" not in result.stdout
    assert fake_model_cli.calls == []


def test_ask_k_option_reaches_the_prompt(runner, fake_model_cli):
    fake_model_cli.queue("NOT FOUND")
    result = run(runner, "ask", "Which transformer does Bayesian inference for small tabular classification?", "-k", "1", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["sources"]) == 1
    assert fake_model_cli.prompts[0].count('\n[1] "') == 1 and '[2] "' not in fake_model_cli.prompts[0]


def test_summarize_through_the_cli(runner, fake_model_cli, monkeypatch):
    monkeypatch.setenv("RAG_SUMMARY_MAX_PAPERS", "8")  # one pass, one model call
    fake_model_cli.queue(f"{AUG_FACT} [1].")
    result = run(runner, "summarize", "data augmentation and training efficiency", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data["sources"]) > 1
    assert AUG in [s["title"] for s in data["sources"]]


# --- errors: exit 2, one line on stderr ----------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_empty_question(runner, question):
    assert_one_line_error(run(runner, "ask", question), "empty")


def test_summarize_empty_topic(runner):
    assert_one_line_error(run(runner, "summarize", ""), "empty")


def test_ingest_missing_path(runner, tmp_path):
    missing = tmp_path / "no" / "such.txt"
    assert_one_line_error(run(runner, "ingest", str(missing)), str(missing), "no such file")


def test_ingest_binary_file(runner, tmp_path):
    blob = tmp_path / "blob.txt"
    blob.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    assert_one_line_error(run(runner, "ingest", str(blob)), "not a text file")


def test_ingest_only_a_corrupt_pdf(runner, tmp_path):
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    assert_one_line_error(run(runner, "ingest", str(pdf)), "paper.pdf", "corrupt PDF")


def test_ingest_batch_with_bad_files_warns_and_exits_1(runner, fake_embedding_cli, tmp_path):
    good = tmp_path / "good.md"
    good.write_text("# Zorblax Field Notes\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
    blob, empty = tmp_path / "blob.txt", tmp_path / "empty.txt"
    blob.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    empty.write_bytes(b"")
    result = run(runner, "ingest", str(good), str(blob), str(empty))
    assert result.exit_code == 1, (result.output, result.exception)
    warnings = [l for l in result.stderr.strip().splitlines() if not l.startswith("embedding")]  # the progress bar
    assert len(warnings) == 2 and all(w.startswith("warning: ") and w.endswith("; file skipped") for w in warnings), warnings
    assert "blob.txt: not a text file" in warnings[0] and "empty.txt: the file is empty" in warnings[1]
    assert result.stdout.startswith("1 papers from 1 files: 1 added")


def test_search_on_a_store_never_ingested(runner, data_dir):
    line = assert_one_line_error(run(runner, "search", "graph neural networks"), "rag ingest")
    assert "nothing is indexed" in line


def test_papers_and_ask_on_a_store_never_ingested(runner):
    assert_one_line_error(run(runner, "papers"), "rag ingest")
    assert_one_line_error(run(runner, "ask", AUG_Q), "rag ingest")


def test_ask_with_missing_gguf(runner, seeded_real, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    missing = tmp_path / "models" / "missing.gguf"
    line = assert_one_line_error(run(runner, "ask", AUG_Q, "--model", str(missing)), str(missing))
    assert ".gguf" in line


def test_ask_with_a_file_that_is_not_gguf(runner, seeded_real, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    bogus = tmp_path / "weights.gguf"
    bogus.write_bytes(b"PK\x03\x04 definitely not a model")
    assert_one_line_error(run(runner, "ask", AUG_Q, "-m", str(bogus)), "not a GGUF")


def test_bad_setting_in_environment(runner, monkeypatch):
    monkeypatch.setenv("RAG_K", "three")
    assert_one_line_error(run(runner, "search", "anything"), "RAG_K")


@pytest.mark.parametrize("name, value", [("RAG_JUDGE", "maybe"), ("RAG_RERANK", "sometimes"), ("RAG_PROMPT_CACHE", "yes")])
def test_a_wrong_word_setting_is_refused_before_any_work(runner, seeded_real, monkeypatch, name, value):
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    monkeypatch.setenv(name, value)
    result = run(runner, "ask", AUG_Q)
    assert_one_line_error(result, name, "must be")
    assert result.stdout.strip() == ""  # no evidence block first: the settings are read before retrieval


def test_models_pull_unknown_name(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "models"))
    assert_one_line_error(run(runner, "models", "pull", "gpt-17"), "unknown model 'gpt-17'")


# --- models list / doctor ---------------------------------------------------------------------


def test_models_list_with_the_real_models(runner, models_dir, monkeypatch):
    monkeypatch.setenv("RAG_MODELS_DIR", str(models_dir))
    result = run(runner, "models", "list")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "ready" in rows["minilm-l6-int8"] and "ready" in rows["qwen2.5-coder-1.5b"]
    assert "(default)" in rows["qwen2.5-coder-1.5b"]
    assert f"models folder: {models_dir}" in result.stdout


def test_models_list_in_an_empty_folder(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path))
    result = run(runner, "models", "list")
    assert result.exit_code == 0
    rows = [l for l in result.stdout.splitlines() if l.startswith(("qwen", "minilm"))]
    assert len(rows) == 4 and all("missing" in r for r in rows)


def test_doctor_names_the_fixes(runner, monkeypatch, tmp_path):
    monkeypatch.setenv("RAG_MODELS_DIR", str(tmp_path / "no-models"))
    result = run(runner, "doctor")
    assert result.exit_code == 1
    assert "FAIL model qwen2.5-coder-1.5b" in result.stdout and "rag models pull qwen2.5-coder-1.5b" in result.stdout
    assert "FAIL store" in result.stdout and "rag ingest" in result.stdout
    assert "Traceback" not in result.output
