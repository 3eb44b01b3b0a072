"""Text -> vectors. One method to implement (`embed`), so the ONNX model, a remote service and a
test fake are interchangeable. ONNX sessions are built once per embedder, not per call."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from rag.errors import ModelError


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...


class OnnxEmbedder:
    """all-MiniLM-L6-v2 (ONNX, int8 arithmetic: rag/quantize.py): mean-pooled over the attention
    mask and L2-normalised.

    Throughput on a few CPU cores: every text is tokenized once, texts are sorted by token count
    and cut into batches, and the batches are shared among `workers` single-threaded ONNX sessions
    running in parallel (onnxruntime releases the GIL). On 2 cores that took ~35% less CPU than one
    two-threaded session on batches of 32. One text a batch: no padding, and the int8 model
    quantizes its activations per run, so in a batch a text's vector would depend on its
    neighbours; alone it is the same in any call (and 39 vs 34 abstracts/s for batches of 4). A
    second session is only built when a call has more than one batch, so embedding one query
    costs one session."""

    dim = 384

    def __init__(
        self, model_path: Path, tokenizer_path: Path, batch_size: int = 1, max_tokens: int = 256, workers: int = 0, name: str = "minilm-l6-q8f",
    ):
        self.name = name  # the store records it: vectors of two embedders are never mixed
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.workers = workers or os.cpu_count() or 1
        self._sessions: list = []
        self._tokenizer = None
        self._lock = threading.Lock()

    def _session(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.workers > 1:  # one thread per session; a lone session uses onnxruntime's choice
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load the embedding model ({exc}); run `rag models pull`") from None

    def _load(self, sessions: int = 1) -> list:
        with self._lock:
            if self._tokenizer is None:
                from tokenizers import Tokenizer

                try:
                    tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
                except Exception as exc:
                    raise ModelError(f"cannot load the embedding model ({exc}); run `rag models pull`") from None
                tokenizer.enable_truncation(self.max_tokens)
                tokenizer.no_padding()  # each batch is padded to its own longest text below
                self._tokenizer = tokenizer
            while len(self._sessions) < sessions:
                session = self._session()
                self._inputs = {i.name for i in session.get_inputs()}
                self._sessions.append(session)
            return self._sessions[:sessions]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        n_batches = -(-len(texts) // self.batch_size)
        sessions = self._load(min(self.workers, n_batches))
        ids = [e.ids for e in self._tokenizer.encode_batch(texts)]  # tokenized once, truncated, unpadded
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))  # similar lengths share a batch
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if len(sessions) == 1:
            for idx in batches:
                out[idx] = self._embed_batch(sessions[0], [ids[i] for i in idx])
            return out
        todo = iter(batches)
        take = threading.Lock()
        stop = threading.Event()

        def work(session) -> None:
            while not stop.is_set():
                with take:
                    idx = next(todo, None)
                if idx is None:
                    return
                out[idx] = self._embed_batch(session, [ids[i] for i in idx])

        with ThreadPoolExecutor(len(sessions), thread_name_prefix="embed") as pool:
            try:
                for f in [pool.submit(work, s) for s in sessions]:
                    f.result()  # re-raise a worker's error here
            finally:
                # Ctrl-C lands here in the main thread; without this the pool's exit waited for
                # every remaining batch (27 s for a 1 MB paper).
                stop.set()
        return out

    def _embed_batch(self, session, token_ids: list[list[int]]) -> np.ndarray:
        longest = max(len(t) for t in token_ids)
        ids = np.zeros((len(token_ids), longest), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, t in enumerate(token_ids):
            ids[row, : len(t)] = t
            mask[row, : len(t)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        pooled = self._pool(hidden, mask)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One vector per text: the mean over its tokens, as all-MiniLM-L6-v2 was trained."""
        m = mask[..., None].astype(np.float32)
        return (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)


def default_embedder(models_dir: Path) -> OnnxEmbedder:
    from rag import models

    (model_path,) = models.require(models.get_spec(models.EMBEDDING_MODEL), models_dir)
    _, tokenizer_path = models.require(models.get_spec(models.EMBEDDING_SOURCE), models_dir)
    return OnnxEmbedder(model_path, tokenizer_path, name=models.EMBEDDING_MODEL)
