"""Prompt -> text. One method to implement (`generate`), so the in-process llama.cpp model, a
remote server and a test fake are interchangeable. llama_cpp is imported only when a model is
actually loaded, so commands that never generate start fast."""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from rag.errors import ModelError
from rag.types import Generation

if TYPE_CHECKING:
    from rag.settings import Settings

OnToken = Callable[[str], None]
PROMPT_CACHE_DIR = "prompt-cache"  # under the models folder: the model's state after the shared prompt start
CONNECT_TIMEOUT_S = 10.0  # a model server that does not take the connection within this is down
# Greedy decoding, so the same question gets the same answer (and `rag eval` numbers repeat);
# the light repeat penalty stops the small models looping on a phrase. A server gets temperature only.
SAMPLING = {"temperature": 0.0, "top_k": 1, "repeat_penalty": 1.05}


class Collector:
    """The one streaming loop every backend feeds (the local model, a server, the test fake):
    keeps the pieces, times the first, forwards each to `on_token`, and builds the Generation."""

    def __init__(self, on_token: OnToken | None):
        self.on_token = on_token
        self.start = time.perf_counter()
        self.first = 0.0
        self.pieces: list[str] = []
        self.finish: str | None = None  # the backend's finish reason: "stop", "length"

    def piece(self, text: str | None) -> None:
        if not text:
            return
        if not self.pieces:
            self.first = time.perf_counter() - self.start
        self.pieces.append(text)
        if self.on_token:
            self.on_token(text)

    def result(self, prompt_tokens: int, completion_tokens: int | None = None) -> Generation:
        total = time.perf_counter() - self.start
        completion = len(self.pieces) if completion_tokens is None else completion_tokens
        return Generation("".join(self.pieces), prompt_tokens, completion, self.first or total, total, self.finish == "length")


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

    def __init__(self, path: Path, name: str | None = None, n_ctx: int = 4096, threads: int | None = None, seed: int = 0, prompt_cache: Path | None = None):
        from rag.prompt_cache import PromptCache

        self.path = Path(path)
        self.name = name or self.path.name
        self.n_ctx = n_ctx
        self.threads = threads or os.cpu_count() or 2
        self.seed = seed
        self.prompt_cache = PromptCache(prompt_cache, self.path, n_ctx) if prompt_cache else None  # the shared prompt start, on disk
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

    def _too_long(self, tokens: int, window: int) -> ModelError:
        return ModelError(
            f"the prompt ({tokens} tokens) does not fit the model's context window of {window} tokens; "
            f"raise RAG_N_CTX (now {self.n_ctx}), lower RAG_CONTEXT_TOKENS, or ask a shorter question"
        )

    def _check_fits(self, llm, messages: list[dict]) -> None:
        """Refuse a prompt longer than the context window before llama.cpp does (with a traceback,
        after loading and templating). Counts the messages' tokens plus a few per message for the
        chat template: an estimate within a few tokens; llama.cpp's own refusal is caught too."""
        window = llm.n_ctx()
        tokens = sum(len(llm.tokenize(str(m.get("content", "")).encode("utf-8"), add_bos=False, special=False)) + 8 for m in messages)
        if tokens >= window:
            raise self._too_long(tokens, window)

    def generate(self, messages: list[dict], max_tokens: int, on_token: OnToken | None = None) -> Generation:
        llm = self.load()
        self._check_fits(llm, messages)
        out = Collector(on_token)  # started first: reading a prompt start not yet saved is part of the wait
        if self.prompt_cache:
            self.prompt_cache.prime(llm, messages)
        try:
            stream = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, stream=True, **SAMPLING)
            for chunk in stream:
                out.finish = chunk["choices"][0].get("finish_reason") or out.finish
                out.piece(chunk["choices"][0].get("delta", {}).get("content"))
        except ValueError as exc:  # "Requested tokens (483) exceed context window of 256"
            found = re.search(r"Requested tokens \((\d+)\) exceed context window of (\d+)", str(exc))
            if not found:
                raise
            raise self._too_long(int(found.group(1)), int(found.group(2))) from None
        return out.result(prompt_tokens=max(llm.n_tokens - len(out.pieces), 0))


    def choose(self, messages: list[dict], options: list[str]) -> list[float]:
        """Log-probability of each option (its first token) as the reply's first token: a
        judgement in one token that the caller can calibrate. Reading the prompt is the cost; a
        prefix the model has just read is reused."""
        import numpy as np
        from llama_cpp import LogitsProcessorList

        llm = self.load()
        self._check_fits(llm, messages)
        if self.prompt_cache:
            self.prompt_cache.prime(llm, messages)
        ids = [llm.tokenize(option.encode("utf-8"), add_bos=False, special=False)[0] for option in options]
        seen: list[list[float]] = []

        def capture(_input_ids, scores):
            logits = np.asarray(scores, dtype=np.float64)
            top = logits.max()
            norm = top + np.log(np.exp(logits - top).sum())
            seen.append([float(logits[i] - norm) for i in ids])
            return scores

        llm.create_chat_completion(messages=messages, max_tokens=1, logits_processor=LogitsProcessorList([capture]), **SAMPLING)
        if not seen:
            raise ModelError("the model returned no judgement")
        return seen[0]


class RemoteGenerator:
    """Any OpenAI-compatible server (llama-cpp-python's `llama_cpp.server`, llama.cpp's
    `llama-server`, vLLM) at `base_url` (ending in /v1). Streaming, citations and abstention go
    through the same pipeline as the local model; only the tokens come from elsewhere."""

    def __init__(self, base_url: str, model: str = "default", timeout: float = 120.0, connect_timeout: float = CONNECT_TIMEOUT_S):
        from rag.safe_text import redact_url

        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # what messages and the `model` field show: no user:password@
        self.model = model
        self.name = f"{model}@{self.shown_url}"
        self.timeout = timeout  # longest wait for the server's next bytes; a server that never answers ends here
        self.connect_timeout = connect_timeout

    def generate(self, messages: list[dict], max_tokens: int, on_token: OnToken | None = None) -> Generation:
        import json

        import httpx

        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": SAMPLING["temperature"],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        out, usage = Collector(on_token), {}
        streaming = False  # the server answered 200: a failure from here on is a broken stream, not an unreachable server
        try:
            timeout = httpx.Timeout(self.timeout, connect=min(self.connect_timeout, self.timeout))
            with httpx.stream("POST", f"{self.base_url}/chat/completions", json=body, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    raise ModelError(f"model server at {self.shown_url} answered {response.status_code}: {response.text[:200]}")
                streaming = True
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        event = json.loads(data)
                    except json.JSONDecodeError:
                        raise ModelError(self._interrupted(f"a cut-off event {data[:40]!r}")) from None
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        out.finish = choice.get("finish_reason") or out.finish
                        out.piece((choice.get("delta") or {}).get("content"))
        except httpx.ConnectTimeout as exc:
            raise ModelError(
                f"cannot reach the model server at {self.shown_url} within {min(self.connect_timeout, self.timeout):g}s ({exc.__class__.__name__}); is it running?"
            ) from None
        except httpx.TimeoutException as exc:  # read, write or pool: the server took the request and went quiet
            raise ModelError(
                f"the model server at {self.shown_url} did not answer within {self.timeout:g}s ({exc.__class__.__name__}); "
                "check the server, or wait longer with RAG_LLM_TIMEOUT"
            ) from None
        except httpx.HTTPError as exc:
            if streaming:
                raise ModelError(self._interrupted(exc.__class__.__name__)) from None
            raise ModelError(f"cannot reach the model server at {self.shown_url} ({exc.__class__.__name__}); is it running?") from None
        if out.finish is None:
            # Every OpenAI-compatible server ends a finished answer with a finish reason ("stop",
            # "length"). llama-cpp-python's server, by default, ends a running stream early with a
            # bare [DONE] when another request arrives; a half answer must not pass for a whole one.
            raise ModelError(self._interrupted("no finish reason"))
        return out.result(int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", len(out.pieces))))

    def _interrupted(self, what: str) -> str:
        return (
            f"the model server at {self.shown_url} ended the answer early ({what}); it probably interrupted the request "
            "for another one: start llama-cpp-python's server with `--interrupt_requests False`"
        )


def build_generator(settings: "Settings") -> Generator:
    """The backend the settings name: a model server when `llm_url` is set, else the local GGUF
    model (loaded on its first `generate`). The one place that knows the backends."""
    if settings.llm_url:
        return RemoteGenerator(settings.llm_url, timeout=settings.llm_timeout)
    from rag.models import resolve_llm

    name, path = resolve_llm(settings.model, settings.models_dir)
    cache = settings.models_dir / PROMPT_CACHE_DIR if settings.prompt_cache == "on" else None
    return LlamaCppGenerator(path, name=name, n_ctx=settings.n_ctx, threads=settings.threads, prompt_cache=cache)
