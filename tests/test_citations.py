"""Citation markers are enforced in code: filtered while streaming, mapped to titles, and
sentences are attributed to (or withheld from) the papers that support them."""

from __future__ import annotations

import random
import re

import pytest

from rag import citations
from rag.citations import CitationFilter, SentenceChecker, clean
from rag.text import cited_numbers
from rag.types import Citation, Source


def src(title: str, text: str, pid: str | None = None, authors=()) -> Source:
    return Source(pid or re.sub(r"\W+", "-", title.lower())[:20], title, tuple(authors), text, 0.8, 0.7, 3.0, 0.9)


SOURCES = [
    src("Fin Ray Control", "An off-policy reinforcement learning controller optimises the propulsive thrust of a fish fin ray in simulation."),
    src("Tabular Transformers", "A transformer trained on synthetic priors classifies small tabular datasets in under a second."),
]


def stream(raw: str, n_sources: int, pieces: list[str] | None = None) -> tuple[str, CitationFilter]:
    f = CitationFilter(n_sources)
    out = "".join(f.feed(p) for p in (pieces if pieces is not None else list(raw)))
    out += f.flush()
    return out, f


# --- CitationFilter / clean ---------------------------------------------------------------


def test_valid_markers_are_kept():
    assert clean("Fins push water [1]. Tables are classified [2].", 2) == ("Fins push water [1]. Tables are classified [2].", False)


@pytest.mark.parametrize("raw", ["Fins push water [3].", "Fins push water [0].", "Fins push water [12]."])
def test_out_of_range_numbers_are_dropped(raw):
    text, abstained = clean(raw, 2)
    assert not abstained
    assert cited_numbers(text) == []
    assert re.sub(r"\s+", " ", text).startswith("Fins push water")


def test_dropped_marker_leaves_no_space_before_punctuation():
    assert clean("Fins push water [3].", 2)[0] == "Fins push water."


def test_multi_number_marker_keeps_only_valid_numbers():
    assert clean("Both agree [1, 3].", 2)[0] == "Both agree [1]."
    assert clean("Both agree [1, 2].", 2)[0] == "Both agree [1][2]."
    assert clean("Both agree [1; 2; 9].", 2)[0] == "Both agree [1][2]."


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Thrust rises [Source 2].", "Thrust rises [2]."),
        ("Thrust rises [source 1].", "Thrust rises [1]."),
        ("Thrust rises [Paper 1].", "Thrust rises [1]."),
        ("Thrust rises [Sources 1 and 2].", "Thrust rises [1][2]."),
        ("Thrust rises [1-2].", "Thrust rises [1][2]."),
        ("Thrust rises [ 2 ].", "Thrust rises [2]."),
    ],
)
def test_marker_variants_are_normalised(raw, expected):
    assert clean(raw, 2)[0] == expected


@pytest.mark.parametrize(
    "raw",
    [
        "The EEG data come from [TUAB] and NMT [1].",
        "We use the [CLS] token [2].",
        "A matrix [a, b] is formed [1].",
        "See [Table 3] for details [1].",
    ],
)
def test_non_citation_brackets_are_kept_verbatim(raw):
    assert clean(raw, 2) == (raw, False)


@pytest.mark.parametrize("raw", ["NOT FOUND", "NOT FOUND.", "  not found", "NOT FOUND [1] but here is a guess [2]."])
def test_abstention_marker_at_start_emits_nothing(raw):
    out, f = stream(raw, 2)
    assert f.abstained and out == "" and f.text == ""
    assert clean(raw, 2) == ("", True)


def test_abstention_marker_later_in_the_text_is_not_an_abstention():
    text, abstained = clean("Fins push water [1]; the tabular claim was NOT FOUND in the papers.", 2)
    assert not abstained and text.startswith("Fins push water [1]")


@pytest.mark.parametrize("raw", ["NOT", "NOTE: fins push water [1].", "Nothing else matters [2]."])
def test_prefix_of_the_marker_is_released(raw):
    text, abstained = clean(raw, 2)
    assert text == raw and not abstained


@pytest.mark.parametrize(
    "raw",
    [
        "Fins push water [1, 3]. Tables [Source 2] are fast [7]. The [TUAB] set [2][1] is used.",
        "NOT FOUND",
        "NOTE [1] that thrust rises [9].",
        "Unclosed marker at the end [1",
        "A long bracket [this is not a citation at all, it is just a long aside in brackets] ok [2].",
    ],
)
def test_streaming_in_any_pieces_equals_whole(raw):
    whole, _ = clean(raw, 2)
    by_char, f1 = stream(raw, 2)
    assert by_char.strip() == whole == f1.text
    rng = random.Random(raw)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(raw)), k=min(5, len(raw) - 1)))
        pieces = [raw[i:j] for i, j in zip([0, *cuts], [*cuts, len(raw)])]
        out, f = stream(raw, 2, pieces)
        assert out.strip() == whole == f.text


def test_brackets_are_held_back_until_closed():
    f = CitationFilter(2)
    assert f.feed("Fins push water ") == "Fins push water"  # the space waits for what follows
    assert f.feed("[") == ""
    assert f.feed("7") == ""
    assert f.feed("]") == ""  # invalid: never shown
    assert f.feed(" and [1") == " and"  # the gap the dropped marker left is closed
    assert f.feed("].") == " [1]."
    assert f.text == "Fins push water and [1]."


def test_is_abstention_phrases():
    assert citations.is_abstention("")
    assert citations.is_abstention("None of the papers answers this question.")
    assert citations.is_abstention("The provided papers do not mention the capital of Australia.")
    assert not citations.is_abstention("Fins push water [1].")


# --- numbers -> titles ---------------------------------------------------------------------


def test_citations_for_maps_numbers_to_titles_in_first_use_order():
    text = "Tables are fast [2]. Fins push water [1]. Both [2][1] agree."
    cites = citations.citations_for(text, SOURCES)
    assert [(c.n, c.paper_id, c.title) for c in cites] == [
        (2, SOURCES[1].paper_id, "Tabular Transformers"),
        (1, SOURCES[0].paper_id, "Fin Ray Control"),
    ]


def test_each_citation_quotes_the_paper_sentence_that_supports_it():
    text = "A transformer classifies small tabular datasets quickly [2]."
    (cite,) = citations.citations_for(text, SOURCES)
    assert cite.quote in SOURCES[1].text and "tabular" in cite.quote


def test_citations_for_never_names_a_paper_not_given():
    cites = citations.citations_for("Fins [1]. Ghost [3]. Zero [0]. Far [99].", SOURCES)
    assert [c.n for c in cites] == [1]
    assert {c.title for c in cites} <= {s.title for s in SOURCES}
    assert citations.citations_for("No markers at all.", SOURCES) == []
    assert citations.citations_for("Fins [1].", []) == []


# --- attribution: the sentence checker ------------------------------------------------------


def check(text: str, sources=SOURCES, question: str = "") -> tuple[str, SentenceChecker, str]:
    checker = SentenceChecker(sources, 0.5, question)
    shown = "".join(checker.feed(ch) for ch in text) + checker.flush()
    return shown, checker, checker.text


def test_uncited_supported_sentence_gets_its_source_number():
    shown, checker, text = check("An off-policy controller optimises the propulsive thrust of the fin ray.")
    assert text == "An off-policy controller optimises the propulsive thrust of the fin ray [1]."
    assert shown.strip() == text
    assert citations.citations_for(text, SOURCES) == [Citation(1, SOURCES[0].paper_id, "Fin Ray Control")]


def test_wrongly_cited_sentence_is_recited_to_the_supporting_source():
    _, _, text = check("A transformer classifies small tabular datasets in under a second [1].")
    assert text == "A transformer classifies small tabular datasets in under a second [2]."


def test_unsupported_sentence_gets_no_citation():
    shown, checker, text = check(
        "An off-policy controller optimises fin ray thrust [1]. The Eiffel Tower was completed in Paris in 1889."
    )
    assert "Eiffel" not in shown and "Eiffel" not in text
    assert text == "An off-policy controller optimises fin ray thrust [1]."
    unsupported = [s for s in checker.sentences if not s.supported]
    assert len(unsupported) == 1 and "Eiffel" in unsupported[0].text


def test_cited_sentence_with_a_number_not_in_the_source_is_withheld():
    _, _, text = check("The controller improves thrust by 37.5% [1].")
    assert text == ""


def test_checker_does_not_split_on_initials():
    authors_src = src("Regret Bounds", "We study regret of certainty equivalence control.", authors=("Peter E. Caines",))
    _, checker, text = check("Peter E. Caines studies regret of certainty equivalence control [1].", [authors_src])
    assert len(checker.sentences) == 1 and text.endswith("[1].")


# --- naming papers used as nouns ----------------------------------------------------------------

TITLES = [s.title for s in SOURCES]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("[1] optimises fin thrust.", '"Fin Ray Control" [1] optimises fin thrust.'),
        ("[2] It classifies tables [2].", '"Tabular Transformers" [2] classifies tables.'),
        ("[1][2] use learning.", '"Fin Ray Control" [1] and "Tabular Transformers" [2] use learning.'),
        ("The paper that does this is [2].", 'The paper that does this is "Tabular Transformers" [2].'),
        ("[1] In simulation, a controller learns.", "In simulation, a controller learns [1]."),
        ("[1] The controller learns [1].", "The controller learns [1]."),
        ("The source is [1] TUAB and the target [2] NMT.", "The source is [1] TUAB and the target [2] NMT."),
        ("[3] shows nothing we were given.", "[3] shows nothing we were given."),
        ("The paper [1] proposes a controller [1].", 'The paper "Fin Ray Control" [1] proposes a controller.'),
        ("In this paper [2], tables are classified.", 'In this paper "Tabular Transformers" [2], tables are classified.'),
        ('[1] The paper "Fin Ray Control" optimises thrust.', 'The paper "Fin Ray Control" optimises thrust [1].'),
        ("Paper [2] classifies tables.", 'Paper "Tabular Transformers" [2] classifies tables.'),
        ("The method proposed in [1] optimises thrust.", 'The method proposed in "Fin Ray Control" [1] optimises thrust.'),
        ("The work by [2] shows that tables are classified [2].", 'The work by "Tabular Transformers" [2] shows that tables are classified.'),
        ("Thrust is optimised in [1].", "Thrust is optimised in [1]."),
        ("As shown in [1], thrust is optimised.", "As shown in [1], thrust is optimised."),
    ],
)
def test_a_marker_used_as_a_noun_becomes_the_title(raw, expected):
    assert citations.name_papers(raw, TITLES) == expected


def test_checker_names_the_paper_a_sentence_opens_with():
    shown, checker, text = check("[1] optimises the propulsive thrust of a fish fin ray. [2] classifies small tabular datasets.")
    assert text == '"Fin Ray Control" [1] optimises the propulsive thrust of a fish fin ray. "Tabular Transformers" [2] classifies small tabular datasets.'
    assert shown.strip() == text and all(s.supported for s in checker.sentences)


def test_lines_that_set_a_paper_aside_are_dropped_not_cited():
    shown, checker, text = check("[1] optimises the propulsive thrust of a fish fin ray.\n[2] not relevant.\n[3] Not relevant to the question.")
    assert text == '"Fin Ray Control" [1] optimises the propulsive thrust of a fish fin ray.'
    assert cited_numbers(text) == [1] and len(checker.sentences) == 1


def test_a_question_mark_inside_a_quoted_title_does_not_end_the_sentence():
    asking = src("Do Fins Learn? A Study", "Fins learn thrust control from simulation.")
    _, checker, text = check('The paper "Do Fins Learn? A Study" shows fins learn thrust control [1]. Fins learn [1].', [asking])
    assert [s.text for s in checker.sentences] == ['The paper "Do Fins Learn? A Study" shows fins learn thrust control [1].', "Fins learn [1]."]


def test_a_numbered_list_keeps_its_numbers_inside_the_items():
    _, checker, text = check("It uses two steps: 1. An off-policy controller optimises thrust [1]. 2. A fin ray is simulated [1].")
    assert [s.text for s in checker.sentences] == [
        "It uses two steps: 1. An off-policy controller optimises thrust [1].", "2. A fin ray is simulated [1]."
    ]


def test_a_sentence_naming_a_title_is_never_moved_to_another_paper():
    # Supported by paper 2's text, but it names paper 1: withheld rather than cited to paper 2.
    _, checker, text = check('[1] "Fin Ray Control" classifies small tabular datasets with a transformer.')
    assert text == "" and not checker.sentences[0].supported
    _, checker, text = check('"Tabular Transformers" [1] classifies small tabular datasets with a transformer.')
    assert text.endswith("[2].") and checker.sentences[0].supported


def test_a_title_does_not_vouch_for_what_the_sentence_says_about_its_paper():
    long_titles = [
        src("Multi-task Self-supervised Graph Neural Networks", "Self-supervised graph neural networks learn node embeddings from pretext tasks."),
        src("A hybrid metaheuristic framework for network design", "A hybrid deep-learning metaheuristic framework solves bi-level network design problems."),
    ]
    mixed = '"Multi-task Self-supervised Graph Neural Networks" [1] proposes a hybrid metaheuristic framework for bi-level design problems.'
    _, checker, text = check(mixed, long_titles)
    assert text == "" and not checker.sentences[0].supported
    right = '"Multi-task Self-supervised Graph Neural Networks" [1] learns node embeddings from pretext tasks.'
    assert check(right, long_titles)[2] == right


# --- tables, code and equations are not quoted as prose (issue #14, item 1) ---------------------

TABLE_ROW = "Method Precision Recall F1 GPT-4o 0.96 0.69 0.80 Qwen-2.5-7b 1.0 0.38 0.55 PaSa-7b-Selector 0.95 0.78 0.85."
CODE_LINE = "1 >>> import papermage as pm 2 >>> cv = pm . BoxPredictor (...) 3 >>> tables , figures = cv . predict ( doc )."
EQUATION = "The reward is r(st, at) = α × Xnt i=1 I(q, pi, t) − c(at), (1) where I(q, pi, t) = 1."


@pytest.mark.parametrize("sentence", [TABLE_ROW, CODE_LINE, EQUATION])
def test_a_table_row_a_code_line_or_an_equation_is_not_prose(sentence):
    from rag.text import is_prose

    assert not is_prose(sentence)


@pytest.mark.parametrize("sentence", [
    "We split all cases into train (70%, 3177 samples), Dev (10%, 454), and Test (30%, 908).",
    "AutoScholarQuery includes 33,511 / 1,000 / 1,000 query-paper pairs in the training / development / test split.",
    "The barriers were: unfamiliar terminology; dense text; knowing what to read; and relating findings.",
    "Participants' age ranged from 19 to 67 (mean = 35.04).",
    "ASI correlated with PROCAM (R = 0.57, p < 0.001) and Framingham (R = 0.36, p = 0.01) risk scores.",
    "High estrone levels were associated with increased risk (OR = 3.8; 95% CI = 2.2-6.6) in these women.",
])
def test_sentences_with_numbers_and_lists_are_prose(sentence):
    from rag.text import is_prose

    assert is_prose(sentence)


def test_the_quote_for_a_claim_is_a_prose_sentence_even_when_a_table_row_shares_more_words():
    from rag.citations import best_quote

    passage = f"{TABLE_ROW} Our Selector reaches a precision of 0.95 and an F1 of 0.85, outperforming GPT-4o."
    quote = best_quote("The Selector reaches precision 0.95 and F1 0.85 against GPT-4o and Qwen-2.5-7b.", passage)
    assert quote.startswith("Our Selector reaches")
    assert best_quote("Recall of GPT-4o", TABLE_ROW) == TABLE_ROW  # a table alone is still quoted rather than nothing
