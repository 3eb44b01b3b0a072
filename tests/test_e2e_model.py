"""End to end with the REAL default model (qwen2.5-coder-1.5b) and the real embedder on the seeds.

One model call in all (~10-30 s on 2 cores): the unanswerable question is refused before the model.
Deselect with `-m "not model"` for a quick run; CI runs it after `rag models pull`."""

from __future__ import annotations

import pytest

from rag import models, prompts
from rag.generation import LlamaCppGenerator
from rag.pipeline import Rag

pytestmark = pytest.mark.model

AUG = "Data-Efficient Augmentation for Training Neural Networks"


@pytest.fixture(scope="module")
def real_rag(seeded_real, real_embedder, default_llm) -> Rag:
    rag = Rag(seeded_real.settings, embedder=real_embedder)  # generator: the settings' default model
    assert rag.settings.model == models.DEFAULT_LLM, "RAG_MODEL must not leak into the tests"
    return rag


def test_real_model_answers_with_the_right_citation(real_rag):
    shown: list[str] = []
    answer = real_rag.ask("What speedups does the data-efficient augmentation method achieve on CIFAR10?", on_token=shown.append)
    assert isinstance(real_rag.generator, LlamaCppGenerator)
    assert answer.model == models.DEFAULT_LLM
    assert not answer.abstained, answer.answer
    assert AUG in [c.title for c in answer.citations], (answer.answer, answer.citations)
    assert {c.title for c in answer.citations} <= {s.title for s in answer.sources}
    assert "6.3" in answer.answer, answer.answer
    assert "".join(shown).strip() == answer.answer
    t = answer.timings
    assert t.prompt_tokens > 100 and t.completion_tokens > 0 and 0 < t.first_token_s <= t.total_s


def test_real_model_setup_abstains_on_unanswerable_question(real_rag):
    answer = real_rag.ask("What is the capital of Australia?")
    assert answer.abstained
    assert answer.citations == []
    assert answer.answer == prompts.ABSTAIN_MESSAGE
    assert "Canberra" not in answer.answer
