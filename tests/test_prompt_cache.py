"""A fresh process restores the model's state after the prompt start every question shares (the
system message and the chat template's opening) instead of reading it again (issue #15). The
answer must be exactly the one the process gives when it reads that start itself (greedy
decoding; the start is always read as a batch of its own, so the two paths compute the same)."""

from __future__ import annotations

import pytest

from rag import prompts
from rag.generation import LlamaCppGenerator

pytestmark = pytest.mark.model

MESSAGES = prompts.messages('Question: What does X do?\n\nPapers:\n[1] "Routing"\nX routes packets by their size.\n\nAnswer in one sentence.\nAnswer:')


def test_a_fresh_model_restores_the_shared_start_and_answers_exactly_as_when_it_reads_it(default_llm, tmp_path):
    first = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path)
    plain = first.generate(MESSAGES, 12).text
    (saved,) = tmp_path.glob("*.state")
    assert first.prompt_cache.restored == 0  # read once, then saved
    assert saved.stat().st_mode & 0o044 == 0o044  # readable by the other users of a shared models folder
    again = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path)
    result = again.generate(MESSAGES, 12)
    assert result.text == plain and again.prompt_cache.restored > 40  # the system message, not read again
    assert result.prompt_tokens > again.prompt_cache.restored
    other = [{"role": "system", "content": "You answer tersely."}, MESSAGES[1]]
    again.generate(other, 4)
    assert len(list(tmp_path.glob("*.state"))) == 2 and again.prompt_cache.restored == 0  # another start, its own file
    history = [MESSAGES[0], {"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."}, MESSAGES[1]]
    again.generate(history, 2)
    assert len(list(tmp_path.glob("*.state"))) == 2  # a conversation is not saved turn by turn


def test_a_damaged_or_unwritable_cache_costs_nothing_but_the_saving(default_llm, tmp_path):
    plain = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path).generate(MESSAGES, 12).text
    (saved,) = tmp_path.glob("*.state")
    saved.write_bytes(saved.read_bytes()[:5000])  # cut short
    damaged = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path)
    assert damaged.generate(MESSAGES, 12).text == plain and damaged.prompt_cache.restored == 0
    assert LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path).generate(MESSAGES, 2) and saved.stat().st_size > 5000  # written again whole
    saved.write_bytes(saved.read_bytes()[:40])  # cut inside its header
    headless = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path)
    assert headless.generate(MESSAGES, 12).text == plain and headless.prompt_cache.restored == 0 and saved.stat().st_size > 5000
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    unwritable = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=blocked / "cache")
    assert unwritable.generate(MESSAGES, 12).text == plain and not (blocked / "cache").exists()


def test_the_setting_turns_it_off_and_a_bad_value_is_one_line(models_dir, tmp_path):
    from rag.errors import InputError
    from rag.generation import PROMPT_CACHE_DIR, build_generator
    from rag.settings import Settings

    on = build_generator(Settings.load(data_dir=tmp_path, models_dir=models_dir))
    assert on.prompt_cache.folder == models_dir / PROMPT_CACHE_DIR
    assert build_generator(Settings.load(data_dir=tmp_path, models_dir=models_dir, prompt_cache="off")).prompt_cache is None
    with pytest.raises(InputError, match="prompt_cache must be on or off"):
        build_generator(Settings.load(data_dir=tmp_path, models_dir=models_dir, prompt_cache="maybe"))


def test_old_state_files_are_pruned(default_llm, tmp_path, monkeypatch):
    from rag import prompt_cache

    monkeypatch.setattr(prompt_cache, "KEEP", 2)
    gen = LlamaCppGenerator(default_llm, n_ctx=512, prompt_cache=tmp_path)
    for i in range(3):
        gen.generate([{"role": "system", "content": f"You are assistant number {i}."}, MESSAGES[1]], 1)
    assert len(list(tmp_path.glob("*.state"))) == 2
