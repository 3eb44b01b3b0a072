"""Does a sentence say what its evidence says, the opposite, or something it does not state?
The word-overlap check cannot tell "ALDH1 predicts better outcomes" from a paper that found
worse ones: every word is shared. What flips meaning while keeping the words is a negation or a
word of direction, so those are compared between the sentence and the evidence sentences it
matches best. Standard library only, so the sentence check (layer 1) can use it while it streams.

Measured on SciFact's claims against their evidence abstracts (scripts/calibrate_meaning.py,
docs/meaning_calibration.json): it finds only a fifth of the contradictions (no word-level check
sees "1 in 5 million" against "1/2000"), and flags about 6% of supported pairs; it is the cheap
part of a meaning check, not all of one."""

from __future__ import annotations

import re

from rag.text import root, roots, split_sentences, tokenize

ENTAILED, CONTRADICTED, NOT_STATED = "entailed", "contradicted", "not stated"

_NEGATION = re.compile(
    r"\b(?:not|no|never|neither|nor|none|without|cannot|lacks?|lacking|absence|absent|fails?|failed|unable|"
    r"unaffected|unchanged|unrelated|independent of|\w+n't)\b",
    re.I,
)
# Words that set a direction on an axis: +1 up, -1 down. A sentence that goes up where its evidence
# only goes down (or the reverse) says the opposite with the same nouns.
_DIRECTION: dict[str, tuple[str, int]] = {}
for _axis, _up, _down in (
    ("amount", "increase increases increased increasing increment higher high more greater elevated elevation elevates raise raises raised rise rises rising enhance enhances enhanced enhancement upregulated upregulates upregulation up-regulated augment augmented augments boost boosts boosted gain gains exceed exceeds larger",
     "decrease decreases decreased decreasing lower low less fewer reduce reduces reduced reducing reduction decline declines declined diminish diminishes diminished downregulated downregulates downregulation down-regulated attenuate attenuates attenuated loss lose loses lost drop drops dropped smaller"),
    ("effect", "promote promotes promoted promoting activate activates activated activation induce induces induced stimulate stimulates stimulated facilitate facilitates facilitated",
     "inhibit inhibits inhibited inhibiting inhibition suppress suppresses suppressed suppression block blocks blocked impair impairs impaired prevent prevents prevented abolish abolishes abolished"),
    ("quality", "better improve improves improved improvement favorable favourable beneficial benefit benefits protective protects",
     "worse worsen worsens worsened poorer poor unfavorable unfavourable harmful harm harms detrimental deleterious"),
    ("speed", "faster accelerate accelerates accelerated accelerating earlier quicker rapid",
     "slower slow slows slowed delay delays delayed later"),
    ("risk", "risk susceptibility vulnerability", "protection resistance"),
    ("sign", "positive positively", "negative negatively inverse inversely"),
):
    for _word in _up.split():
        _DIRECTION[_word] = (_axis, 1)
    for _word in _down.split():
        _DIRECTION[_word] = (_axis, -1)

_WORDS = re.compile(r"[a-z]+(?:-[a-z]+)?")
NEGATION_SCOPE = 1  # content words after "not" that it bears on (1, 2 and 3 measured alike)
PARAPHRASE = 0.6  # share of a sentence's words its evidence must hold for a negation to count


def negated(text: str, other: str) -> bool:
    """A negation in `text` bears on `other` when the content word after it is a word of `other`:
    "does not block T cells" says nothing against a sentence without "block" (unscoped,
    negations differed in 19% of SciFact's supported pairs)."""
    theirs = roots(other)
    for m in _NEGATION.finditer(text):
        if {root(t) for t in tokenize(text[m.end() :])[:NEGATION_SCOPE]} & theirs and _in_main_clause(text, m.start()):
            return True
    return False


_CLAUSE_START = re.compile(r"[,;:()]|\b(?:although|though|whereas|while|since|because|but|if|unless)\b", re.I)
_SUBORDINATE = ("although", "though", "whereas", "while", "since", "because", "if", "unless")


def _in_main_clause(text: str, at: int) -> bool:
    """A negation in an "although"/"since" clause qualifies the claim, it does not deny it:
    "Although not applicable to wide networks since they do not have unique minima, we show ...
    unique minima" was withheld from a right dev answer before this rule."""
    opener = ""
    for m in _CLAUSE_START.finditer(text, 0, at):
        opener = m.group().lower()
    return opener not in _SUBORDINATE


def directions(text: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for word in _WORDS.findall(text.lower()):
        if word in _DIRECTION:
            axis, sign = _DIRECTION[word]
            out.setdefault(axis, set()).add(sign)
    return out


def opposed(sentence: str, evidence: str) -> bool:
    """The sentence goes one way on an axis where the evidence sentence goes only the other way, or
    one of them is negated and the other not (an even number of flips says the same thing). A
    negation counts only against a close paraphrase (the evidence holds PARAPHRASE of the
    sentence's words): against a loosely related sentence it flagged 12% of supported pairs."""
    mine, theirs = directions(sentence), directions(evidence)
    flips = sum(1 for axis, signs in mine.items() if len(signs) == 1 and theirs.get(axis) and not (signs & theirs[axis]))
    words = set(tokenize(sentence))
    if len(words & set(tokenize(evidence))) >= PARAPHRASE * len(words):
        flips += negated(sentence, evidence) != negated(evidence, sentence)
    return flips % 2 == 1


def evidence_for(sentence: str, text: str) -> str:
    """The sentence of `text` sharing the most words with `sentence` ("" when none shares one).
    Comparing with one sentence, not two, keeps an unrelated neighbour's "not" out of it."""
    wanted = set(tokenize(sentence))
    best, shared = "", 0
    for candidate in split_sentences(text):
        n = len(wanted & set(tokenize(candidate)))
        if n > shared:
            best, shared = candidate, n
    return best


def compare(sentence: str, text: str) -> str:
    """ENTAILED, CONTRADICTED or NOT_STATED for `sentence` against a paper's `text`: not stated
    when no sentence of the text shares its words, contradicted when the best-matching one says
    the opposite, else entailed (as far as words of negation and direction can tell)."""
    best = evidence_for(sentence, text)
    if not best:
        return NOT_STATED
    return CONTRADICTED if opposed(sentence, best) else ENTAILED
