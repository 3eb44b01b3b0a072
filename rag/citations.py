"""Citations are enforced in code, not only asked for in the prompt: markers that do not name a
source the model was given are removed while the answer streams, and numbers become titles here."""

from __future__ import annotations

import re

from rag import meaning
from rag.prompts import ABSTAIN_MARKER
from rag.text import (
    cited_numbers,
    is_prose,
    split_sentences,
    tokenize,
    without_markers,
    without_titles,
)
from rag.types import CheckedSentence, Citation, Source

_MARKER = re.compile(r"^\[\s*(?:(?:sources?|papers?|refs?)\s*)?(\d+(?:\s*(?:,|;|and|-|–)\s*(?:(?:sources?|papers?)\s*)?\d+)*)\s*\]$", re.I)
_NUMBERS = re.compile(r"\d+")
_ABSTAIN_PHRASES = re.compile(
    r"^(?:none of the (?:papers|sources)|the (?:provided |given )?(?:papers|sources) (?:do not|don't|does not)"
    r"|(?:i|we) (?:could not|cannot|can't) find|there is no (?:information|mention))",
    re.I,
)
_MAX_MARKER = 40


class CitationFilter:
    """Feed tokens, get display text. Holds back a possible abstention marker at the very start
    and any '[...]' until it is closed, then keeps only numbers in 1..n_sources."""

    def __init__(self, n_sources: int):
        self.n_sources = n_sources
        self.out: list[str] = []
        self._bracket = ""
        self._head = ""  # text held while it could still be the abstention marker
        self._head_done = False
        self._space = ""
        self.abstained = False

    def feed(self, text: str) -> str:
        piece = self._settle("".join(self._feed_char(ch) for ch in text))
        self.out.append(piece)
        return piece

    def _settle(self, piece: str) -> str:
        """Hold trailing spaces until the next character is known, so the gap a dropped marker
        leaves before punctuation never reaches the reader (streamed text equals `tidy`)."""
        text = self._space + piece
        kept = text.rstrip(" \t")
        self._space = text[len(kept) :]
        return _close_gaps(kept)

    def _feed_char(self, ch: str) -> str:
        if self.abstained:
            return ""
        if not self._head_done:
            self._head += ch
            probe = self._head.lstrip().upper()
            if probe.startswith(ABSTAIN_MARKER):
                self.abstained = True
                return ""
            if ABSTAIN_MARKER.startswith(probe):
                return ""
            self._head_done = True
            held, self._head = self._head, ""
            return "".join(self._route(c) for c in held)
        return self._route(ch)

    def _route(self, ch: str) -> str:
        if self._bracket:
            self._bracket += ch
            if ch == "]":
                done, self._bracket = self._bracket, ""
                return self._rewrite(done)
            if ch == "\n" or len(self._bracket) > _MAX_MARKER:
                done, self._bracket = self._bracket, ""
                return done
            return ""
        if ch == "[":
            self._bracket = ch
            return ""
        return ch

    def _rewrite(self, marker: str) -> str:
        m = _MARKER.match(marker)
        if not m:
            return marker
        numbers = [int(x) for x in _NUMBERS.findall(m.group(1))]
        if re.search(r"\d\s*[-–]\s*\d", m.group(1)) and len(numbers) == 2:
            numbers = list(range(numbers[0], numbers[1] + 1))
        valid = list(dict.fromkeys(n for n in numbers if 1 <= n <= self.n_sources))
        return "".join(f"[{n}]" for n in valid)

    def flush(self) -> str:
        tail = ""
        if not self._head_done and not self.abstained:
            self._head_done = True
            held, self._head = self._head, ""
            tail += "".join(self._route(c) for c in held)
        if self._bracket:
            tail += self._bracket if not _MARKER.match(self._bracket + "]") else ""
            self._bracket = ""
        tail = self._settle(tail)
        self._space = ""
        self.out.append(tail)
        return tail

    @property
    def text(self) -> str:
        return tidy("".join(self.out))


def _close_gaps(text: str) -> str:
    return re.sub(r"[ \t]+(?=[.,;:!?])", "", re.sub(r"[ \t]{2,}", " ", text))


def tidy(text: str) -> str:
    """Close the gap a removed marker leaves ("water [3]." -> "water.", "a [9] b" -> "a b")."""
    return _close_gaps(text).strip()


def clean(raw: str, n_sources: int) -> tuple[str, bool]:
    """The same transformation as streaming, for text that arrived whole."""
    f = CitationFilter(n_sources)
    f.feed(raw)
    f.flush()
    return f.text, f.abstained or is_abstention(f.text)


def is_abstention(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.upper().startswith(ABSTAIN_MARKER) or bool(_ABSTAIN_PHRASES.match(stripped))


def citations_for(text: str, sources: list[Source]) -> list[Citation]:
    """Numbers in the order the answer first uses them; only numbers of sources given to the model.
    Each carries the sentence of its paper that best supports the claims citing it."""
    claims = split_sentences(text)
    out = []
    for n in cited_numbers(text):
        if 1 <= n <= len(sources):
            citing = " ".join(c for c in claims if f"[{n}]" in c)
            out.append(Citation(n, sources[n - 1].paper_id, sources[n - 1].title, best_quote(citing, sources[n - 1].text)))
    return out


def best_quote(claim: str, source_text: str) -> str:
    """The source sentence sharing the most content words with the claim: what `--show-quotes` prints.
    A table row or a code line is quoted only when the passage has no prose sentence."""
    sentences = split_sentences(source_text)
    candidates = [s for s in sentences if is_prose(s)] or sentences
    return max(candidates, key=lambda s: support(claim, s) * min(1.0, len(s) / 40), default="")


# A full stop ends a sentence unless it ends an initial ("Peter E. Caines") or a common abbreviation.
_BOUNDARY = re.compile(r"(?<![\s:]\d)(?<!\s[A-Z])(?<!\bal)(?<!\be\.g)(?<!\bi\.e)(?<!\bvs)(?<!\bFig)[.!?](?:\s*\[\d+\])*(?=\s+[A-Z0-9\"'(\[])")
_NUMBER = re.compile(r"(?<![\w\[])\d+(?:[.,]\d+)*%?")


def support(sentence: str, source_text: str) -> float:
    """Share of the sentence's content words found in the source: a cheap, explainable check
    that a claim came from the paper and not from the model's memory."""
    words = set(tokenize(without_markers(sentence)))
    if not words:
        return 1.0
    return len(words & set(tokenize(source_text))) / len(words)




def numbers_found(sentence: str, source_text: str) -> bool:
    """Every multi-digit or decimal number in a claim must appear in its source."""
    plain = without_markers(sentence)
    wanted = [n.rstrip("%").replace(",", "") for n in _NUMBER.findall(plain)]
    have = source_text.replace(",", "")
    return all(n in have for n in wanted if len(n) > 1 or "." in n)


class SentenceChecker:
    """Releases the answer sentence by sentence, each checked against the papers it cites
    (or attributed to the one given paper that clearly supports it). Sentences no given paper
    supports are held back, so what the reader sees is what the papers say."""

    def __init__(self, sources: list[Source], threshold: float = 0.5, question: str = ""):
        self.sources = sources
        self.threshold = threshold
        # Words the user asked with are not the model's claims: restating the question while
        # citing a relevant paper ("[1] shows that ...") is an answer. Numbers get no such pass.
        self.question = question
        self.sentences: list[CheckedSentence] = []
        self._buffer = ""

    def feed(self, text: str) -> str:
        self._buffer += text
        out = []
        while (end := self._boundary()) is not None:
            sentence, self._buffer = self._buffer[:end], self._buffer[end:]
            out.append(self._release(sentence))
        return "".join(out)

    def _boundary(self) -> int | None:
        """End of the first whole sentence; a '?' inside a quoted title ("Do networks learn ...?")
        does not end one, unless the quote never closes."""
        for m in _BOUNDARY.finditer(self._buffer):
            if self._buffer[: m.end()].count('"') % 2 == 0 or m.end() > 400:
                return m.end()
        return None

    def flush(self, truncated: bool = False) -> str:
        """`truncated`: the model hit its token limit, so an unfinished last sentence is dropped."""
        sentence, self._buffer = self._buffer, ""
        if truncated and self.kept and not sentence.rstrip().rstrip("]0123456789[ ").endswith((".", "!", "?")):
            return ""
        return self._release(sentence)

    @property
    def kept(self) -> list[CheckedSentence]:
        return [s for s in self.sentences if s.supported]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.kept)

    def _text_of(self, numbers) -> str:
        return " ".join(_read_as(self.sources[n - 1], self.sources[n - 1].text) for n in numbers)

    def _numbers_found(self, sentence: str, numbers) -> bool:
        """Every number must be in the passage the sentence's own words come from: a full-text
        paper gives the model several passages, and a number from one next to a claim from another
        ("9,280 summaries" became "4,500", taken from a passage about something else) is not
        supported. Abstracts are one passage each, checked together as before."""
        if all(len(self.sources[n - 1].passages) < 2 for n in numbers):
            return numbers_found(sentence, self._text_of(numbers))
        texts = []
        for n in numbers:
            src = self.sources[n - 1]
            texts += [_read_as(src, p.text) for p in src.passages] if len(src.passages) > 1 else [_read_as(src, src.text)]
        scores = [support(sentence, text) for text in texts]
        return any(numbers_found(sentence, text) for text, score in zip(texts, scores) if score == max(scores))

    def _support(self, sentence: str, numbers) -> float:
        """A title the sentence names is not a claim: its words would vouch for whatever else the
        sentence says about that paper (a mix-up of two papers under one title passed before)."""
        sentence = without_titles(sentence, [s.title for s in self.sources if len(s.title.strip()) > 12])
        return support(sentence, f"{self.question} {self._text_of(numbers)}")

    def _release(self, raw: str) -> str:
        sentence = tidy(raw)
        claim = without_markers(sentence, "").strip(" .,;:")
        if not claim or claim.isdigit() or _DECLINED.fullmatch(claim):
            return ""  # a stray marker, or a paper the model set aside: no claim of its own
        sentence = name_papers(sentence, [s.title for s in self.sources])
        numbers = [n for n in cited_numbers(sentence) if 1 <= n <= len(self.sources)]
        score = self._support(sentence, numbers) if numbers else 0.0
        if not numbers or score < self.threshold or not self._numbers_found(sentence, numbers):
            # A sentence that names a paper's title is about that paper: it is never moved to another.
            named = [n for n, src in enumerate(self.sources, 1) if len(src.title) > 12 and src.title.strip().lower() in sentence.lower()]
            best = max(named or range(1, len(self.sources) + 1), key=lambda n: self._support(sentence, [n]), default=0)
            best_score = self._support(sentence, [best]) if best else 0.0
            if best and best_score >= self.threshold and self._numbers_found(sentence, [best]):
                sentence = _recite(sentence, best)
                numbers, score = [best], best_score
            else:
                self.sentences.append(CheckedSentence(sentence, tuple(numbers), score, False, meaning=meaning.NOT_STATED))
                return ""
        cited = self.sources[numbers[0] - 1]
        quote = best_quote(sentence, cited.text)
        page = cited.page_of(quote)
        if self._contradicted(sentence, numbers):
            # The same words, the opposite direction: never shown as supported.
            self.sentences.append(CheckedSentence(sentence, tuple(numbers), score, False, quote, meaning.CONTRADICTED, page))
            return ""
        first = not self.kept
        self.sentences.append(CheckedSentence(sentence, tuple(numbers), score, True, quote, meaning.ENTAILED, page))
        return sentence if first else " " + sentence

    def _contradicted(self, sentence: str, numbers) -> bool:
        """Checked against the text of each paper it cites; the titles it names are not claims."""
        claim = without_titles(without_markers(sentence), [s.title for s in self.sources if len(s.title.strip()) > 12])
        return any(meaning.compare(claim, self.sources[n - 1].text) == meaning.CONTRADICTED for n in numbers)


def _read_as(source: Source, text: str) -> str:
    """A source's text as the checks read it: its title and authors are the paper's words too."""
    return f"{source.title}. {' '.join(source.authors)}. {text}"


_DECLINED = re.compile(r"(?:(?:it|this paper) is )?(?:not relevant|irrelevant|not about the (?:question|topic))(?: to the (?:question|topic))?", re.I)
_LEADING = re.compile(r"^((?:\[\d+\]\s*)+)(?:(?:It|They|This (?:paper|study|work)|The (?:paper|study|work))\s+)?")
_TRAILING = re.compile(r"\b(is|are|was|were)\s+((?:\[\d+\](?:\s*(?:,|and)\s*)?)+)\s*([.!?]?)$")
_NOUN = re.compile(r"\b((?:[Tt]he|[Tt]his) (?:paper|study|work|article)|[Pp]aper) ((?:\[\d+\])+)")
# "proposed in [1] distills ...", "the work by [1] shows ...": a marker mid-sentence after a preposition is a noun too.
_AFTER_PREPOSITION = re.compile(r"\b(in|by|from)\s+((?:\[\d+\])+)(?=\s+[a-z])")


def name_papers(sentence: str, titles: list[str]) -> str:
    """A bare marker used as a noun ("[2] shows ...", "... is [1].") tells the reader nothing;
    the paper's title goes in its place, with the marker kept. A marker that merely opens a
    sentence ("[1] In this work ...") moves to its end, where citations belong."""

    def named(markers: str) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", markers) if 1 <= int(n) <= len(titles)]
        return " and ".join(f'"{titles[n - 1].strip()}" [{n}]' for n in numbers)

    m = _NOUN.search(sentence) or _AFTER_PREPOSITION.search(sentence)
    if m and named(m.group(2)):
        return f"{sentence[: m.start()]}{m.group(1)} {named(m.group(2))}{_without_end_marker(sentence[m.end() :], m.group(2))}"
    m = _TRAILING.search(sentence)
    if m and named(m.group(2)):
        sentence = f"{sentence[: m.start()]}{m.group(1)} {named(m.group(2))}{m.group(3)}"
    m = _LEADING.match(sentence)
    if not m or not named(m.group(1)):
        return sentence
    rest = sentence[m.end() :]
    if rest[:1].islower():
        return f"{named(m.group(1))} {_without_end_marker(rest, m.group(1).strip())}"
    if m.group(0).rstrip() != m.group(1).rstrip():
        rest = sentence[len(m.group(1)) :]  # "[1] The paper "X" ...": the words stay, the marker moves
    if not rest:
        return sentence
    markers = "".join(f"[{n}]" for n in re.findall(r"\d+", m.group(1)))
    if markers in rest:
        return rest
    body = rest.rstrip()
    end = body[-1] if body[-1] in ".!?" else ""
    return f"{body[: len(body) - len(end)].rstrip()} {markers}{end}"


def _without_end_marker(text: str, markers: str) -> str:
    """`text` without `markers` repeated at its end (the title in front already carries them)."""
    again = re.search(r"\s*" + re.escape(markers) + r"\s*([.!?]?)$", text)
    return text[: again.start()] + again.group(1) if again else text


def _recite(sentence: str, n: int) -> str:
    """Replace whatever the sentence cited with [n], placed before its final punctuation."""
    bare = re.sub(r"\s*\[\d+\]", "", sentence).rstrip()
    end = bare[-1] if bare and bare[-1] in ".!?" else ""
    return f"{bare[: len(bare) - len(end)].rstrip()} [{n}]{end}"
