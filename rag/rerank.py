"""Does a passage answer the question? A cross-encoder reads the question and the passage together,
which a similarity of two separate vectors cannot: on near-domain questions the seed papers do not
answer ("How does DPO avoid training an explicit reward model?"), hybrid relevance reached
0.40-0.60 and the fixed cut-off let 8 of 19 through. One method to implement (`score`), so the
ONNX model and a test fake are interchangeable."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, Sequence

from rag.errors import ModelError

MAX_TOKENS = 384  # question + passage; the model was trained on 512, shorter is faster


class Reranker(Protocol):
    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        """One logit per passage: above 0, the model thinks the passage answers the question."""
        ...


class OnnxReranker:
    """cross-encoder/ms-marco-MiniLM-L-12-v2, int8 ONNX: ~20 ms a (question, passage) pair here."""

    def __init__(self, model_path: Path, tokenizer_path: Path):
        self.model_path = model_path
        self.tokenizer_path = tokenizer_path
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._session is None:
                import onnxruntime as ort
                from tokenizers import Tokenizer

                try:
                    tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
                    options = ort.SessionOptions()
                    options.log_severity_level = 3
                    session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
                except Exception as exc:  # onnxruntime and tokenizers raise their own untyped errors
                    raise ModelError(f"cannot load the reranker ({exc}); run `rag models pull`") from None
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.no_padding()
                self._tokenizer, self._session = tokenizer, session
            return self._session, self._tokenizer

    def score(self, question: str, passages: Sequence[str]) -> list[float]:
        import numpy as np

        if not passages:
            return []
        session, tokenizer = self._load()
        pairs = tokenizer.encode_batch([(question, p) for p in passages])
        longest = max(len(e.ids) for e in pairs)
        ids = np.zeros((len(pairs), longest), dtype=np.int64)
        mask, types = np.zeros_like(ids), np.zeros_like(ids)
        for row, e in enumerate(pairs):
            ids[row, : len(e.ids)], mask[row, : len(e.ids)], types[row, : len(e.ids)] = e.ids, 1, e.type_ids
        logits = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        return [float(x) for x in logits[:, 0]]


def build_reranker(settings) -> Reranker | None:
    return None if settings.rerank == "off" else default_reranker(settings.models_dir)  # the value was checked with the settings


def default_reranker(models_dir: Path) -> OnnxReranker:
    from rag import models

    model_path, tokenizer_path = models.require(models.get_spec(models.RERANKER_MODEL), models_dir)
    return OnnxReranker(model_path, tokenizer_path)
