"""Answering from long papers (issue #14, item 2): several passages of a full-text paper reach the
model within the budget, each citation names the page of the passage it quotes, and a number is
checked against the passage the sentence cites, not the whole paper."""

from __future__ import annotations

from conftest import FakeGenerator
from pdfmaker import LOREM, make_pdf
from rag import passages
from rag.citations import SentenceChecker
from rag.pipeline import Rag
from rag.settings import Settings
from rag.types import Passage, Source

COUNT = "The Wombat corpus holds 9,280 expert summaries of civil rights cases."
OTHER = "Annotators labelled 4,500 sentences of the lawsuits for their quality."


def paged(title: str, *texts: str, start: int = 1) -> Source:
    ps = tuple(Passage(t, start + i) for i, t in enumerate(texts))
    return Source(title.lower().replace(" ", "-"), title, (), ps[0].text, 0.5, 0.5, 1.0, page=ps[0].page, passages=ps)


def abstract(title: str, text: str) -> Source:
    return Source(title.lower().replace(" ", "-"), title, (), text, 0.5, 0.5, 1.0)


def test_the_first_paper_gives_three_passages_and_the_others_two():
    sources = [paged("Wombat Corpus", "a. " * 20, "b. " * 20, "c. " * 20, "d. " * 20), paged("Quokka Study", "e. " * 20, "f. " * 20, "g. " * 20)]
    first, second = passages.given(sources, 1400)
    assert [p.page for p in first.passages] == [1, 2, 3] and [p.page for p in second.passages] == [1, 2]
    assert first.text == "\n\n".join(p.text for p in first.passages)


def test_what_a_short_source_leaves_goes_to_the_long_one():
    long_ = paged("Wombat Corpus", *(f"Sentence {i} of passage {n}. " * 12 for n, i in enumerate(range(3))))
    short = abstract("Quokka Study", "A short abstract.")
    got_long, got_short = passages.given([long_, short], 300)  # 1,200 characters in all
    assert got_short.text == "A short abstract."
    assert len(got_long.text) > 600 and len(got_long.text) <= 1200 - len(got_short.text)


def test_over_budget_a_paper_loses_whole_passages_before_one_is_cut():
    source = paged("Wombat Corpus", "First passage sentence. " * 10, "Second passage sentence. " * 10, "Third. " * 10)
    (fitted,) = passages.given([source], 130)  # 520 characters: the first two passages only
    assert [p.page for p in fitted.passages] == [1, 2] and "Third" not in fitted.text
    (cut,) = passages.given([source], 60)
    assert len(cut.passages) == 1 and cut.text.startswith("First passage") and len(cut.text) <= 240


def test_page_of_names_the_passage_a_quote_came_from():
    source = paged("Wombat Corpus", OTHER, COUNT, start=4)
    assert source.page_of(COUNT) == 5 and source.page_of(OTHER) == 4
    assert abstract("Quokka Study", COUNT).page_of(COUNT) is None


def test_a_number_from_another_passage_is_not_supported():
    source = passages.given([paged("Wombat Corpus", OTHER, COUNT, start=4)], 1400)[0]
    checker = SentenceChecker([source], 0.5, "How many summaries does the Wombat corpus hold?")
    assert checker.feed("The Wombat corpus holds 4,500 expert summaries [1]. ") == ""  # 4,500 is in the other passage
    shown = checker.feed("The Wombat corpus holds 9,280 expert summaries [1]. ") + checker.flush()
    assert "9,280" in shown
    withheld, kept = checker.sentences
    assert not withheld.supported and kept.supported and kept.page == 5


class ByWord:
    """A cross-encoder that likes passages with a word in them."""

    def __init__(self, word: str):
        self.word, self.calls = word, []

    def score(self, question, texts):
        self.calls.append(list(texts))
        return [5.0 if self.word in t else -5.0 for t in texts]


def test_the_cross_encoder_orders_a_papers_passages_in_one_call():
    reranker = ByWord("9,280")
    [(source, score)] = passages.reranked(reranker, "How many summaries?", [paged("Wombat Corpus", OTHER, COUNT, start=4)])
    assert [p.page for p in source.passages] == [5, 4] and source.page == 5 and source.text == COUNT and score == 5.0
    assert len(reranker.calls) == 1 and reranker.calls[0][0].startswith("Wombat Corpus. ")


def long_paper(path):
    """Six pages of filler with one detail on page 5, far from the words of the title and abstract."""
    def filler(n: int) -> list[str]:  # other lines on each page, as in a real paper
        words = LOREM.split()
        return [" ".join(words[n:] + words[:n]), "", " ".join(words[-n:] + words[:-n])]

    pages = [["# Wombat Routing for Sparse Transformers", "Ada Lovelace", "", "## Abstract", LOREM]]
    pages += [[f"## {n} Method Part", *filler(n)] for n in range(1, 4)]
    pages.append(["## 4 Annotation", "The annotation team wrote 9,280 expert summaries of the routing logs by hand.", "", *filler(4)])
    pages.append(["## 5 Discussion", *filler(6)])
    return make_pdf(path, pages)


def test_a_detail_deep_in_a_pdf_reaches_the_model_and_is_cited_with_its_page(tmp_path, real_embedder, models_dir):
    long_paper(tmp_path / "wombat.pdf")
    llm = FakeGenerator(["The annotation team wrote 9,280 expert summaries by hand [1]."])
    rag = Rag(Settings.load(data_dir=tmp_path / "data", models_dir=models_dir, rerank="off", min_relevance=0.0), embedder=real_embedder, generator=llm)
    rag.ingest([tmp_path / "wombat.pdf"])
    (found,) = rag.search("How many expert summaries did the annotation team write by hand?", k=1)
    assert len(found.passages) > 1 and found.passages[0].page == 5  # the passage with the detail comes first
    assert [p.page for p in found.passages if p.opening] == [1]  # and the abstract is among the candidates
    answer = rag.ask("How many expert summaries did the annotation team write by hand?", k=1)
    assert "9,280" in llm.prompts[0] and llm.prompts[0].count("sparse mixture routing") >= 1  # the detail and more of the paper
    (citation,) = answer.citations
    assert citation.page == 5 and citation.label().endswith(", p. 5") and "9,280" in citation.quote
    assert answer.to_json()["sentences"][0]["page"] == 5


def test_with_a_focus_every_passage_but_the_answering_papers_best_keeps_its_closest_sentences():
    filler = " ".join(f"Filler sentence number {w} about nothing." for w in ("one", "two", "three", "four", "five", "six"))
    best = f"{COUNT} {filler}"
    later = f"Intro of the later passage. {filler} Wombat summaries were checked twice. {filler}"
    sources = [paged("Wombat Corpus", best, later), paged("Quokka Study", later, best)]
    first, second = passages.given(sources, 1400, "How were the Wombat summaries checked?", 160)
    assert first.passages[0].text == best  # the answering paper's best passage stays whole
    assert "checked twice" in first.passages[1].text and len(first.passages[1].text) < len(later) / 2
    assert "checked twice" in second.passages[0].text and len(second.passages[0].text) < len(later) / 2


def test_the_eval_checks_that_a_cited_page_holds_the_fact_it_is_cited_for():
    from rag.evaluation import page_right
    from rag.types import Answer, CheckedSentence

    source = passages.given([paged("Wombat Corpus", OTHER, COUNT, start=4)], 1400)[0]

    def answer(page):
        said = CheckedSentence("The corpus holds 9,280 summaries [1].", (1,), 1.0, True, COUNT, "entailed", page)
        return Answer("q", said.text, False, [], [source], "m", checked=[said])

    assert page_right(answer(5), ("9,280",)) is True and page_right(answer(4), ("9,280",)) is False
    assert page_right(answer(5), ("Selector",)) is None  # the fact is not stated: nothing to judge


def test_the_answering_papers_opening_passage_is_given_even_when_ranked_last():
    opening = Passage("The Wombat corpus spans one-sentence to five-hundred-word summaries.", 1, opening=True)
    ranked = tuple(Passage(f"Passage {n} on other things entirely.", n + 1) for n in range(1, 5)) + (opening,)
    source = Source("w", "Wombat Corpus", (), ranked[0].text, 0.5, 0.5, 1.0, page=2, passages=ranked)
    other = Source("q", "Quokka Study", (), ranked[0].text, 0.5, 0.5, 1.0, page=2, passages=ranked)
    first, second = passages.given([source, other], 1400)
    assert [p.page for p in first.passages] == [2, 3, 4, 1] and first.passages[-1].opening
    assert [p.page for p in second.passages] == [2, 3]  # another paper gives its best two only


def test_the_eval_counts_a_small_number_written_as_a_word():
    from rag.evaluation import states

    assert states("Four out of the six participants continued.", "4") and states("4 of 6", "4")
    assert not states("Fourteen participants", "4") and not states("It has 40 pages.", "four")
