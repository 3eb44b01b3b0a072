"""Prompt -> text. One method to implement (`generate`), so the in-process llama.cpp model, a
remote server and a test fake are interchangeable. llama_cpp is imported only when a model is
actually loaded, so commands that never generate start fast."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from rag.errors import ModelError

OnToken = Callable[[str], None]


@dataclass
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    first_token_s: float
    total_s: float
    truncated: bool = False  # stopped by max_tokens, so the last sentence may be cut off


class Generator(Protocol):
    name: str

    def generate(self, messages: list[dict], max_tokens: int, on_token: OnToken | None = None) -> Generation:
        ...


@contextlib.contextmanager
def _quiet_stderr():
    """llama.cpp prints loader chatter on fd 2 even with verbose=False; keep the terminal clean."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class LlamaCppGenerator:
    """A GGUF model run in-process. Kept loaded for the life of the object: within one process
    (chat, eval) llama.cpp reuses the evaluated prefix, so the fixed system prompt is paid once."""

    def __init__(self, path: Path, name: str | None = None, n_ctx: int = 4096, threads: int | None = None, seed: int = 0):
        self.path = Path(path)
        self.name = name or self.path.name
        self.n_ctx = n_ctx
        self.threads = threads or os.cpu_count() or 2
        self.seed = seed
        self._llm = None

    def load(self):
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelError(f"llama-cpp-python is not installed ({exc}); run scripts/setup.sh") from None
            try:
                with _quiet_stderr():
                    self._llm = Llama(
                        model_path=str(self.path),
                        n_ctx=self.n_ctx,
                        n_threads=self.threads,
                        n_threads_batch=self.threads,
                        n_batch=512,
                        seed=self.seed,
                        verbose=False,
                    )
            except Exception as exc:  # llama.cpp reports load failures as ValueError/RuntimeError
                raise ModelError(f"cannot load model {self.path} ({exc}); run `rag models pull` or check --model") from None
        return self._llm

    def generate(self, messages: list[dict], max_tokens: int, on_token: OnToken | None = None) -> Generation:
        llm = self.load()
        start = time.perf_counter()
        first = 0.0
        pieces: list[str] = []
        finish = None
        stream = llm.create_chat_completion(
            messages=messages,
            max_tokens=max_tokens,
            temperature=0.0,
            top_k=1,
            repeat_penalty=1.05,
            stream=True,
        )
        for chunk in stream:
            finish = chunk["choices"][0].get("finish_reason") or finish
            delta = chunk["choices"][0].get("delta", {}).get("content")
            if not delta:
                continue
            if not pieces:
                first = time.perf_counter() - start
            pieces.append(delta)
            if on_token:
                on_token(delta)
        total = time.perf_counter() - start
        completion = len(pieces)
        prompt = max(llm.n_tokens - completion, 0)
        return Generation("".join(pieces), prompt, completion, first or total, total, finish == "length")
