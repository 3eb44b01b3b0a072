"""Paper -> Chunks: sentence packing with overlap, word splitting of over-long sentences, ids."""

from __future__ import annotations

import pytest

from rag import chunking, corpus
from rag.papers import paper_id_for
from rag.text import focused, split_sentences
from rag.types import Paper


def sentences(n: int, words: int = 8) -> list[str]:
    # "Sentence 3 talks about topic three with filler." style, each exactly `words` words long.
    return [" ".join([f"Sentence{i}"] + [f"w{i}x{j}" for j in range(words - 2)] + [f"end{i}."]) for i in range(n)]


def paper(abstract: str, title: str = "A Study of Widgets") -> Paper:
    return Paper(paper_id_for(title), title, ("Ann Author",), abstract, "/tmp/x.txt")


def test_short_text_is_one_chunk():
    text = "Graph networks are useful. They pass messages along edges! Do they scale? Yes."
    assert chunking.chunk_text(text, max_words=180, overlap=1) == [text]


def test_split_sentences_on_boundaries_only():
    text = "We use 3.5 GPUs. Results improve (see Table 1). 42 runs were made! Why? Because."
    assert split_sentences(text) == [
        "We use 3.5 GPUs.",
        "Results improve (see Table 1).",
        "42 runs were made!",
        "Why?",
        "Because.",
    ]


@pytest.mark.parametrize("overlap", [1, 2])
def test_long_text_splits_on_sentences_with_overlap(overlap):
    sents = sentences(20, words=8)  # 160 words
    chunks = chunking.chunk_text(" ".join(sents), max_words=30, overlap=overlap)
    assert len(chunks) > 3
    split = [split_sentences(c) for c in chunks]
    for piece in split:
        assert all(s in sents for s in piece), "a chunk cut a sentence in half"
    for a, b in zip(split, split[1:]):
        assert b[:overlap] == a[-overlap:], "chunk i+1 must start with the last sentence(s) of chunk i"
        assert len(b) > overlap  # and then move on
    # every sentence appears, in order, and nothing else
    seen = list(dict.fromkeys(s for piece in split for s in piece))
    assert seen == sents


def test_zero_overlap_repeats_nothing():
    sents = sentences(12, words=8)
    chunks = chunking.chunk_text(" ".join(sents), max_words=30, overlap=0)
    flat = [s for c in chunks for s in split_sentences(c)]
    assert flat == sents


@pytest.mark.parametrize("max_words", [10, 30, 50])
def test_no_chunk_exceeds_max_words(max_words):
    sents = sentences(15, words=9)
    for chunk in chunking.chunk_text(" ".join(sents), max_words=max_words, overlap=1):
        assert len(chunk.split()) <= max_words


def test_sentence_longer_than_max_words_is_split_by_words():
    long_sentence = " ".join(f"word{i}" for i in range(95)) + "."
    text = f"Short opener here. {long_sentence} Short closer here."
    chunks = chunking.chunk_text(text, max_words=20, overlap=0)
    assert all(len(c.split()) <= 20 for c in chunks)
    words = " ".join(chunks).split()
    assert words == text.split()  # nothing lost, nothing repeated, order kept


def test_seed_abstracts_fit_default_chunks():
    from conftest import SEEDS_DIR

    for sf in corpus.load([SEEDS_DIR]):
        for p in sf.papers:
            for c in chunking.chunk_paper(p, max_words=180, overlap=1):
                assert 0 < len(c.text.split()) <= 180


def test_paper_without_abstract_gets_its_title_as_chunk():
    p = paper("", title="Explorable Mesh Deformation Subspaces")
    (chunk,) = chunking.chunk_paper(p)
    assert chunk.text == "Explorable Mesh Deformation Subspaces"
    assert chunk.chunk_id == f"{p.paper_id}:0" and chunk.index == 0
    # the title is not repeated in what the embedder sees
    assert chunking.dense_text(p.title, chunk.text) == p.title


def test_chunk_ids_are_stable_paper_id_colon_index():
    p = paper(" ".join(sentences(30, words=10)))
    first = chunking.chunk_paper(p, max_words=40, overlap=1)
    again = chunking.chunk_paper(p, max_words=40, overlap=1)
    assert first == again
    assert len(first) > 2
    for i, c in enumerate(first):
        assert c.chunk_id == f"{p.paper_id}:{i}"
        assert c.index == i and c.paper_id == p.paper_id


def test_dense_and_lexical_text():
    assert chunking.dense_text("Title", "Body text.") == "Title. Body text."
    lex = chunking.lexical_text("Title", ("Ada Lovelace", "Alan Turing"), "Body text.")
    assert "Ada Lovelace" in lex and "Alan Turing" in lex and "Body text." in lex and lex.startswith("Title")


ABSTRACT = (
    "We study wind farms. Turbines waste energy in wakes. Our controller yaws each turbine to steer its wake. "
    "It raises farm output by 7% in simulation. Field tests confirm 4% on a real farm. We release the code."
)


def test_focused_keeps_the_first_sentence_and_those_the_question_needs():
    text = focused(ABSTRACT, "How much does the yaw controller raise output?", 160)
    assert text.startswith("We study wind farms.")
    assert "It raises farm output by 7% in simulation." in text
    assert "We release the code." not in text and len(text) <= 160 + 10
    assert "… " in text  # a gap is marked, so the model does not read two sentences as one passage


def test_focused_leaves_a_short_text_alone():
    assert focused(ABSTRACT, "anything", 10_000) == ABSTRACT
