"""The library's front door: ingest, search, ask, summarize, papers, doctor. The CLI is a thin
layer over `Rag`; anything it does, `import rag` can do."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag import chunking, citations, corpus, evidence, prompts
from rag.embedding import Embedder
from rag.errors import InputError, RagError
from rag.filters import Filters
from rag.generation import Generator, OnToken
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Store
from rag.types import Answer, IngestReport, PaperInfo, Source, Timings

Progress = Callable[[int, int], None]  # (done, total)
CHARS_PER_TOKEN = 4  # close enough for English prose with these tokenizers


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


class Rag:
    """Holds one store, embedder and model for a process; each is created on first use, and any of
    them can be passed in (a test fake, a remote model) instead of the defaults."""

    def __init__(
        self,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        store: Store | None = None,
    ):
        self.settings = settings or Settings.load()
        self.store = store or Store(self.settings.data_dir, self.settings.collection, url=self.settings.chroma_url or None)
        self._embedder = embedder
        self._generator = generator
        self._retriever: Retriever | None = None

    # --- parts, created lazily -------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from rag.embedding import default_embedder

            self._embedder = default_embedder(self.settings.models_dir)
        return self._embedder

    @property
    def generator(self) -> Generator:
        if self._generator is None and self.settings.llm_url:
            from rag.generation import RemoteGenerator

            self._generator = RemoteGenerator(self.settings.llm_url)
        if self._generator is None:
            from rag.generation import LlamaCppGenerator
            from rag.models import resolve_llm

            name, path = resolve_llm(self.settings.model, self.settings.models_dir)
            self._generator = LlamaCppGenerator(path, name=name, n_ctx=self.settings.n_ctx, threads=self.settings.threads)
        return self._generator

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            self._retriever = Retriever(self.store, self.embedder, dense_weight=self.settings.dense_weight)
        return self._retriever

    # --- ingest ------------------------------------------------------------------------------

    def ingest(self, paths: list[Path] | None = None, progress: Progress | None = None) -> IngestReport:
        """Index files; unchanged papers cost nothing, changed ones are replaced in place, and papers
        whose files are all gone are removed. Every input is read before the store is touched; a file
        that cannot be read is skipped and named in `report.skipped`, unless nothing could be read."""
        started = time.perf_counter()
        batch = corpus.load_batch(list(paths) if paths else [self.settings.seed_dir])
        if batch.skipped and not batch.files:
            more = f" (and {len(batch.skipped) - 1} more files skipped)" if len(batch.skipped) > 1 else ""
            raise InputError(f"{batch.skipped[0].path}: {batch.skipped[0].reason}{more}")
        files = batch.files
        incoming: dict[str, tuple] = {}  # paper_id -> (paper, file hash, sources it was read from)
        for f in files:
            for paper in f.papers:
                seen = incoming.get(paper.paper_id)
                if seen is None:
                    incoming[paper.paper_id] = (paper, f.file_hash, [f.path])
                elif f.path not in seen[2]:
                    incoming[paper.paper_id] = (corpus.merge_sources(seen[0], paper), seen[1], seen[2] + [f.path])
        report = IngestReport(files=len(files), papers=len(incoming), skipped=[s.line() for s in batch.skipped])
        read_sources = {f.path for f in files}

        def kept(old) -> list[str]:
            """Sources of a stored paper that this batch did not re-read and that still exist."""
            # On a shared Chroma server another machine's paths are not ours to judge.
            return [s for s in old.sources if s not in read_sources and (self.store.url or Path(s).exists())]

        with self.store.writer() as store:
            existing = store.stored_papers()
            self._merge_other_sources(incoming, existing, read_sources)
            to_embed = []
            for pid, (paper, fhash, sources) in incoming.items():
                old = existing.get(pid)
                chash = corpus.content_hash(paper)
                all_sources = sorted(set(sources) | set(kept(old) if old else []))
                if old is None or old.content_hash != chash:
                    to_embed.append((paper, fhash, chash, old.chunks if old else 0, all_sources))
                    report.added += old is None
                    report.updated += old is not None
                else:
                    if (list(old.sources), old.file_hash) != (all_sources, fhash):
                        store.update_file_hash(pid, all_sources[0], fhash, old.chunks, all_sources)
                    report.unchanged += 1
            gone = []
            for pid, old in existing.items():
                if pid in incoming:
                    continue
                remaining = kept(old)
                if not remaining:
                    gone.append(pid)
                elif remaining != list(old.sources):  # read again without this paper, but another file still has it
                    store.update_file_hash(pid, remaining[0], old.file_hash, old.chunks, remaining)
            try:
                report.chunks_embedded = self._embed_and_store(store, to_embed, progress)
                store.delete_papers(gone)
                report.removed = len(gone)
            finally:
                # Even a failed ingest may have written some papers: caches must see them.
                if store.dirty or not existing:
                    from rag.retrieval import LexicalIndex

                    generation = store.bump_generation()
                    LexicalIndex(store.all_chunks()).save(store.cache_dir / "lexical", generation)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _merge_other_sources(incoming: dict, existing: dict, read_sources: set[str]) -> None:
        """A paper read from one of its files (the PDF) is merged with its other files (the .bib)
        that this batch did not read, so its stored metadata does not flip with what was given."""
        wanted: dict[str, list[str]] = {}
        for pid in incoming:
            old = existing.get(pid)
            for src in old.sources if old else ():
                if src not in read_sources and Path(src).exists():
                    wanted.setdefault(src, []).append(pid)
        for src, pids in wanted.items():
            try:
                other = corpus.read_file(Path(src))
            except InputError:
                continue  # unreadable now: it keeps its place as a source, as a skipped file would
            for paper in other.papers:
                if paper.paper_id in pids:
                    merged, fhash, sources = incoming[paper.paper_id]
                    incoming[paper.paper_id] = (corpus.merge_sources(merged, paper), fhash, sources + [src])

    def _embed_and_store(self, store: Store, work: list, progress: Progress | None, batch_chunks: int = 64) -> int:
        s = self.settings
        planned = [(item, chunking.chunk_paper(item[0], s.chunk_words, s.chunk_overlap)) for item in work]
        total = sum(len(chunks) for _, chunks in planned)
        done = 0
        if progress:
            progress(0, total)
        batch: list = []

        def flush():
            nonlocal done
            texts = [chunking.dense_text(item[0].title, c.text) for item, chunks in batch for c in chunks]
            vectors = self.embedder.embed(texts)
            row, items = 0, []
            for (paper, fhash, chash, old_chunks, sources), chunks in batch:
                items.append((paper, chunks, vectors[row : row + len(chunks)], chash, fhash, old_chunks, sources))
                row += len(chunks)
            store.put_papers(items)  # one Chroma write per batch
            done += row
            batch.clear()
            if progress:
                progress(done, total)

        for item, chunks in planned:
            batch.append((item, chunks))
            if sum(len(c) for _, c in batch) >= batch_chunks:
                flush()
        if batch:
            flush()
        return total

    # --- reading ----------------------------------------------------------------------------

    def papers(self, filters: Filters | None = None) -> list[PaperInfo]:
        return self.store.paper_infos(filters)

    def search(self, query: str, k: int | None = None, mode: str = "hybrid", filters: Filters | None = None) -> list[Source]:
        query = _require_text(query, "query")
        return self.retriever.search(query, k or self.settings.k, mode=mode, paper_ids=self._filtered_ids(filters))

    def _filtered_ids(self, filters: Filters | None) -> set[str] | None:
        """The papers a filter allows, worked out from the store's metadata before retrieval."""
        return set(self.store.matching_paper_ids(filters)) if filters is not None and filters.active else None

    def remove(self, targets: list[str]) -> list[PaperInfo]:
        """Take papers out by id, or by source file/folder. A paper also read from another file only
        loses that source; it goes when it has none left. Unknown targets are an error, before any change."""
        infos = self.store.paper_infos()
        by_id = {p.paper_id: p for p in infos}
        drop: dict[str, PaperInfo] = {}
        trim: dict[str, list[str]] = {}
        for target in targets:
            if target in by_id:
                drop[target] = by_id[target]
                continue
            f = Filters(source=target)
            hits = [p for p in infos if any(f.source_matches(s) for s in p.sources)]
            if not hits:
                raise InputError(f"{target}: no indexed paper has this id or source; see `rag papers`")
            for p in hits:
                left = [s for s in trim.get(p.paper_id, list(p.sources)) if not f.source_matches(s)]
                trim[p.paper_id] = left
        with self.store.writer() as store:
            stored = store.stored_papers()
            for pid, left in trim.items():
                if pid in drop:
                    continue
                if left:
                    old = stored[pid]
                    store.update_file_hash(pid, left[0], old.file_hash, old.chunks, left)
                else:
                    drop[pid] = by_id[pid]
            store.delete_papers(list(drop))
            if drop:
                from rag.retrieval import LexicalIndex

                LexicalIndex(store.all_chunks()).save(store.cache_dir / "lexical", store.bump_generation())
        return sorted(drop.values(), key=lambda p: p.title.lower())

    @staticmethod
    def relevant(sources: list[Source], threshold: float) -> list[Source]:
        """Sources close enough to be worth the model's time; this cut-off is what lets the tool
        say 'not covered' instead of answering from a poor match."""
        return [s for s in sources if s.score >= threshold]

    def ask(
        self, question: str, k: int | None = None, on_token: OnToken | None = None, filters: Filters | None = None,
        retrieval_query: str | None = None,
    ) -> Answer:
        """`retrieval_query`, when given, is what retrieval searches for instead of the question
        (`rag chat` folds the conversation into it); the model still sees the question as asked."""
        question = _require_text(question, "question")
        s = self.settings
        if asks_for_list(question):
            return self._answer(
                question, prompts.ASK_LIST, k or s.list_k, "question", on_token, s.min_relevance, s.max_tokens * 2,
                whole_papers=False, secondary=s.list_min_relevance, filters=filters, retrieval_query=retrieval_query,
            )
        return self._answer(
            question, prompts.ASK, k or s.k, "question", on_token, s.min_relevance, s.max_tokens, whole_papers=True,
            filters=filters, retrieval_query=retrieval_query, quote_echo=True,
        )

    def summarize(self, topic: str, k: int | None = None, on_token: OnToken | None = None, filters: Filters | None = None) -> Answer:
        """A cited synthesis. When more papers pass the cut-off than fit one prompt, each group of
        `k` is summarised first and the group summaries are combined (map-reduce)."""
        topic = _require_text(topic, "topic")
        s = self.settings
        k = k or s.summary_k
        started = time.perf_counter()
        candidates = self.retriever.search(topic, max(s.summary_max_papers, k), paper_ids=self._filtered_ids(filters))
        relevant = self.relevant(candidates, s.summary_min_relevance)
        if relevant:
            relevant = self.relevant(relevant, max(r.score for r in relevant) * s.summary_relative)
        if len(relevant) <= k:
            timings = Timings(retrieve_s=time.perf_counter() - started)
            return self._respond(topic, prompts.SUMMARIZE, "topic", relevant, s.summary_max_tokens, on_token, False, started, timings, len(relevant))
        sources = _fit_budget(relevant, s.context_tokens * len(relevant) // k)
        timings = Timings(retrieve_s=time.perf_counter() - started)
        checked, notes = [], []
        for first in range(0, len(sources), k):
            group = "\n\n".join(
                prompts.format_source(n, src.title, src.authors, src.text) for n, src in enumerate(sources[first : first + k], first + 1)
            )
            checker, _, gen = self._checked_generation(
                prompts.SUMMARIZE_GROUP.format(topic=topic, sources=group), sources, topic, s.summary_max_tokens,
                _spaced(on_token) if notes else on_token,
            )
            timings.add(gen, time.perf_counter() - started)
            checked += checker.sentences
            if checker.text:
                notes.append(checker.text)
        if not notes:
            return self._answer_from(topic, "", sources, checked, True, started, timings, len(relevant))
        user = prompts.COMBINE.format(topic=topic, notes="\n".join(notes))
        checker, _, gen = self._checked_generation(user, sources, topic, s.combine_max_tokens, _spaced(on_token))
        timings.add(gen, time.perf_counter() - started)
        text = " ".join(notes + ([checker.text] if checker.text else []))
        return self._answer_from(topic, text, sources, checked + checker.sentences, False, started, timings, len(relevant))

    def _answer(
        self, question: str, template: str, k: int, slot: str, on_token, threshold: float, max_tokens: int,
        whole_papers: bool, secondary: float | None = None, filters: Filters | None = None, retrieval_query: str | None = None,
        quote_echo: bool = False,
    ) -> Answer:
        """`threshold` decides whether anything is worth answering from; papers after the first
        need only `secondary` (list questions want every paper that fits, not just the best)."""
        started = time.perf_counter()
        candidates = self.retriever.search(retrieval_query or question, max(k * 3, 10), paper_ids=self._filtered_ids(filters))
        relevant = self.relevant(candidates, threshold)
        sources = relevant[:1]
        if sources:
            sources += self.relevant(candidates[1:], threshold if secondary is None else secondary)[: k - 1]
        timings = Timings(retrieve_s=time.perf_counter() - started)
        return self._respond(
            question, template, slot, sources, max_tokens, on_token, whole_papers, started, timings, max(len(relevant), len(sources)), quote_echo,
        )

    def _respond(
        self, question: str, template: str, slot: str, sources: list[Source], max_tokens: int, on_token, whole_papers: bool,
        started: float, timings: Timings, relevant: int, quote_echo: bool = False,
    ) -> Answer:
        """One prompt over the chosen papers, or the abstention when none was chosen."""
        if not sources:
            timings.total_s = time.perf_counter() - started
            return Answer(question, prompts.ABSTAIN_MESSAGE, True, [], [], self._model_name(), timings)
        if whole_papers:
            sources = self._with_full_text(sources)
        sources = _fit_budget(sources, self.settings.context_tokens)
        body = "\n\n".join(prompts.format_source(n, s.title, s.authors, s.text) for n, s in enumerate(sources, 1))
        user = template.format(**{slot: question, "sources": body})
        return self._finish(question, user, sources, max_tokens, on_token, started, timings, relevant, quote_echo)

    def _checked_generation(self, user: str, sources: list[Source], question: str, max_tokens: int, on_token):
        """Run the model with invalid markers stripped and every sentence checked as it streams."""
        markers = citations.CitationFilter(len(sources))
        checker = citations.SentenceChecker(sources, self.settings.min_support, question)

        def forward(token: str) -> None:
            shown = checker.feed(markers.feed(token))
            if shown and on_token:
                on_token(shown)

        gen = self.generator.generate(prompts.messages(user), max_tokens, forward)
        tail = checker.feed(markers.flush()) + checker.flush(truncated=gen.truncated)
        if tail and on_token:
            on_token(tail)
        return checker, markers, gen

    def _finish(self, question, user, sources, max_tokens, on_token, started, timings: Timings, relevant: int, quote_echo: bool = False) -> Answer:
        checker, markers, gen = self._checked_generation(user, sources, question, max_tokens, on_token)
        timings.add(gen, time.perf_counter() - started)
        text, checked = checker.text, list(checker.sentences)
        if quote_echo and not markers.abstained:
            quotes = self._quotes_for_echo(question, text, sources)
            if quotes:
                added = evidence.quoted(quotes)
                checked += [citations.CheckedSentence(f'"{q.sentence}" [{q.n}]', (q.n,), 1.0, True, q.sentence) for q in quotes]
                text = f"{text} {added}"
                if on_token:
                    on_token(" " + added)
        return self._answer_from(question, text, sources, checked, markers.abstained, started, timings, relevant)

    def _quotes_for_echo(self, question: str, text: str, sources: list[Source]) -> list[evidence.Quote]:
        """Quotes from the paper the answer cites first, when the answer only restates the question."""
        cited = [n for n in citations.cited_numbers(text) if 1 <= n <= len(sources)]
        if not cited or not evidence.adds_nothing(text, question, [s.title for s in sources], [s.text for s in sources]):
            return []
        n = cited[0]
        return evidence.answering_sentences(
            evidence.question_parts(question), [(n, sources[n - 1].text)], self.embedder, self.retriever.lexical.idf,
        )

    def _answer_from(self, question, text, sources, checked, abstained: bool, started, timings: Timings, relevant: int) -> Answer:
        """The checked text becomes an Answer: an abstention, or citations that name given papers only."""
        abstained = abstained or not text or (not citations.cited_numbers(text) and citations.is_abstention(text))
        timings.total_s = time.perf_counter() - started
        answer = Answer(question, text, abstained, [], sources, self._model_name(), timings, checked=checked, relevant_papers=relevant)
        if abstained:
            answer.answer = prompts.ABSTAIN_MESSAGE
            return answer
        answer.citations = [dataclasses.replace(c, page=sources[c.n - 1].page) for c in citations.citations_for(text, sources)]
        answer.used_papers = len(answer.citations)
        return answer

    def _with_full_text(self, sources: list[Source]) -> list[Source]:
        """Whole abstracts; a full-text paper (it has pages) keeps its best chunk instead, since the
        budget cut would keep only its first pages, which are rarely the ones that answer."""
        texts = self.store.paper_texts([s.paper_id for s in sources if s.page is None])
        return [s if s.page is not None else _replace_text(s, texts.get(s.paper_id, s.text)) for s in sources]

    def _model_name(self) -> str:
        return self._generator.name if self._generator is not None else self.settings.model

    # --- health -----------------------------------------------------------------------------

    def doctor(self) -> list[Check]:
        """Offline checks of everything `ask` needs, each with the command that fixes it."""
        from rag import models

        checks = []
        if self.settings.llm_url:
            try:
                self.generator.generate(prompts.messages("Say OK."), 2)
                checks.append(Check(f"model server {self.settings.llm_url}", True, "answers"))
            except RagError as exc:
                checks.append(Check(f"model server {self.settings.llm_url}", False, str(exc), "start the model server"))
        for spec in models.REGISTRY.values():
            if spec.kind == "llm" and (spec.name != self.settings.model or self.settings.llm_url):
                continue
            status = models.check(spec, self.settings.models_dir, full=True)
            checks.append(Check(f"model {spec.name}", status.verified, status.detail, f"rag models pull {spec.name}"))
        if self.settings.model not in models.REGISTRY and not self.settings.llm_url:
            try:
                models.resolve_llm(self.settings.model, self.settings.models_dir)
                checks.append(Check(f"model {self.settings.model}", True, "ok"))
            except RagError as exc:
                checks.append(Check(f"model {self.settings.model}", False, str(exc), "rag models pull"))
        try:
            count = self.store.count()
            papers = len(self.store.stored_papers())
            ok = count > 0
            checks.append(Check("store", ok, f"{papers} papers, {count} chunks in {self.store.url or self.store.path}", "rag ingest"))
        except RagError as exc:
            checks.append(Check("store", False, str(exc), "rag ingest"))
        return checks


_LIST_QUESTION = re.compile(
    r"\b(?:which|what|list|name)\s+(?:\w+\s+)?(?:papers|studies|works|articles|methods|approaches)\b|\bpapers\s+(?:that|which)\b",
    re.IGNORECASE,
)


def asks_for_list(question: str) -> bool:
    """'Which papers ...' asks for every matching paper; the answer is shaped differently."""
    return bool(_LIST_QUESTION.search(question))


def _spaced(on_token: OnToken | None) -> OnToken | None:
    """Stream a later part of an answer: a space before its first piece joins it to the earlier part."""
    if on_token is None:
        return None
    first = True

    def forward(piece: str) -> None:
        nonlocal first
        on_token((" " if first else "") + piece)
        first = False

    return forward


def _require_text(value: str, what: str) -> str:
    value = (value or "").strip()
    if not value:
        raise InputError(f"the {what} is empty")
    return value


def _replace_text(source: Source, text: str) -> Source:
    return dataclasses.replace(source, text=text)


def _fit_budget(sources: list[Source], budget_tokens: int) -> list[Source]:
    """Share the context budget evenly; a source over its share is cut at a sentence boundary."""
    share = max(budget_tokens // max(len(sources), 1), 60) * CHARS_PER_TOKEN
    fitted = []
    for s in sources:
        if len(s.text) <= share:
            fitted.append(s)
            continue
        cut = s.text[:share]
        end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        fitted.append(_replace_text(s, cut[: end + 1] if end > share // 2 else cut.rsplit(" ", 1)[0] + " …"))
    return fitted
