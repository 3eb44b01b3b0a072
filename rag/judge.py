"""Which way do the papers answer a yes/no question: yes, no, or not at all? The word-overlap
sentence check cannot tell: "ALDH1 is associated with better outcomes" shares every word with a
paper that found worse ones, and on SciFact's contradicted claims the answers said "Yes" 19 times
in 20. One method to implement (`judge`), so the local model, a remote one and a test fake are
interchangeable; `build_judge` picks from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from rag import meaning, prompts
from rag.text import is_prose, split_sentences, tokenize
from rag.types import Source

if TYPE_CHECKING:
    from rag.generation import Generator
    from rag.settings import Settings

YES, NO, NOT_SETTLED = "yes", "no", "not settled"
FOCUS_SENTENCES = 3


class Judge(Protocol):
    def judge(self, question: str, source: Source) -> str:
        """YES, NO or NOT_SETTLED: how `source` answers the yes/no `question`."""
        ...


@dataclass(frozen=True)
class Calibration:
    """How far (in log-probability) a reply must lead the others to count. The model leans to
    YES whatever the paper says, so YES needs a clear lead and the rest is 'not settled'."""

    yes: float  # YES over NO
    no: float  # NO over YES
    unclear: float  # the winner over UNCLEAR


# From scripts/calibrate_judge.py on 120 SciFact train claims (docs/judge_calibration.json): the
# 1.5B model's margins barely separate the labels (SUPPORT against CONTRADICT: AUC ~0.63), and
# with these margins it endorsed 0 of 40 contradicted claims and said "no" to 0 of 40 supported
# ones, at the price of deciding only 4 of 80. Looser margins bought a few right directions with
# wrong ones ("no" to 45% of the claims the abstract does not settle); a wrong direction is the
# failure this exists to prevent, so the rest is "not settled", shown with the paper's words.
# A question whose negation or direction words oppose the paper's closest sentences
# (`meaning.opposed`) is never answered YES. Letting the opposition also lower the lead NO needs
# was measured on the same claims and dropped: every margin that said "no" to more contradicted
# claims also said it to a supported one.
CALIBRATION = Calibration(yes=0.6, no=1.1, unclear=1.0)


def decide(scores: list[float], calibration: Calibration = CALIBRATION, opposed: bool = False) -> str:
    yes, no, unclear = scores
    if yes - no >= calibration.yes and yes - unclear >= calibration.unclear and not opposed:
        return YES
    if no - yes >= calibration.no and no - unclear >= calibration.unclear:
        return NO
    return NOT_SETTLED


def opposes(question: str, text: str) -> bool:
    """The question's negation or direction words say the opposite of the paper's closest sentences."""
    return meaning.opposed(question, meaning.evidence_for(question, text))


def focus_sentences(question: str, text: str, n: int = FOCUS_SENTENCES) -> list[str]:
    """The `n` sentences sharing the most words with the question, in the paper's order."""
    wanted = set(tokenize(question))
    sentences = [s for s in split_sentences(text) if is_prose(s)] or split_sentences(text)
    best = sorted(range(len(sentences)), key=lambda i: -len(wanted & set(tokenize(sentences[i]))))[:n]
    return [sentences[i] for i in sorted(best)]


def focus(question: str, text: str, n: int = FOCUS_SENTENCES) -> str:
    """What the judge reads: a small model judges two or three sentences far better than a whole
    abstract (and reads them faster)."""
    return " ".join(focus_sentences(question, text, n))


class ModelJudge:
    """The answering model as judge: one token, read with its probabilities where the backend
    gives them (the local model), else the reply's first word."""

    def __init__(self, generator: "Generator", calibration: Calibration = CALIBRATION):
        self.generator = generator
        self.calibration = calibration

    @staticmethod
    def messages(question: str, source: Source) -> list[dict]:
        paper = prompts.format_source(1, source.title, (), focus(question, source.text))
        return prompts.messages(prompts.JUDGE.format(question=question, sources=paper))

    def judge(self, question: str, source: Source) -> str:
        messages = self.messages(question, source)
        opposed = opposes(question, source.text)
        choose = getattr(self.generator, "choose", None)
        if choose is not None:
            return decide(choose(messages, list(prompts.JUDGE_OPTIONS)), self.calibration, opposed)
        reply = self.generator.generate(messages, 3).text.strip().split(maxsplit=1)
        word = reply[0].strip(".,:;!").upper() if reply else ""
        verdict = {"YES": YES, "NO": NO}.get(word, NOT_SETTLED)
        return NOT_SETTLED if verdict == YES and opposed else verdict


def build_judge(settings: "Settings", generator: "Generator") -> Judge | None:
    return None if settings.judge == "off" else ModelJudge(generator)  # the value was checked with the settings
