"""The library's front door: `Rag` holds one store, embedder and model for a process and hands
each request to the module that owns it (ingest.py, answer.py, doctor.py). The CLI is a thin
layer over `Rag`; anything it does, `import rag` can do."""

from __future__ import annotations

from pathlib import Path

from rag import answer, doctor, ingest
from rag.embedding import Embedder
from rag.filters import Filters
from rag.generation import Generator, OnToken
from rag.doctor import Check
from rag.answer import OnEvidence
from rag.ingest import Progress, Removal
from rag.judge import Judge
from rag.rerank import Reranker
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Store
from rag.types import Answer, IngestReport, PaperInfo, Source

__all__ = ["Rag", "Check", "Removal"]


class Rag:
    """Each part is created on first use, and any of them can be passed in (a test fake, a remote
    model) instead of the defaults."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        store: Store | None = None,
        judge: Judge | None = None,
        reranker: Reranker | None = None,
    ):
        self.settings = settings or Settings.load()
        self.store = store or Store(self.settings.data_dir, self.settings.collection, url=self.settings.chroma_url or None)
        self._embedder = embedder
        self._generator = generator
        self._retriever: Retriever | None = None
        self._judge = judge
        self._judge_built = judge is not None
        self._reranker = reranker

    # --- parts, created lazily -------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from rag.embedding import default_embedder

            self._embedder = default_embedder(self.settings.models_dir)
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            from rag.generation import build_generator

            self._generator = build_generator(self.settings)
        return self._generator

    @property
    def judge(self) -> Judge | None:
        """Who decides a yes/no question's direction (None: `judge = off`)."""
        if not self._judge_built:
            from rag.judge import build_judge

            self._judge, self._judge_built = build_judge(self.settings, self.generator), True
        return self._judge

    @property
    def reranker(self) -> Reranker | None:
        """Who decides whether the best passages answer a question (None: `rerank = off`)."""
        if self._reranker is None and self.settings.rerank != "off":
            from rag.rerank import build_reranker

            self._reranker = build_reranker(self.settings)
        return self._reranker

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.store, self.embedder, dense_weight=self.settings.dense_weight)
        return self._retriever

    def model_name(self) -> str:
        """The model's name without loading it (an abstention never needs the model)."""
        return self._generator.name if self._generator is not None else self.settings.model

    # --- writing ----------------------------------------------------------------------------

    def ingest(self, paths: list[Path] | None = None, progress: Progress | None = None, zotero: Path | None = None) -> IngestReport:
        """Index files (the seed folder when neither files nor a Zotero folder are given), and the
        Zotero library in the folder `zotero` (read-only); see `ingest.run` for what is kept."""
        return ingest.run(self.settings, self.store, self.embedder, paths, progress, zotero)

    def reembed(self, progress: Progress | None = None) -> int:
        """Embed every stored chunk again with this embedder (after an upgrade changed it); returns
        the number of chunks."""
        return ingest.reembed(self.store, self.embedder, progress)

    def plan_removal(self, targets: list[str]) -> Removal:
        """What `remove` would do, changing nothing."""
        return ingest.plan_removal(self.store.paper_infos(), targets)

    def remove(self, targets: list[str]) -> list[PaperInfo]:
        """Take papers out by id, or by source file or folder; returns the papers removed."""
        plan = self.plan_removal(targets)
        ingest.apply_removal(self.store, plan)
        return plan.drop

    # --- reading ----------------------------------------------------------------------------

    def papers(self, filters: Filters | None = None) -> list[PaperInfo]:
        return self.store.paper_infos(filters)

    def search(self, query: str, k: int | None = None, mode: str = "hybrid", filters: Filters | None = None) -> list[Source]:
        query = answer.require_text(query, "query")
        return self.retriever.search(query, k or self.settings.k, mode=mode, paper_ids=self._filtered_ids(filters))

    def ask(
        self, question: str, k: int | None = None, on_token: OnToken | None = None, filters: Filters | None = None,
        retrieval_query: str | None = None, on_evidence: OnEvidence | None = None,
    ) -> Answer:
        """`retrieval_query`, when given, is what retrieval searches for instead of the question
        (`rag chat` folds the conversation into it); the model still sees the question as asked.
        `on_evidence` gets the papers the answer will come from before the model starts."""
        question = answer.require_text(question, "question", answer.MAX_QUESTION_CHARS)
        return answer.ask(self, answer.Request(question, k, self._filtered_ids(filters), retrieval_query, on_token, on_evidence))

    def summarize(
        self, topic: str, k: int | None = None, on_token: OnToken | None = None, filters: Filters | None = None, on_evidence: OnEvidence | None = None,
    ) -> Answer:
        """A cited synthesis across the papers that pass the summary cut-off."""
        topic = answer.require_text(topic, "topic", answer.MAX_QUESTION_CHARS)
        return answer.summarize(self, answer.Request(topic, k, self._filtered_ids(filters), on_token=on_token, on_evidence=on_evidence))

    def bibtex(self, answer: Answer) -> str:
        """BibTeX entries of exactly the papers `answer` cites, in citation order: the user's own
        entry for a paper read from a .bib, else one built from the store (with the cited pages
        of a PDF). Empty when nothing is cited."""
        from rag import references

        infos = {p.paper_id: p for p in self.store.paper_infos()} if answer.citations else {}
        pages: dict[str, list[int]] = {}
        for c in answer.citations:
            if c.paper_id in infos:
                pages.setdefault(c.paper_id, []).extend([c.page] if c.page is not None else [])
        return references.bibtex([references.Cited(infos[pid], tuple(got)) for pid, got in pages.items()])

    def doctor(self) -> list[Check]:
        """Offline checks of everything `ask` needs, each with the command that fixes it."""
        from rag import models

        embedder = self._embedder.name if self._embedder is not None else models.EMBEDDING_MODEL  # named, not loaded
        return doctor.doctor(self.settings, self.store, lambda: self.generator, embedder)

    def _filtered_ids(self, filters: Filters | None) -> set[str] | None:
        """The papers a filter allows, worked out from the store's metadata before retrieval."""
        return set(self.store.matching_paper_ids(filters)) if filters is not None and filters.active else None
