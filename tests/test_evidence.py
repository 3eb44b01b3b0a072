"""rag.evidence: spotting an answer that only restates the question, and quoting the paper instead."""

from __future__ import annotations

import pytest

from conftest import FakeEmbedder
from rag import evidence
from rag.text import root

FIN = "Asynchronous Parallel Reinforcement Learning for Optimizing Propulsive Performance in Fin Ray Control"
FIN_TEXT = (
    "Fish fin rays constitute a sophisticated control system for ray-finned fish. "
    "This study introduces an off-policy DRL algorithm interacting with a fluid-structure interaction environment. "
    "An asynchronous parallel training (APT) strategy is proposed, which fully decouples environment interactions and network optimization. "
    "The learned policies give a superior propulsive performance compared to the optimal sinusoidal actuation function."
)
FIN_Q = (
    "Which study trained an off-policy deep RL controller against a fluid-structure simulation of fish swimming, "
    "decoupling the simulations from the network updates, and what hand-designed actuation did the learned policy beat?"
)


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("What is X called, and on which benchmarks does it help?", ["What is X called", "on which benchmarks does it help"]),
        ("Which work shows A, converts B, and finds that one loss works best?", ["Which work shows A, converts B", "finds that one loss works best"]),
        ("Which dataset is the source and which is the target?", ["Which dataset is the source", "which is the target"]),
        ("What does the BEER regularizer control?", ["What does the BEER regularizer control"]),
        ("Which models, and why?", ["Which models and why"]),
    ],
)
def test_question_parts(question, parts):
    assert evidence.question_parts(question) == parts


def test_root_matches_word_forms():
    assert root("decoupling") == root("decouples")
    assert root("experiments") == root("experimental")
    assert root("loss") == "loss"


def test_an_answer_restating_the_question_adds_nothing():
    echo = f'"{FIN}" [1] trained an off-policy deep RL controller against a fluid-structure simulation. The learned policy beat hand-designed actuation [1].'
    assert evidence.adds_nothing(echo, FIN_Q, [FIN], [FIN_TEXT])


@pytest.mark.parametrize(
    "answer",
    [
        "The learned policy beat the optimal sinusoidal actuation function [1].",
        "It decouples training with an asynchronous parallel training (APT) strategy [1].",
    ],
)
def test_an_answer_with_a_fact_of_the_paper_adds_something(answer):
    assert not evidence.adds_nothing(answer, FIN_Q, [FIN], [FIN_TEXT])


def test_words_from_outside_the_papers_do_not_count_as_an_answer():
    invented = "The learned policy beat a hand-designed actuation of dolphins [1]."
    assert evidence.adds_nothing(invented, FIN_Q, [FIN], [FIN_TEXT])


def test_each_part_gets_its_own_sentence_and_none_is_quoted_twice():
    parts = evidence.question_parts(FIN_Q)
    quotes = evidence.answering_sentences(parts, [(1, FIN_TEXT)], FakeEmbedder())
    assert [q.n for q in quotes] == [1, 1]
    assert "sinusoidal" in quotes[1].sentence
    assert quotes[0].sentence != quotes[1].sentence
    assert all(q.sentence in FIN_TEXT for q in quotes)


def test_rare_words_weigh_more_when_an_idf_is_given():
    text = "Common words appear in this common sentence about models. The meta-prior weighs two terms of the bound."
    idf = {"meta-prior": 5.0, "meta": 3.0, "prior": 3.0}.get
    quotes = evidence.answering_sentences(["which common model uses a meta-prior"], [(2, text)], FakeEmbedder(), lambda t: idf(t, 0.1))
    assert quotes == [evidence.Quote(2, "The meta-prior weighs two terms of the bound.")]


def test_quoted_text_names_the_paper_number():
    quotes = [evidence.Quote(1, "A is B."), evidence.Quote(1, "C is D.")]
    assert evidence.quoted(quotes) == 'The paper states: "A is B." [1] It also states: "C is D." [1]'


def test_no_sentences_no_quotes():
    assert evidence.answering_sentences(["anything"], [(1, "Too short.")], FakeEmbedder()) == []


def test_title_words_used_in_the_answers_own_sentence_count_as_an_answer():
    title = "Q-learners Can Provably Collude in the Iterated Prisoner's Dilemma"
    text = "In this work, we prove that multi-agent Q-learners playing the iterated prisoner's dilemma can learn to collude."
    question = "What game do the multi-agent Q-learners play when they learn to collude?"
    assert not evidence.adds_nothing("The multi-agent Q-learners play the iterated prisoner's dilemma [1].", question, [title], [text])
    assert evidence.adds_nothing(f'"{title}" [1] shows that the multi-agent Q-learners learn to collude.', question, [title], [text])
