"""Yes/no questions: the judge decides the direction, the answer leads with it, and a paper that
does not settle the question never gets a made-up answer (issue #13)."""

from __future__ import annotations

import json

import pytest

from rag import answer as answering, judge as judging, prompts
from rag.errors import InputError
from rag.judge import Calibration, ModelJudge, build_judge, decide, focus
from rag.pipeline import Rag
from rag.settings import Settings
from rag.types import Source

PAPER = Source(
    "p1", "Aspirin and Stroke", (),
    "We enrolled 400 adults. Funding came from a charity. Aspirin lowered stroke risk by 20% in the trial. "
    "Stroke risk rose with age. Weather data were not collected.",
    0.9, 0.9, 1.0,
)


class FixedJudge:
    """Says the same thing for every paper, and records what it was asked."""

    def __init__(self, *verdicts: str):
        self.verdicts = list(verdicts)
        self.asked: list[tuple[str, str]] = []

    def judge(self, question: str, source: Source) -> str:
        self.asked.append((question, source.title))
        return self.verdicts.pop(0) if len(self.verdicts) > 1 else self.verdicts[0]


class Chooser:
    """A backend that gives option probabilities, like the local model's `choose`."""

    name = "chooser"

    def __init__(self, scores):
        self.scores = scores
        self.messages = []

    def choose(self, messages, options):
        self.messages.append(messages)
        assert options == list(prompts.JUDGE_OPTIONS)
        return self.scores

    def generate(self, messages, max_tokens, on_token=None):
        raise AssertionError("a backend with choose() is never asked to generate a judgement")


@pytest.mark.parametrize(
    ("scores", "expected"),
    [([-0.2, -2.0, -3.0], "yes"), ([-2.0, -0.2, -3.0], "no"), ([-1.0, -1.1, -0.5], "not settled"), ([-0.70, -0.75, -3.0], "not settled")],
)
def test_decide_needs_a_clear_lead(scores, expected):
    assert decide(scores, Calibration(yes=0.3, no=0.3, unclear=0.0)) == expected


def test_focus_keeps_the_sentences_about_the_question_in_order():
    text = "We study birds. Aspirin lowered stroke risk. Weather was mild. Stroke risk rose with age."
    assert focus("Does aspirin lower stroke risk?", text, n=2) == "Aspirin lowered stroke risk. Stroke risk rose with age."


def test_model_judge_reads_the_option_probabilities_through_choose():
    backend = Chooser([-3.0, -0.1, -4.0])
    assert ModelJudge(backend).judge("Is it true that aspirin raises stroke risk?", PAPER) == judging.NO
    user = backend.messages[0][-1]["content"]
    assert "Aspirin lowered stroke risk by 20%" in user and "Stroke risk rose with age" in user
    assert "Funding came from a charity" not in user  # the judge reads the sentences about the question


def test_model_judge_without_probabilities_reads_the_first_word(fake_llm):
    fake_llm.queue("No.", "YES", "Maybe")
    judge = ModelJudge(fake_llm)
    assert [judge.judge("Is it true that aspirin raises stroke risk?", PAPER) for _ in range(3)] == ["no", "yes", "not settled"]


def test_build_judge_from_settings(fake_llm, data_dir):
    assert isinstance(build_judge(Settings.load(data_dir=data_dir), fake_llm), ModelJudge)
    assert build_judge(Settings.load(data_dir=data_dir, judge="off"), fake_llm) is None
    with pytest.raises(InputError, match="RAG_JUDGE"):
        build_judge(Settings.load(data_dir=data_dir, judge="maybe"), fake_llm)


@pytest.mark.parametrize(
    ("question", "yes_no"),
    [
        ("Is it true that aspirin lowers stroke risk?", True),
        ("Does data augmentation speed up training?", True),
        ("Can transformers learn to sort?", True),
        ("Are there papers on graph neural networks?", False),
        ("Do any papers study robot grasping?", False),
        ("Which papers study robot grasping?", False),
        ("What does the augmentation method achieve?", False),
        ("Isolation forests: how do they work?", False),
    ],
)
def test_which_questions_are_yes_no(question, yes_no):
    assert answering.asks_yes_no(question) is yes_no


@pytest.fixture
def judged(seeded_real, real_embedder, fake_llm):
    def make(*verdicts):
        judge = FixedJudge(*verdicts)
        return Rag(seeded_real.settings, embedder=real_embedder, generator=fake_llm, judge=judge), judge

    return make


QUESTION = "Is it true that the data-efficient augmentation method speeds up training on CIFAR10?"
AUG = "Data-Efficient Augmentation for Training Neural Networks"


def test_a_yes_leads_the_answer_and_cites_only_the_deciding_paper(judged, fake_llm):
    rag, judge = judged("yes")
    fake_llm.queue(lambda m: "Yes, the method speeds up training by up to 6.3x on CIFAR10 [1].")
    shown: list[str] = []
    result = rag.ask(QUESTION, on_token=shown.append)
    assert result.verdict == "yes" and not result.abstained
    assert result.answer.startswith("Yes: the method") and "6.3x" in result.answer  # the model's own "Yes," dropped
    assert [c.title for c in result.citations] == [AUG] and [s.title for s in result.sources] == [AUG]
    assert "answers the question with yes" in fake_llm.prompts[0]
    assert "".join(shown).strip() == result.answer
    assert json.loads(json.dumps(result.to_json()))["verdict"] == "yes"


def test_a_no_says_what_the_paper_found_and_an_unsupported_account_becomes_the_papers_words(judged, fake_llm):
    rag, _ = judged("no")
    fake_llm.queue("Penguins can fly across oceans [1].")
    result = rag.ask(QUESTION)
    assert result.verdict == "no" and result.answer.startswith("No: ")
    assert "Penguins" not in result.answer and f'"{AUG}" reports: "' in result.answer
    assert "do not repeat the question's claim as true" in fake_llm.prompts[0]
    assert [c.title for c in result.citations] == [AUG]


def test_a_paper_that_does_not_settle_it_is_quoted_and_the_model_is_not_asked(judged):
    rag, judge = judged("not settled")
    shown: list[str] = []
    result = rag.ask(QUESTION, on_token=shown.append)  # the fake model has nothing queued: a call would fail the test
    assert result.verdict == "not settled" and not result.abstained
    assert result.answer.startswith(prompts.NOT_SETTLED) and result.answer.endswith('" [1]')
    assert [c.title for c in result.citations] == [AUG] and [s.title for s in result.sources] == [AUG]
    quoted = result.answer.split(f'"{AUG}": "', 1)[1].rsplit('" [1]', 1)[0]
    pieces = quoted.split(" … ")
    assert len(pieces) == answering.QUOTED_SENTENCES and all(p in result.sources[0].text for p in pieces)  # the paper's own words
    assert "".join(shown) == result.answer
    assert len(judge.asked) == answering.JUDGED_PAPERS


def test_an_unrelated_yes_no_question_is_refused_before_the_judge(judged):
    rag, judge = judged("yes")
    result = rag.ask("Is it true that the capital of Australia is Canberra?")
    assert result.abstained and judge.asked == [] and result.answer == prompts.ABSTAIN_MESSAGE


def test_judge_off_answers_as_before(seeded_real, real_embedder, fake_llm):
    rag = Rag(Settings.load(data_dir=seeded_real.settings.data_dir, judge="off"), embedder=real_embedder, generator=fake_llm)
    fake_llm.queue("It speeds up training by 6.3x [1].")
    result = rag.ask(QUESTION)
    assert result.verdict == "" and not result.answer.startswith(("Yes", "No"))


# --- the real local model as judge ---------------------------------------------------------------

NULL_RESULT = Source(
    "vd", "Vitamin D Supplements and Prevention of Cancer", (),
    "We randomly assigned 25,871 adults to vitamin D3 at 2000 IU per day or placebo. "
    "Supplementation with vitamin D did not result in a lower incidence of invasive cancer than placebo. "
    "Follow-up lasted a median of 5.3 years.",
    0.9, 0.9, 1.0,
)


@pytest.mark.model
def test_the_real_judge_never_endorses_what_the_paper_found_false(default_llm):
    from rag.generation import LlamaCppGenerator

    judge = ModelJudge(LlamaCppGenerator(default_llm))
    assert judge.judge("Is it true that vitamin D supplements lower the incidence of invasive cancer?", NULL_RESULT) != judging.YES
    assert judge.judge("Is it true that vitamin D supplementation did not lower cancer incidence?", NULL_RESULT) != judging.NO


@pytest.mark.model
def test_a_real_yes_no_answer_cites_the_paper_and_quotes_it_when_unsure(seeded_real, real_embedder, default_llm):
    rag = Rag(seeded_real.settings, embedder=real_embedder)  # the real model, as judge and writer
    result = rag.ask("Does the data-efficient augmentation method speed up training on CIFAR10?")
    assert result.verdict in (judging.YES, judging.NOT_SETTLED), result.answer
    assert [c.title for c in result.citations] == [AUG]
    assert result.answer.startswith("Yes: ") or result.answer.startswith(prompts.NOT_SETTLED)
