"""paper-rag: offline question answering over research papers, with cited titles.

    from rag import Rag, Settings
    rag = Rag(Settings.load(data_dir="data"))
    rag.ingest()
    print(rag.ask("Which papers study model-based RL?").answer)

The names below are imported on first use (PEP 562), so `import rag` and `rag --help` do not load
numpy, Chroma, onnxruntime or llama.cpp: each command pays only for what it uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__all__ = ["Rag", "Settings", "Filters", "Answer", "Chunk", "Citation", "Paper", "Source", "RagError", "InputError", "ModelError", "StoreError"]
__version__ = "0.1.0"

_HOMES = {
    "Rag": "rag.pipeline",
    "Settings": "rag.settings",
    "Filters": "rag.filters",
    "Answer": "rag.types",
    "Chunk": "rag.types",
    "Citation": "rag.types",
    "Paper": "rag.types",
    "Source": "rag.types",
    "RagError": "rag.errors",
    "InputError": "rag.errors",
    "ModelError": "rag.errors",
    "StoreError": "rag.errors",
}

if TYPE_CHECKING:  # for type checkers and IDEs; never run
    from rag.errors import InputError, ModelError, RagError, StoreError
    from rag.filters import Filters
    from rag.pipeline import Rag
    from rag.settings import Settings
    from rag.types import Answer, Chunk, Citation, Paper, Source


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
