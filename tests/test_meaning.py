"""The meaning check: a sentence that keeps its paper's words but turns their direction or drops
their negation is contradicted, never shown as supported (issue #13)."""

from __future__ import annotations

import pytest

from rag import meaning
from rag.citations import SentenceChecker
from rag.judge import ModelJudge, opposes
from rag.types import Source

PAPER = (
    "We followed 300 HIV patients receiving HAART for five years. "
    "A stable partnership is associated with a slower rate of progression to AIDS or death. "
    "Aspirin did not reduce the rate of stroke in older adults."
)


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        ("A stable partnership is associated with a slower rate of progression to AIDS.", meaning.ENTAILED),
        ("A stable partnership is associated with a faster rate of progression to AIDS.", meaning.CONTRADICTED),
        ("Aspirin reduced the rate of stroke in older adults.", meaning.CONTRADICTED),
        ("Aspirin did not reduce the rate of stroke in older adults.", meaning.ENTAILED),
        # two flips say the same thing again
        ("Aspirin did not increase the rate of stroke in older adults.", meaning.CONTRADICTED),
        ("Quantum annealers factor integers.", meaning.NOT_STATED),
    ],
)
def test_compare_sees_direction_and_negation(sentence, expected):
    assert meaning.compare(sentence, PAPER) == expected


def test_a_negation_about_other_words_says_nothing():
    evidence = "Ablation of ITK does not block T cell activation but causes T cells to accumulate in lymphoid organs."
    assert not meaning.opposed("ITK ablation causes T cells to accumulate in lymphoid organs.", evidence)
    assert meaning.opposed("ITK ablation blocks T cell activation.", evidence)


def test_a_negation_against_a_loose_match_is_not_a_contradiction():
    # the evidence shares few of the sentence's words: it may not be about the same thing
    assert not meaning.opposed("The program had no impact on blood glucose, weight or quality of life after three years.", "Weight was measured.")


def test_checker_withholds_a_contradicted_sentence_and_says_why():
    checker = SentenceChecker([Source("p", "Partnerships and HIV", (), PAPER, 0.9, 0.9, 1.0)], 0.5)
    shown = checker.feed("Stable partnerships are associated with a faster rate of progression to AIDS [1]. ")
    shown += checker.feed("The patients received HAART for five years [1].") + checker.flush()
    assert "faster" not in shown and "HAART" in shown
    faster, haart = checker.sentences
    assert (faster.supported, faster.meaning) == (False, meaning.CONTRADICTED)
    assert faster.quote.startswith("A stable partnership")  # the reader can see what the paper said
    assert (haart.supported, haart.meaning) == (True, meaning.ENTAILED)


def test_checker_marks_a_sentence_no_paper_states():
    checker = SentenceChecker([Source("p", "Partnerships and HIV", (), PAPER, 0.9, 0.9, 1.0)], 0.5)
    checker.feed("Quantum annealers factor integers quickly [1].")
    checker.flush()
    assert [(s.supported, s.meaning) for s in checker.sentences] == [(False, meaning.NOT_STATED)]


class Sure:
    """A judge backend certain of YES, whatever the paper says."""

    def choose(self, messages, options):
        return [-0.01, -6.0, -6.0]


def test_judge_never_says_yes_when_the_words_say_the_opposite():
    paper = Source("p", "Partnerships and HIV", (), PAPER, 0.9, 0.9, 1.0)
    against = "Is it true that a stable partnership is associated with a faster rate of progression to AIDS?"
    along = "Is it true that a stable partnership is associated with a slower rate of progression to AIDS?"
    assert opposes(against, PAPER) and not opposes(along, PAPER)
    assert ModelJudge(Sure()).judge(against, paper) == "not settled"
    assert ModelJudge(Sure()).judge(along, paper) == "yes"


def test_a_negation_in_an_although_clause_qualifies_rather_than_denies():
    evidence = ("Although not directly applicable to wide networks since they do not have unique minima, we show that "
                "adding a small random perturbation makes the loss satisfy QG with unique minima.")
    assert not meaning.opposed("Adding a small random perturbation makes the loss satisfy QG with unique minima.", evidence)
    assert meaning.opposed("Adding a small random perturbation does not make the loss satisfy QG with unique minima.", evidence)
