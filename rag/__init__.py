"""paper-rag: offline question answering over research papers, with cited titles.

    from rag import Rag, Settings
    rag = Rag(Settings.load(data_dir="data"))
    rag.ingest()
    print(rag.ask("Which papers study model-based RL?").answer)
"""

from rag.errors import InputError, ModelError, RagError, StoreError
from rag.filters import Filters
from rag.pipeline import Rag
from rag.settings import Settings
from rag.types import Answer, Chunk, Citation, Paper, Source

__all__ = ["Rag", "Settings", "Filters", "Answer", "Chunk", "Citation", "Paper", "Source", "RagError", "InputError", "ModelError", "StoreError"]
__version__ = "0.1.0"
