"""`rag chat`: follow-ups folded into retrieval, /clear, /exit, EOF and Ctrl-C, through CliRunner
with the real embedder on the seeds and a fake model (replies copied from the source text)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from conftest import FakeGenerator
from rag import chat, cli, prompts
from rag.pipeline import Rag
from rag.settings import Settings

AUG = "Data-Efficient Augmentation for Training Neural Networks"
AUG_Q = "What speedups does the data-efficient augmentation method achieve on CIFAR10?"
AUG_FACT = "The subset selection method achieves 6.3x speedup on CIFAR10 and 2.2x speedup on SVHN"
FOLLOW_UP = "and which datasets did they use?"


@pytest.fixture
def chat_cli(runner, monkeypatch, seeded_real, real_embedder):
    llm = FakeGenerator()
    monkeypatch.setenv("RAG_DATA_DIR", str(seeded_real.settings.data_dir))
    runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=real_embedder, generator=llm)
    return llm


def test_follow_up_detection():
    assert chat.is_follow_up("and which of those use transformers?")
    assert chat.is_follow_up("What datasets did they use?")
    assert chat.is_follow_up("why?")
    assert not chat.is_follow_up("Which papers study graph neural networks for recommendation?")
    assert not chat.is_follow_up(AUG_Q)


def test_follow_up_is_answered_from_the_previous_papers(runner, chat_cli):
    chat_cli.queue(f"{AUG_FACT} [1].", f"{AUG_FACT} [1].")
    result = runner.invoke(cli.app, ["chat"], input=f"{AUG_Q}\n{FOLLOW_UP}\n/exit\n")
    assert result.exit_code == 0, (result.output, result.exception)
    out = result.stdout
    assert out.count(f"{AUG_FACT} [1].") == 2  # both answers streamed
    assert out.count(f"[1] {AUG}") == 2  # and both list their source
    assert len(chat_cli.calls) == 2
    # The model sees the follow-up as typed, with the paper the conversation is about.
    assert f"Question: {FOLLOW_UP}" in chat_cli.prompts[1]
    assert AUG in chat_cli.prompts[1]


def test_retrieval_query_folds_in_the_previous_turn_until_cleared(seeded_real, real_embedder):
    llm = FakeGenerator([f"{AUG_FACT} [1]."])
    session = chat.ChatSession(Rag(seeded_real.settings, embedder=real_embedder, generator=llm))
    assert session.retrieval_query(FOLLOW_UP) == FOLLOW_UP  # nothing to lean on yet
    session.ask(AUG_Q)
    folded = session.retrieval_query(FOLLOW_UP)
    assert folded.startswith(FOLLOW_UP) and AUG_Q in folded and AUG in folded
    standalone = "Which papers study graph neural networks for recommendation?"
    assert session.retrieval_query(standalone) == standalone
    session.clear()
    assert session.retrieval_query(FOLLOW_UP) == FOLLOW_UP


def test_clear_eof_and_unknown_commands(runner, chat_cli):
    chat_cli.queue(f"{AUG_FACT} [1].")
    result = runner.invoke(cli.app, ["chat"], input=f"{AUG_Q}\n/clear\n/nope\n\n")  # ends at EOF, no /exit
    assert result.exit_code == 0, (result.output, result.exception)
    assert "(conversation cleared)" in result.stdout
    assert "unknown command /nope" in result.stdout
    assert len(chat_cli.calls) == 1


def test_uncovered_question_abstains_without_the_model(runner, chat_cli):
    result = runner.invoke(cli.app, ["chat"], input="What is the boiling point of ethanol at sea level?\n/exit\n")
    assert result.exit_code == 0, result.output
    assert prompts.ABSTAIN_MESSAGE in result.stdout and "Sources:" not in result.stdout
    assert chat_cli.calls == []


def test_ctrl_c_stops_one_answer_not_the_session(seeded_real, real_embedder):
    def interrupted(_messages):
        raise KeyboardInterrupt

    llm = FakeGenerator([interrupted, f"{AUG_FACT} [1]."])
    session = chat.ChatSession(Rag(seeded_real.settings, embedder=real_embedder, generator=llm))
    lines = iter([AUG_Q, AUG_Q])
    out: list[str] = []
    answered = chat.run(session, lambda: next(lines, None), out.append)
    text = "".join(out)
    assert "(answer stopped)" in text
    assert answered == 1 and f"{AUG_FACT} [1]." in text and f"[1] {AUG}" in text


def test_chat_on_an_empty_store_is_one_line_error():
    result = CliRunner().invoke(cli.app, ["chat"], input="hello\n")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: ") and "rag ingest" in result.stderr
