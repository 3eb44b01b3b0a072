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

Answer the question using the papers above, in one to three sentences. If the question asks which paper, \
model or method, start with its name or the paper's title. Give the specific facts (methods, names, datasets, \
numbers) the papers state. End each sentence with the paper number in square brackets, like [1].

Question: {question}
Answer:"""

# For "which papers ..." questions: the small models otherwise describe one paper and stop.
ASK_LIST = """Papers:
{sources}

Question: {question}

Go through the papers one by one. For each paper that answers the question, write one sentence saying what \
that paper does or finds, using the paper's own method, data or result names, and end the sentence with the \
paper number in brackets, for example: "It proposes X, a method for Y [2]." Skip papers that do not answer it. \
Do not answer with only numbers.

Answer:"""

SUMMARIZE = """Topic: {topic}

Papers:
{sources}

Write a short synthesis of what these papers say about the topic, in four to six sentences of plain prose, \
in your own words. Group papers that share an idea. After each claim put the numbers of the papers it comes \
from in square brackets, like [2] or [1][3]. Use only the papers above. If none of the papers is about the topic, \
reply only: """ + ABSTAIN_MARKER + """

Synthesis of "{topic}":"""


COMBINE = """Topic: {topic}

Notes from several groups of papers, with the paper numbers they cite:
{notes}

Combine the notes into one short synthesis about the topic, in four to six sentences of plain prose. Keep the \
paper numbers in square brackets after each claim exactly as they appear in the notes, and add nothing the \
notes do not say.

Synthesis of "{topic}":"""


def format_source(n: int, title: str, authors: tuple[str, ...], text: str) -> str:
    names = ", ".join(authors[:4]) + (" et al." if len(authors) > 4 else "")
    return SOURCE.format(n=n, title=title, authors=f" by {names}" if names else "", text=text)


def messages(user: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
