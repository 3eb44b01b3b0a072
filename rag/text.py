"""Plain-text helpers every layer shares, standard library only: words, sentences, citation
markers and titles, one copy each. The BM25 index, the sentence check and the quote finder must
agree on what a word is, or a claim the index matched would fail the check."""

from __future__ import annotations

import math
import re

# --- words ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+(?:[.\-][a-z0-9]+)*")
STOPWORDS = frozenset(
    "a about above after all also an and any are as at be been being between both but by can could did do does "
    "doing during each few for from further had has have having he her here hers how i if in into is it its itself "
    "just me more most my no nor not of off on once only or other our out over own same she should so some such "
    "than that the their them then there these they this those through to too under until up very was we were what "
    "when where which while who whom why will with would you your paper papers study studies work works use uses "
    "used using show shows propose proposed summarize summarise summary describe explain tell collection report "
    "reported reports say says according find found kind type".split()
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ments", "ment", "ally", "ies", "ed", "es", "al", "ly", "er", "s", "e")


def fold_plural(token: str) -> str:
    """Light plural folding, all BM25 gets: 'networks' -> 'network', 'studies' -> 'study'."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def tokenize(text: str) -> list[str]:
    """Lower-case words without stop words, plurals folded; 'PV-RNN' also yields 'pv' and 'rnn'."""
    tokens: list[str] = []
    for tok in _WORD.findall(text.lower()):
        parts = [tok] + (re.split(r"[.\-]", tok) if ("-" in tok or "." in tok) and not tok.replace(".", "").isdigit() else [])
        tokens.extend(fold_plural(p) for p in parts if p and p not in STOPWORDS)
    return tokens


def root(word: str) -> str:
    """A cruder stem on top of `tokenize`, enough to match 'decoupling' with 'decouples' and
    'experiments' with 'experimental' across a question and a sentence."""
    for _ in range(2):
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                word = word[: -len(suffix)]
                break
        else:
            break
    return word


def roots(text: str) -> set[str]:
    return {root(t) for t in tokenize(text)}


# --- sentences -----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def split_sentences(text: str) -> list[str]:
    """A paper's sentences: a full stop, '!' or '?' followed by a capital, digit or quote."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


_CODE_CHARS = re.compile(r"[=<>_\\|$#]|->|::")  # not braces or backticks: abstracts write {O}(log T), `teacher'
# A reported statistic ("p < 0.01", "r² = 0.69", "OR = 3.8; 95% CI = 2.2-6.6") is a finding, not code.
_STATISTIC = re.compile(r"(?<![\w.])(?:p|P|r|R|r²|R²|n|N|OR|HR|RR|CI|SD|SE|df|t|F|z|U|β|χ²|κ|ρ|AUC|mean|median)\s*[=<>≤≥]\s*[-−]?\.?\d")


def is_prose(sentence: str) -> bool:
    """A sentence a reader can be shown as what the paper says, not a table row, a code listing or
    an equation pulled out of a PDF: mostly words, few numbers, few code symbols. The PaSa paper's
    results table read "PaSa-7b 0.7931 0.1448 0.4834 0.6947 0.6334 0.5301 ..." as one sentence."""
    tokens = [t for t in sentence.split() if re.search(r"\w", t)]  # a lone "/" or "±" is neither
    if len(tokens) < 4:
        return False
    words = sum(bool(re.fullmatch(r"[(\"'“]*[A-Za-z][A-Za-z'’-]*[)\"'”.,;:!?]*", t)) for t in tokens)
    numbers = sum(bool(re.fullmatch(r"[(+\-−]*\d[\d.,%x×]*[)]*[.,;:]?", t)) for t in tokens)
    code = len(_CODE_CHARS.findall(_STATISTIC.sub(" 0", sentence)))
    return words >= 0.5 * len(tokens) and numbers <= 0.4 * len(tokens) and code <= max(2, len(tokens) // 8)


def focused(text: str, question: str, chars: int) -> str:
    """The sentences of `text` a question needs, within `chars`: the first (what the paper does),
    then the sentences sharing the most words with the question, each with the one after it, in
    the paper's order; a gap is marked with "…". The model reads every token of its prompt before
    it writes one (65-80 tokens/s on a 2-core laptop)."""
    sentences = split_sentences(text)
    if len(text) <= chars or len(sentences) < 3:
        return text
    wanted = roots(question)
    held = [roots(s) for s in sentences]
    # A question word in every sentence (the paper's topic) tells them apart less than a rare one.
    weight = {w: math.log((len(sentences) + 1) / (1 + sum(w in h for h in held))) for w in wanted}
    ranked = sorted(range(1, len(sentences)), key=lambda i: -sum(weight[w] for w in wanted & held[i]))
    keep, used = {0}, len(sentences[0])
    for i in ranked:
        for j in (i, i + 1):
            if j < len(sentences) and j not in keep and used + len(sentences[j]) <= chars:
                keep.add(j)
                used += len(sentences[j]) + 1
    out, last = [], -1
    for i in sorted(keep):
        out.append(("… " if i != last + 1 else "") + sentences[i])
        last = i
    return " ".join(out)


def join_overlapping(texts: list[str]) -> str:
    """Consecutive chunks joined into one text, the sentences they repeat as overlap kept once."""
    joined = texts[0] if texts else ""
    for text in texts[1:]:
        overlap = next((i for i in range(min(len(joined), len(text)), 10, -1) if joined.endswith(text[:i])), 0)
        joined = f"{joined} {text[overlap:].lstrip()}" if overlap < len(text) else joined
    return joined


# --- citation markers ----------------------------------------------------------------------------

MARKER = re.compile(r"\[(\d+)\]")


def without_markers(text: str, replacement: str = " ") -> str:
    """`text` with every `[n]` marker replaced, so a claim's words are checked without them."""
    return MARKER.sub(replacement, text)


def cited_numbers(text: str) -> list[int]:
    """The `[n]` numbers in the order the text first uses them."""
    return list(dict.fromkeys(int(n) for n in MARKER.findall(text)))


# --- titles --------------------------------------------------------------------------------------


def normalize_title(title: str) -> str:
    """Lower-case words and digits only: the form two spellings of one title share."""
    return " ".join(re.findall(r"[a-z0-9]+", title.lower()))


def without_titles(text: str, titles: list[str]) -> str:
    """`text` with each title it names (any case) blanked out, longest first so a title that
    contains another is removed whole."""
    for title in sorted((t.strip() for t in titles), key=len, reverse=True):
        text = re.sub(re.escape(title), " ", text, flags=re.I)
    return text
