"""Shared fixtures and fakes.

* Every test runs with RAG_DATA_DIR pointing into its own tmp folder and RAG_MODEL unset, so
  nothing touches the user's store and the default model is the one the code declares.
* `FakeEmbedder` / `FakeGenerator` stand in for the ONNX embedder and the llama.cpp model.
* `real_embedder` / `seeded_real` use the real pulled embedding model. They FAIL (never skip)
  when the models are missing: a skipped test proves nothing, and CI pulls the models first.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rag import models
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings
from rag.generation import Collector
from rag.types import Generation

SEEDS_DIR = PROJECT_ROOT / "seeds"
SEED_FILES = sorted(SEEDS_DIR.glob("*.txt"))
# `rag models pull` writes to RAG_MODELS_DIR when set, else to ./models of the checkout.
MODELS_DIR = Path(os.environ.get("RAG_MODELS_DIR") or PROJECT_ROOT / "models").expanduser()
SEED_PAPERS = 82

@functools.cache
def load_script():
    """scripts/load.py as a module: its tests, and the server fixtures that start servers the same way."""
    spec = importlib.util.spec_from_file_location("load_script", PROJECT_ROOT / "scripts" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PULL_HINT = "run `rag models pull` (from the project root, with the venv active) before the test suite"
REAL_MODEL_FIXTURES = {"real_embedder", "seeded_real", "seeded_fake_llm", "default_llm", "models_dir"}


def pytest_collection_modifyitems(items):
    """A test that reaches the real model files through a fixture is marked `embedder`, so
    `pytest -m "not embedder and not model"` runs the pure tests alone."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.embedder)


# --- environment -----------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory):
    """Session-wide: no RAG_* variable from the user's shell leaks into a test (except where the
    models were pulled to), and the default data dir is a throwaway folder."""
    mp = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith("RAG_") and name != "RAG_MODELS_DIR":
            mp.delenv(name)
    mp.setenv("RAG_DATA_DIR", str(tmp_path_factory.mktemp("session-data")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    """Each test gets its own data dir through the environment, as a user would set it."""
    path = tmp_path / "data"
    monkeypatch.setenv("RAG_DATA_DIR", str(path))
    monkeypatch.delenv("RAG_MODEL", raising=False)
    return path


# --- fakes -------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Deterministic hashed bag-of-words, 384 dims, L2-normalised float32.

    Counts its calls so tests can check what an ingest embedded; `fail_on_call=n` raises on the
    n-th call (1-based), to simulate a crash half-way through an ingest."""

    name = "fake-hash-384"
    dim = 384

    def __init__(self, fail_on_call: int | None = None):
        self.fail_on_call = fail_on_call
        self.calls: list[list[str]] = []

    @property
    def texts_embedded(self) -> int:
        return sum(len(c) for c in self.calls)

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            h = hashlib.blake2b(word.encode(), digest_size=8).digest()
            v[int.from_bytes(h[:4], "little") % self.dim] += 1.0 if h[4] & 1 else -1.0
        norm = float(np.linalg.norm(v))
        if norm == 0.0:
            v[0], norm = 1.0, 1.0
        return v / norm

    def embed(self, texts) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError("FakeEmbedder: simulated failure")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)


class FakeGenerator:
    """Replies from a queue (strings, or callables of `messages`), records every `messages` list it
    was given, and streams each reply through `on_token` in small pieces like a real model. Calling it with nothing queued fails
    the test, so 'the model was not called' is checked for free."""

    def __init__(self, replies: list[str] | None = None, name: str = "fake-llm", piece: int = 3):
        self.replies = list(replies or [])
        self.name = name
        self.piece = piece
        self.calls: list[list[dict]] = []
        self.max_tokens: list[int] = []

    def queue(self, *replies: str) -> "FakeGenerator":
        self.replies.extend(replies)
        return self

    @property
    def prompts(self) -> list[str]:
        """The user message of each call."""
        return [next(m["content"] for m in msgs if m["role"] == "user") for msgs in self.calls]

    def generate(self, messages, max_tokens, on_token=None) -> Generation:
        self.calls.append([dict(m) for m in messages])
        self.max_tokens.append(max_tokens)
        if not self.replies:
            raise AssertionError("FakeGenerator.generate called but no reply was queued")
        reply = self.replies.pop(0)
        if callable(reply):  # a reply computed from the prompt, e.g. echoing a source
            reply = reply(messages)
        out = Collector(on_token)
        for i in range(0, len(reply), self.piece):
            out.piece(reply[i : i + self.piece])
        return out.result(prompt_tokens=sum(len(m["content"].split()) for m in messages))


class RagRunner(CliRunner):
    """Runs `rag` commands with a `Rag` factory handed in through the Typer context, the CLI's
    public seam for fakes: `runner.factory = lambda **kw: Rag(Settings.load(**kw), embedder=...)`.
    Without a factory the commands build their real parts."""

    factory = None

    def invoke(self, *args, **kwargs):
        kwargs.setdefault("obj", self.factory)
        return super().invoke(*args, **kwargs)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def runner() -> RagRunner:
    return RagRunner()  # Click >= 8.2 keeps stderr apart: result.stdout / result.stderr



@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_llm() -> FakeGenerator:
    return FakeGenerator()


@pytest.fixture
def fake_rag(data_dir, fake_embedder, fake_llm) -> Rag:
    """A Rag on an empty tmp store, with the fake embedder and the fake model."""
    return Rag(Settings.load(data_dir=data_dir), embedder=fake_embedder, generator=fake_llm)


@pytest.fixture
def seed_copy(tmp_path) -> Path:
    """A writable copy of seeds/, for tests that edit or delete source files."""
    folder = tmp_path / "seeds"
    folder.mkdir()
    for f in SEED_FILES:
        shutil.copy(f, folder / f.name)
    return folder


def _require_model(name: str) -> None:
    status = models.check(models.get_spec(name), MODELS_DIR)
    if not status.verified:
        pytest.fail(f"model {name} is not ready in {MODELS_DIR} ({status.detail}); {PULL_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS_DIR


@pytest.fixture(scope="session")
def real_embedder(models_dir):
    """The real ONNX MiniLM embedder, loaded once per session."""
    _require_model(models.EMBEDDING_MODEL)
    from rag.embedding import default_embedder

    return default_embedder(models_dir)


@pytest.fixture(scope="session")
def seeded_real(_session_env, tmp_path_factory, real_embedder, models_dir) -> Rag:
    """The seeds ingested once with the real embedder. READ-ONLY: tests must not ingest into it
    (build another `Rag(seeded_real.settings, ...)` to swap the model)."""
    assert len(SEED_FILES) == 2, f"expected the two seed listings in {SEEDS_DIR}"
    data = tmp_path_factory.mktemp("seeded-real")
    rag = Rag(Settings.load(data_dir=data, models_dir=models_dir), embedder=real_embedder)
    report = rag.ingest([SEEDS_DIR])
    assert report.added == SEED_PAPERS, report
    return rag


@pytest.fixture
def seeded_fake_llm(seeded_real, real_embedder, fake_llm) -> Rag:
    """The shared real-embedder store, with a fake model (ask/summarize never write)."""
    return Rag(seeded_real.settings, embedder=real_embedder, generator=fake_llm)


@pytest.fixture(scope="session")
def default_llm(models_dir) -> Path:
    """Path of the real default GGUF model; fails (never skips) when it has not been pulled."""
    _require_model(models.DEFAULT_LLM)
    return models.resolve_llm(models.DEFAULT_LLM, models_dir)[1]
