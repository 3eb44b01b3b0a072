"""`rag chat`: an interactive session that keeps the store, embedder and model loaded, streams each
answer, and understands follow-up questions.

A follow-up ("and which of those use transformers?") names nothing retrieval can find on its own, so
its retrieval query is the question plus the previous question and the titles the previous answer
cited (or was given). The model still sees the question as typed, with the papers retrieved for it;
prompts, relevance cut-offs and the citation checks are exactly those of `rag ask`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from rag import render
from rag.pipeline import Rag
from rag.types import Answer

HELP = "Ask a question about the papers. /clear forgets the conversation, /exit (or Ctrl-D) ends; Ctrl-C stops an answer."

_FOLLOW_UP_START = re.compile(
    r"^(and|but|also|so|then|what about|how about|which of|what of|why|how so|same for|ok|okay)\b", re.IGNORECASE
)
_REFERS_BACK = re.compile(
    r"\b(those|these|them|they|their|theirs|it|its|this|that one|that paper|the (first|second|third|last|former|latter)|"
    r"above|previous|earlier|mentioned|same)\b",
    re.IGNORECASE,
)
_CONTENT_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{2,}")


@dataclass
class Turn:
    question: str
    answer: Answer

    @property
    def titles(self) -> list[str]:
        """What the answer was about: its cited papers, else the papers it was given."""
        if self.answer.citations:
            return [c.title for c in sorted(self.answer.citations, key=lambda c: c.n)]
        return [s.title for s in self.answer.sources]


def is_follow_up(question: str) -> bool:
    """Does the question lean on the previous turn (a pronoun pointing back, an 'and ...' opener,
    or too few words to stand alone)?"""
    q = question.strip()
    return bool(_FOLLOW_UP_START.search(q) or _REFERS_BACK.search(q) or len(_CONTENT_WORD.findall(q)) <= 2)


@dataclass
class ChatSession:
    """The conversation state; `ask` is one turn. No terminal here, so it is testable as is."""

    rag: Rag
    k: int | None = None
    turns: list[Turn] = field(default_factory=list)

    def retrieval_query(self, question: str) -> str:
        if not self.turns or not is_follow_up(question):
            return question
        last = self.turns[-1]
        if last.answer.abstained and not last.answer.sources:
            return f"{question} {last.question}"
        return " ".join([question, last.question, *last.titles])

    def ask(self, question: str, on_token: Callable[[str], None] | None = None) -> Answer:
        query = self.retrieval_query(question)
        answer = self.rag.ask(question, k=self.k, on_token=on_token, retrieval_query=query if query != question else None)
        self.turns.append(Turn(question, answer))
        return answer

    def clear(self) -> None:
        self.turns.clear()


def format_sources(answer: Answer) -> list[str]:
    """The same source lines as `rag ask` (pages included), after a blank line."""
    return [] if answer.abstained else [""] + render.sources_lines(answer)


def run(session: ChatSession, read: Callable[[], str | None], write: Callable[[str], None]) -> int:
    """The read-answer loop. `read` returns a line, or None at end of input; `write` prints text as
    is (answers stream through it). Ctrl-C during an answer stops that answer only. Returns the
    number of questions answered."""
    write(HELP + "\n")
    answered = 0
    while True:
        try:
            line = read()
        except KeyboardInterrupt:  # Ctrl-C at the prompt: a fresh prompt, as in a shell
            write("\n")
            continue
        if line is None:
            write("\n")
            return answered
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            command = line.split()[0].lower()
            if command in ("/exit", "/quit", "/q"):
                return answered
            if command == "/clear":
                session.clear()
                write("(conversation cleared)\n")
            elif command == "/help":
                write(HELP + "\n")
            else:
                write(f"unknown command {command}; {HELP}\n")
            continue
        streamed = []

        def on_token(text: str) -> None:
            streamed.append(text)
            write(text)

        try:
            answer = session.ask(line, on_token=on_token)
        except KeyboardInterrupt:
            write("\n(answer stopped)\n")
            continue
        if answer.abstained:
            write(("\n" if streamed else "") + answer.answer + "\n")
        else:
            write("\n".join(format_sources(answer)) + "\n")
        answered += 1
        write("\n")
