"""Every prompt the tool sends, in one place. Small local models follow short, concrete
instructions best, with the question both before and after the sources. The answer prompt does not
offer the model a way out ("say NOT FOUND"): measured, that made the small models refuse answerable
questions; relevance gating before the model and the sentence check after it do that job in code."""

from __future__ import annotations

ABSTAIN_MARKER = "NOT FOUND"

ABSTAIN_MESSAGE = "The indexed papers do not cover this question, so no answer is given."

SYSTEM = (
    "You are a careful research assistant. You answer only from the numbered papers the user gives you, "
    "never from memory, and you cite the paper numbers in square brackets."
)

SOURCE = '[{n}] "{title}"{authors}\n{text}'

ASK = """Question: {question}

Papers:
{sources}

Answer the question using the papers above. Write one to three sentences that give the specific facts \
(methods, names, datasets, numbers) from the papers. End each sentence with the paper number in square brackets, like [1].

Question: {question}
Answer:"""

SUMMARIZE = """Topic: {topic}

Papers:
{sources}

Write a short synthesis of what these papers say about the topic, in four to six sentences of plain prose, \
in your own words. Group papers that share an idea. After each claim put the numbers of the papers it comes \
from in square brackets, like [2] or [1][3]. Use only the papers above. If none of the papers is about the topic, \
reply only: """ + ABSTAIN_MARKER + """

Synthesis of "{topic}":"""


def format_source(n: int, title: str, authors: tuple[str, ...], text: str) -> str:
    names = ", ".join(authors[:4]) + (" et al." if len(authors) > 4 else "")
    return SOURCE.format(n=n, title=title, authors=f" by {names}" if names else "", text=text)


def messages(user: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
