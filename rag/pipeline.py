"""The library's front door: ingest, search, ask, summarize, papers, doctor. The CLI is a thin
layer over `Rag`; anything it does, `import rag` can do."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag import chunking, citations, corpus, evidence, papers, prompts
from rag.embedding import Embedder
from rag.errors import InputError, RagError
from rag.filters import Filters
from rag.generation import Generator, OnToken
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import Store
from rag.text import cited_numbers
from rag.types import Answer, IngestReport, Paper, PaperInfo, Source, Timings

Progress = Callable[[int, int], None]  # (done, total)
CHARS_PER_TOKEN = 4  # close enough for English prose with these tokenizers
MAX_QUESTION_CHARS = 2000  # a question or summary topic; sources need the rest of the context window


@dataclass(frozen=True)
class Removal:
    """Papers that would go, and papers that would only lose some sources (id -> sources left)."""

    drop: list[PaperInfo]
    trim: dict[str, list[str]]


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

            self._generator = RemoteGenerator(self.settings.llm_url, timeout=self.settings.llm_timeout)
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
        """Index files; unchanged papers cost nothing, changed ones are replaced in place. Only what
        was given is pruned: a paper goes when the file it came from was re-read without it, or was
        under a given folder and is gone. Papers of files not given stay, even when those files are
        unreachable (an unmounted drive), and a file read with problems (a broken BibTeX entry) keeps
        the papers it held. Every input is read before the store is touched; a file that cannot be
        read is skipped and named in `report.skipped`, unless nothing could be read."""
        started = time.perf_counter()
        roots = list(paths) if paths else [self.settings.seed_dir]
        batch = corpus.load_batch(roots)
        if batch.skipped and not batch.files:
            more = f" (and {len(batch.skipped) - 1} more files skipped)" if len(batch.skipped) > 1 else ""
            raise InputError(f"{batch.skipped[0].path}: {batch.skipped[0].reason}{more}")
        if not batch.files:
            raise InputError(f"{', '.join(map(str, roots))}: no paper files found (PDF, BibTeX, .txt, .md)")
        files = batch.files
        incoming: dict[str, _Incoming] = {}
        for f in files:
            for paper in f.papers:
                _add_incoming(incoming, paper, f.file_hash, f.path)
        report = IngestReport(files=len(files), papers=len(incoming), skipped=[s.line() for s in batch.skipped])
        # A file read in full vouches for which papers it holds; one read with problems does not.
        read_whole = {f.path for f in files if not f.problems}
        given = [str(Path(p).resolve()) for p in roots]

        def still_there(source: str) -> bool:
            # On a shared Chroma server another machine's paths are not ours to judge.
            return bool(self.store.url) or Path(source).exists()

        with self.store.writer() as store:
            existing = store.stored_papers()
            self._merge_other_sources(incoming, existing, {f.path for f in files}, given)
            report.papers = len(incoming)
            to_embed = []
            for pid, new in incoming.items():
                old = existing.get(pid)
                chash = papers.content_hash(new.paper)
                kept = [s for s in (old.sources if old else ()) if s not in read_whole and still_there(s)]
                all_sources = sorted(set(new.sources) | set(kept))
                if old is None or old.content_hash != chash:
                    to_embed.append(_Work(new.paper, new.file_hash, chash, old.chunks if old else 0, all_sources))
                    report.added += old is None
                    report.updated += old is not None
                else:
                    if (list(old.sources), old.file_hash) != (all_sources, new.file_hash):
                        store.update_file_hash(pid, all_sources[0], new.file_hash, old.chunks, all_sources)
                    report.unchanged += 1
            gone = []
            for pid, old in existing.items():
                if pid in incoming:
                    continue
                remaining = [s for s in old.sources if s not in read_whole and (not _under(s, given) or still_there(s))]
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
    def _merge_other_sources(incoming: dict[str, "_Incoming"], existing: dict, read_sources: set[str], given: list[str]) -> None:
        """A paper read from one of its files (the PDF) is merged with its other files (the .bib)
        that this batch did not read, so its stored metadata does not flip with what was given. When
        the stored paper is another text of the same title (a note named like a listed paper), the
        newcomer becomes a paper of its own instead of replacing it."""
        wanted: dict[str, list[str]] = {}
        for pid in list(incoming):
            old = existing.get(pid)
            others = [s for s in (old.sources if old else ()) if s not in read_sources]
            unreachable = False
            for src in others:
                if Path(src).exists():
                    wanted.setdefault(src, []).append(pid)
                else:
                    unreachable = unreachable or not _under(src, given)  # gone from a given folder: pruned
            new = incoming[pid]
            if unreachable and new.paper.kind != "record" and old.content_hash != papers.content_hash(new.paper):
                _separate(incoming, pid)  # the stored text cannot be compared: never overwrite it
        for src, pids in wanted.items():
            try:
                other = corpus.read_file(Path(src))
            except InputError:
                continue  # unreadable now: it keeps its place as a source, as a skipped file would
            for paper in other.papers:
                new = incoming.get(paper.paper_id)
                if paper.paper_id not in pids or new is None:
                    continue
                if papers.can_merge(new.paper, paper):
                    incoming[paper.paper_id] = _Incoming(papers.merge_sources(new.paper, paper), new.file_hash, new.sources + [src])
                else:
                    _separate(incoming, paper.paper_id)

    def _embed_and_store(self, store: Store, work: list["_Work"], progress: Progress | None, batch_chunks: int = 64) -> int:
        """Embed in slices of `batch_chunks` texts, so Ctrl-C stops a long paper within a slice, and
        write whole papers only: a paper is stored once all its chunks have vectors."""
        s = self.settings
        planned = [(item, chunking.chunk_paper(item.paper, s.chunk_words, s.chunk_overlap)) for item in work]
        total = sum(len(chunks) for _, chunks in planned)
        done = 0
        if progress:
            progress(0, total)
        batch: list = []

        def flush():
            import numpy as np

            nonlocal done
            texts = [chunking.dense_text(item.paper.title, c.text) for item, chunks in batch for c in chunks]
            parts = []
            for i in range(0, len(texts), batch_chunks):
                parts.append(self.embedder.embed(texts[i : i + batch_chunks]))
                if progress and len(texts) > batch_chunks:
                    progress(done + min(i + batch_chunks, len(texts)), total)
            vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
            row, items = 0, []
            for item, chunks in batch:
                items.append((item.paper, chunks, vectors[row : row + len(chunks)], item.content_hash, item.file_hash, item.old_chunks, item.sources))
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

    def plan_removal(self, targets: list[str]) -> Removal:
        """What `remove` would do, changing nothing. A target is a paper id, an existing file or
        folder, or a path a paper was stored from (a file since deleted, a folder on an unmounted
        drive), compared as whole path components, never as a substring: `rag remove ''` or
        `rag remove e` once matched every stored path. Any other target is an error, before any change."""
        infos = self.store.paper_infos()
        by_id = {p.paper_id: p for p in infos}
        drop: dict[str, PaperInfo] = {}
        left: dict[str, list[str]] = {}
        for target in targets:
            if not target.strip():
                raise InputError("an empty target: give a paper id (see `rag papers`) or a file or folder")
            if target in by_id:
                drop[target] = by_id[target]
                continue
            wanted = str(Path(target).expanduser().resolve())
            hits = [p for p in infos if any(_under(s, [wanted]) for s in p.sources)]
            if not hits:
                raise InputError(f"{target}: no indexed paper has this id or was read from this path; see `rag papers -v`")
            for p in hits:
                left[p.paper_id] = [s for s in left.get(p.paper_id, list(p.sources)) if not _under(s, [wanted])]
        trim = {}
        for pid, sources in left.items():
            if pid in drop:
                continue
            if sources:
                trim[pid] = sources
            else:
                drop[pid] = by_id[pid]
        return Removal(sorted(drop.values(), key=lambda p: p.title.lower()), trim)

    def remove(self, targets: list[str]) -> list[PaperInfo]:
        """Take papers out by id, or by source file/folder. A paper also read from another file only
        loses that source; it goes when it has none left."""
        plan = self.plan_removal(targets)
        with self.store.writer() as store:
            stored = store.stored_papers()
            for pid, sources in plan.trim.items():
                old = stored[pid]
                store.update_file_hash(pid, sources[0], old.file_hash, old.chunks, sources)
            store.delete_papers([p.paper_id for p in plan.drop])
            if plan.drop:
                from rag.retrieval import LexicalIndex

                LexicalIndex(store.all_chunks()).save(store.cache_dir / "lexical", store.bump_generation())
        return plan.drop

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
        question = _require_text(question, "question", MAX_QUESTION_CHARS)
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
        topic = _require_text(topic, "topic", MAX_QUESTION_CHARS)
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
        cited = [n for n in cited_numbers(text) if 1 <= n <= len(sources)]
        if not cited or not evidence.adds_nothing(text, question, [s.title for s in sources], [s.text for s in sources]):
            return []
        n = cited[0]
        return evidence.answering_sentences(
            evidence.question_parts(question), [(n, sources[n - 1].text)], self.embedder, self.retriever.lexical.idf,
        )

    def _answer_from(self, question, text, sources, checked, abstained: bool, started, timings: Timings, relevant: int) -> Answer:
        """The checked text becomes an Answer: an abstention, or citations that name given papers only."""
        abstained = abstained or not text or (not cited_numbers(text) and citations.is_abstention(text))
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
            from rag.safe_text import redact_url

            server = f"model server {redact_url(self.settings.llm_url)}"
            try:
                self.generator.generate(prompts.messages("Say OK."), 2)
                checks.append(Check(server, True, "answers"))
            except RagError as exc:
                checks.append(Check(server, False, str(exc), "start the model server"))
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
        checks.append(self._store_check())
        return checks

    def _store_check(self) -> Check:
        """The embedded store's files get the full check (SQLite's own included) before Chroma opens
        them; a damaged store's only fix is a fresh one, re-ingested."""
        from rag import health

        store = self.store
        if not store.url and store.exists():
            problems = health.full_check(store.path)
            if problems:
                more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
                return Check("store", False, f"damaged: {problems[0]}{more}", health.recovery(store.data_dir))
        try:
            count = store.count()
            papers = len(store.stored_papers())
        except RagError as exc:
            return Check("store", False, str(exc), getattr(exc, "fix", "rag ingest"))
        read_only = " (read-only: ingest and remove cannot write it)" if store.read_only else ""
        return Check("store", count > 0, f"{papers} papers, {count} chunks in {store.url or store.path}{read_only}", "rag ingest")


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


def _require_text(value: str, what: str, max_chars: int | None = None) -> str:
    value = (value or "").strip()
    if not value:
        raise InputError(f"the {what} is empty")
    if max_chars is not None and len(value) > max_chars:
        # A 100 KB question overflowed the model's context window with a llama.cpp traceback.
        raise InputError(f"the {what} is {len(value):,} characters long; the limit is {max_chars:,}")
    return value


def _replace_text(source: Source, text: str) -> Source:
    return dataclasses.replace(source, text=text)


def _fit_budget(sources: list[Source], budget_tokens: int) -> list[Source]:
    """Share the context budget evenly; a source over its share is cut at a sentence boundary. The
    text is the one the model sees (`prompts.data_only`), so the sentence check cannot count an
    instruction planted in a paper as support."""
    share = max(budget_tokens // max(len(sources), 1), 60) * CHARS_PER_TOKEN
    fitted = []
    for s in sources:
        s = _replace_text(s, prompts.data_only(s.text))
        if len(s.text) <= share:
            fitted.append(s)
            continue
        cut = s.text[:share]
        end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
        fitted.append(_replace_text(s, cut[: end + 1] if end > share // 2 else cut.rsplit(" ", 1)[0] + " …"))
    return fitted


@dataclass
class _Incoming:
    """A paper read in this ingest, with the file hash and every file it was read from."""

    paper: Paper
    file_hash: str
    sources: list[str]


@dataclass(frozen=True)
class _Work:
    """A paper to embed and write, with what the store needs to replace its old version."""

    paper: Paper
    file_hash: str
    content_hash: str
    old_chunks: int
    sources: list[str]


def _add_incoming(incoming: dict[str, _Incoming], paper: Paper, fhash: str, path: str) -> None:
    """One paper per title, unless two files hold different texts under it (see `papers.can_merge`)."""
    seen = incoming.get(paper.paper_id)
    if seen is None:
        incoming[paper.paper_id] = _Incoming(paper, fhash, [path])
    elif path in seen.sources:
        return
    elif papers.can_merge(seen.paper, paper):
        incoming[paper.paper_id] = _Incoming(papers.merge_sources(seen.paper, paper), seen.file_hash, seen.sources + [path])
    else:
        _add_incoming(incoming, papers.distinct_id(paper), fhash, path)


def _separate(incoming: dict[str, _Incoming], pid: str) -> None:
    """Move a paper read in this batch to its own id: the title's id belongs to another text."""
    new = incoming.pop(pid)
    moved = papers.distinct_id(new.paper)
    incoming[moved.paper_id] = _Incoming(moved, new.file_hash, new.sources)


def _under(source: str, roots: list[str]) -> bool:
    """Whether a stored path is one of the given paths or inside a given folder (whole components)."""
    return any(source == r or source.startswith(r.rstrip(os.sep) + os.sep) for r in roots)
