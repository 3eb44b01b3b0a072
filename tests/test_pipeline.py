"""Rag.ask / Rag.summarize with the real embedder on the shared seeded store and a fake model."""

from __future__ import annotations

import re

import pytest

from conftest import FakeGenerator
from rag import corpus, prompts
from rag.papers import paper_id_for
from rag.errors import InputError
from rag.pipeline import Rag

AUG = "Data-Efficient Augmentation for Training Neural Networks"
AUG_Q = "What speedups does the data-efficient augmentation method achieve on CIFAR10?"
AUG_FACT = "The subset selection method achieves 6.3x speedup on CIFAR10 and 2.2x speedup on SVHN"
TABULAR_Q = "Which transformer approximates Bayesian posterior prediction for small tabular classification datasets?"
UNRELATED_Q = "What is the boiling point of ethanol at sea level?"

SOURCE_HEADER = re.compile(r'^\[(\d+)\] "(.+?)"', re.M)


def ask(rag: Rag, question: str, **kw):
    shown: list[str] = []
    answer = rag.ask(question, on_token=shown.append, **kw)
    return answer, "".join(shown)


def test_prompt_has_numbered_sources_and_the_question(seeded_fake_llm, fake_llm):
    fake_llm.queue("NOT FOUND")
    answer, _ = ask(seeded_fake_llm, TABULAR_Q)
    assert len(fake_llm.calls) == 1
    messages = fake_llm.calls[0]
    assert [m["role"] for m in messages] == ["system", "user"]
    prompt = fake_llm.prompts[0]
    assert prompt.count(TABULAR_Q) == 2  # before and after the sources
    headers = SOURCE_HEADER.findall(prompt)
    assert len(headers) == len(answer.sources) >= 2
    assert [int(n) for n, _ in headers] == list(range(1, len(answer.sources) + 1))
    assert [t for _, t in headers] == [s.title for s in answer.sources]
    assert len(answer.sources) <= seeded_fake_llm.settings.k
    for s in answer.sources:
        assert s.text in prompt and s.score >= seeded_fake_llm.settings.min_relevance
    assert fake_llm.max_tokens == [seeded_fake_llm.settings.max_tokens]


def test_ask_gives_the_model_the_whole_paper(seeded_real, real_embedder, fake_llm):
    # The augmentation abstract is stored as two overlapping chunks; the model must see it once, whole.
    whole = Rag(seeded_real.settings.with_overrides(focus_tokens=0), embedder=real_embedder, generator=fake_llm)
    fake_llm.queue(f"{AUG_FACT} [1].")
    answer, _ = ask(whole, AUG_Q)
    assert answer.sources[0].title == AUG
    abstract = next(p.abstract for f in corpus.load([whole.settings.seed_dir]) for p in f.papers if p.title == AUG)
    assert whole.store.stored_papers()[paper_id_for(AUG)].chunks >= 2
    assert answer.sources[0].text == abstract
    assert fake_llm.prompts[0].count("Our experiments demonstrate") == 1


def test_answer_streams_and_cites_the_given_source(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [1].")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert not answer.abstained
    assert answer.answer == f"{AUG_FACT} [1]."
    assert shown.strip() == answer.answer
    assert [(c.n, c.title) for c in answer.citations] == [(1, AUG)]
    assert answer.citations[0].paper_id == answer.sources[0].paper_id == paper_id_for(AUG)
    assert answer.model == "fake-llm"
    assert answer.used_papers == 1


def test_citations_only_name_given_sources_even_when_the_model_invents_one(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [7]. It outperforms the baselines by up to 10% across subset sizes [1][4].")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    given = {(n, s.paper_id, s.title) for n, s in enumerate(answer.sources, 1)}
    assert answer.citations and {(c.n, c.paper_id, c.title) for c in answer.citations} <= given
    for text in (answer.answer, shown):
        assert "[7]" not in text and "[4]" not in text
    assert re.findall(r"\[(\d+)\]", answer.answer) and all(1 <= int(n) <= len(answer.sources) for n in re.findall(r"\[(\d+)\]", answer.answer))


def test_uncited_supported_sentence_is_attributed(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT}.")
    answer, _ = ask(seeded_fake_llm, AUG_Q)
    assert answer.answer == f"{AUG_FACT} [1]."
    assert [c.title for c in answer.citations] == [AUG]


def test_unsupported_claims_are_not_shown_or_cited(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [1]. The Eiffel Tower in Paris was completed in 1889 [1].")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert "Eiffel" not in answer.answer and "Eiffel" not in shown
    assert answer.answer == f"{AUG_FACT} [1]."


def test_invalid_marker_is_replaced_cleanly(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [3].")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert answer.answer == f"{AUG_FACT} [1]."


def test_an_answer_that_only_restates_the_question_gets_the_papers_sentence_quoted(seeded_fake_llm, fake_llm):
    fake_llm.queue("The data-efficient augmentation method achieves speedups on CIFAR10 [1].")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert len(fake_llm.calls) == 1  # a quote, not a second model call
    assert answer.answer.startswith("The data-efficient augmentation method achieves speedups on CIFAR10 [1]. The paper states: \"")
    quote = answer.answer.split('states: "', 1)[1].rsplit('" [1]', 1)[0]
    assert "6.3x" in quote and quote in answer.sources[0].text
    assert shown.strip() == answer.answer
    assert [c.title for c in answer.citations] == [AUG]
    assert answer.checked[-1].supported and answer.checked[-1].quote == quote


def test_an_answer_with_the_papers_facts_is_left_alone(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [1].")
    answer, _ = ask(seeded_fake_llm, AUG_Q)
    assert "The paper states" not in answer.answer


@pytest.mark.parametrize("reply", ["None of the provided papers mention this.", "NOT FOUND. The papers do not say."])
def test_refusal_phrases_abstain(seeded_fake_llm, fake_llm, reply):
    fake_llm.queue(reply)
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert answer.abstained and answer.citations == [] and answer.answer == prompts.ABSTAIN_MESSAGE


def test_sources_are_cut_to_the_context_budget(seeded_real, real_embedder, fake_llm):
    settings = seeded_real.settings.with_overrides(context_tokens=300)
    rag = Rag(settings, embedder=real_embedder, generator=fake_llm)
    fake_llm.queue("NOT FOUND")
    answer = rag.ask(TABULAR_Q)
    share = max(300 // len(answer.sources), 60) * 4  # characters per source
    assert len(answer.sources) >= 2
    for s in answer.sources:
        assert len(s.text) <= share + 2 and s.text in fake_llm.prompts[0]
        assert s.text.endswith((".", "…", "?", "!"))


def test_not_found_reply_abstains(seeded_fake_llm, fake_llm):
    fake_llm.queue("NOT FOUND")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert answer.abstained is True
    assert answer.citations == []
    assert answer.answer == prompts.ABSTAIN_MESSAGE
    assert shown == ""
    assert len(fake_llm.calls) == 1


def test_reply_with_no_supported_sentence_abstains(seeded_fake_llm, fake_llm):
    fake_llm.queue("Canberra is the capital of Australia.")
    answer, shown = ask(seeded_fake_llm, AUG_Q)
    assert answer.abstained and answer.citations == [] and "Canberra" not in shown


@pytest.mark.parametrize("question", [UNRELATED_Q, "What is the capital of Australia?"])
def test_irrelevant_question_abstains_without_calling_the_model(seeded_fake_llm, fake_llm, question):
    answer, shown = ask(seeded_fake_llm, question)  # the fake fails the test if it is called
    assert fake_llm.calls == []
    assert answer.abstained and answer.citations == [] and answer.sources == []
    assert answer.answer == prompts.ABSTAIN_MESSAGE and shown == ""


def test_irrelevant_question_does_not_even_load_the_model(seeded_real, real_embedder, tmp_path):
    # A Rag with no generator given and a model path that does not exist: never touched.
    from rag.settings import Settings

    settings = Settings.load(data_dir=seeded_real.settings.data_dir, model=str(tmp_path / "missing.gguf"))
    answer = Rag(settings, embedder=real_embedder).ask(UNRELATED_Q)
    assert answer.abstained and answer.model == str(tmp_path / "missing.gguf")


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_an_input_error(seeded_fake_llm, fake_llm, question):
    with pytest.raises(InputError, match="empty"):
        seeded_fake_llm.ask(question)
    with pytest.raises(InputError, match="empty"):
        seeded_fake_llm.summarize(question)
    assert fake_llm.calls == []


def _echo_first_source(messages) -> str:
    """A model that restates the first sentence of paper [1] and cites it."""
    user = messages[-1]["content"]
    body = user.split('[1] "', 1)[1].split("\n", 1)[1]
    first = re.split(r"(?<=\.)\s", body, maxsplit=1)[0].rstrip(".")
    return f"{first} [1]."


def test_summarize_uses_more_papers_than_ask(seeded_fake_llm, fake_llm):
    topic = "reinforcement learning agents and value functions"
    fake_llm.queue(_echo_first_source, _echo_first_source)
    asked = seeded_fake_llm.ask(topic)
    one_pass = seeded_fake_llm.settings.with_overrides(summary_max_papers=seeded_fake_llm.settings.summary_k)
    summary = Rag(one_pass, embedder=seeded_fake_llm.embedder, generator=fake_llm).summarize(topic)
    ask_prompt, summary_prompt = fake_llm.prompts
    assert len(SOURCE_HEADER.findall(ask_prompt)) == len(asked.sources) <= seeded_fake_llm.settings.k
    assert len(SOURCE_HEADER.findall(summary_prompt)) == len(summary.sources) > len(asked.sources)
    assert len(summary.sources) <= seeded_fake_llm.settings.summary_k
    assert f'Summary of "{topic}"' in summary_prompt
    assert fake_llm.max_tokens == [seeded_fake_llm.settings.max_tokens, seeded_fake_llm.settings.summary_max_tokens]
    assert not summary.abstained and [c.n for c in summary.citations] == [1]


def test_summary_of_more_papers_than_fit_is_done_in_groups_then_combined(seeded_fake_llm, fake_llm):
    topic = "reinforcement learning agents and value functions"
    settings = seeded_fake_llm.settings.with_overrides(summary_k=2, summary_max_papers=6, summary_min_relevance=0.0, summary_relative=0.0)
    def echo_group(messages) -> str:  # groups are numbered globally: 1-2, 3-4, 5-6
        m = re.search(r'\n\[(\d+)\] "[^\n]*\n([^\n]*?\.)\s', messages[-1]["content"])
        return f"{m.group(2).rstrip('.')} [{m.group(1)}]."

    fake_llm.queue(echo_group, echo_group, echo_group, lambda m: "They all learn values [1][3].")
    streamed: list[str] = []
    summary = Rag(settings, embedder=seeded_fake_llm.embedder, generator=fake_llm).summarize(topic, on_token=streamed.append)
    assert len(fake_llm.prompts) == 4  # three groups of two papers, then one combining call
    assert "Notes on papers about the topic" in fake_llm.prompts[-1]
    notes = [echo_group([{"content": p}]) for p in fake_llm.prompts[:3]]
    assert summary.answer.startswith(notes[0]) and summary.answer.endswith("They all learn values [1][3].")
    assert "".join(streamed) == summary.answer  # every group's sentences reach the reader as they come
    assert [c.n for c in summary.citations] == [1, 3, 5]
    assert len(summary.sources) == 6 and summary.relevant_papers == 6
    assert all(c.title in {s.title for s in summary.sources} for c in summary.citations)
    assert "[3]" in fake_llm.prompts[-1] and "[5]" in fake_llm.prompts[-1]  # the groups' notes keep their numbers


def test_summary_leaves_out_papers_far_below_the_best(seeded_fake_llm, fake_llm):
    topic = "reinforcement learning agents and value functions"
    sizes = []
    for share in (0.0, 0.9):
        fake_llm.queue(_echo_first_source)
        settings = seeded_fake_llm.settings.with_overrides(summary_min_relevance=0.0, summary_relative=share, summary_max_papers=8)
        summary = Rag(settings, embedder=seeded_fake_llm.embedder, generator=fake_llm).summarize(topic)
        best = max(s.score for s in summary.sources)
        assert all(s.score >= share * best for s in summary.sources)
        sizes.append(len(summary.sources))
    assert sizes[0] > sizes[1] >= 1


def test_k_overrides_the_number_of_papers(seeded_fake_llm, fake_llm):
    fake_llm.queue("NOT FOUND")
    answer = seeded_fake_llm.ask(TABULAR_Q, k=1)
    assert len(answer.sources) == 1 and len(SOURCE_HEADER.findall(fake_llm.prompts[0])) == 1


def test_answer_to_json_contract(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [1].")
    data = seeded_fake_llm.ask(AUG_Q).to_json()
    required = {"question", "answer", "abstained", "citations", "sources", "model", "timings"}
    assert required <= set(data)
    assert data["question"] == AUG_Q and data["abstained"] is False and data["model"] == "fake-llm"
    assert isinstance(data["answer"], str) and data["answer"]
    assert data["citations"] and all({"n", "paper_id", "title"} <= set(c) for c in data["citations"])
    assert {k: data["citations"][0][k] for k in ("n", "paper_id", "title", "page")} == {"n": 1, "paper_id": paper_id_for(AUG), "title": AUG, "page": None}
    assert data["citations"][0]["quote"] in data["sources"][0]["text"]
    assert data["sources"]
    for n, s in enumerate(data["sources"], 1):
        assert {"n", "paper_id", "title", "score", "text"} <= set(s)
        assert s["n"] == n and isinstance(s["score"], float) and s["text"]
    assert set(data["timings"]) >= {"retrieve_s", "first_token_s", "total_s", "prompt_tokens", "completion_tokens"}
    t = data["timings"]
    assert 0 < t["retrieve_s"] <= t["first_token_s"] <= t["total_s"]
    assert t["prompt_tokens"] > 0 and t["completion_tokens"] > 0
    import json

    assert json.loads(json.dumps(data)) == data  # plain JSON types only


def test_abstained_answer_to_json(seeded_fake_llm):
    data = seeded_fake_llm.ask(UNRELATED_Q).to_json()
    assert data["abstained"] is True and data["citations"] == [] and data["sources"] == []
    assert {"question", "answer", "model", "timings"} <= set(data)


def test_fake_rag_end_to_end_with_fake_embedder(fake_rag, fake_llm, seed_copy):
    """The whole flow with both fakes: ingest, ask, cite."""
    fake_rag.ingest([seed_copy])
    fake_llm.queue(_echo_first_source)
    answer = fake_rag.ask("Real-Time Bidding by Reinforcement Learning in Display Advertising")
    assert answer.sources[0].title == "Real-Time Bidding by Reinforcement Learning in Display Advertising"
    assert not answer.abstained and answer.citations[0].title == answer.sources[0].title
    assert fake_llm.calls and fake_llm.prompts[0].count('[1] "Real-Time Bidding') == 1


def test_generator_is_not_built_when_one_is_given(fake_rag, fake_llm):
    assert fake_rag.generator is fake_llm
    assert isinstance(fake_llm, FakeGenerator)


def test_evidence_comes_before_the_model_and_matches_what_the_answer_cites(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [1].")
    found = []
    answer = seeded_fake_llm.ask(AUG_Q, on_evidence=lambda evidence: found.append((evidence, len(fake_llm.calls))))
    [(evidence, model_calls_then)] = found
    assert model_calls_then == 0  # shown while the model has not started
    assert [(e.n, e.title) for e in evidence] == [(n, s.title) for n, s in enumerate(answer.sources, 1)]
    assert "6.3x speedup on CIFAR10" in evidence[0].sentence
    assert 0 < answer.timings.evidence_s <= answer.timings.total_s


def test_no_evidence_for_a_question_the_papers_do_not_cover(seeded_fake_llm, fake_llm):
    found = []
    answer = seeded_fake_llm.ask(UNRELATED_Q, on_evidence=found.append)
    assert answer.abstained and found == [] and answer.timings.evidence_s == 0


def test_a_summary_shows_its_papers_first(seeded_fake_llm, fake_llm):
    fake_llm.queue(*[f"{AUG_FACT} [1]."] * 8)  # one reply per group and one to combine them
    found = []
    answer = seeded_fake_llm.summarize("data augmentation and training efficiency", on_evidence=found.append)
    assert [e.title for e in found[0]] == [s.title for s in answer.sources]


def test_by_default_the_model_reads_the_sentences_the_question_needs(seeded_fake_llm, fake_llm):
    fake_llm.queue(f"{AUG_FACT} [1].")
    answer, _ = ask(seeded_fake_llm, AUG_Q)
    abstract = next(p.abstract for f in corpus.load([seeded_fake_llm.settings.seed_dir]) for p in f.papers if p.title == AUG)
    given = answer.sources[0].text
    assert len(given) < len(abstract) and len(given) <= seeded_fake_llm.settings.focus_tokens * 4 + 40
    assert "6.3x speedup on CIFAR10" in given and given in fake_llm.prompts[0]
    assert answer.citations[0].title == AUG  # the check and the quote read what the model read
