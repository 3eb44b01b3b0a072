"""The `rag` command: thin commands over `rag.pipeline.Rag`. Each builds settings, calls one
library function and prints; a `RagError` becomes one line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from rag.errors import InputError, RagError
from rag.safe_text import clean, clean_line, redact_urls
from rag.settings import Settings

app = typer.Typer(
    help="Ask questions about a collection of research papers, offline, with cited titles.\n\n"
    "Example: rag ingest && rag ask \"Which papers study model-based reinforcement learning?\"",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
models_app = typer.Typer(help="Fetch and list model files.\n\nExample: rag models pull", no_args_is_help=True)
app.add_typer(models_app, name="models")

DataDir = typer.Option(None, "--data-dir", help="Store location (env RAG_DATA_DIR).", show_default=False)
ModelOpt = typer.Option(None, "--model", "-m", help="Model name from `rag models list` or a .gguf path (env RAG_MODEL).", show_default=False)
KOpt = typer.Option(None, "-k", "--k", min=1, help="How many papers to use.", show_default=False)
JsonOpt = typer.Option(False, "--json", help="Print JSON only.")
ChromaOpt = typer.Option(None, "--chroma-url", help="Use a Chroma server, http://HOST:PORT (env RAG_CHROMA_URL).", show_default=False)
LlmOpt = typer.Option(None, "--llm-url", help="Generate with an OpenAI-compatible server, http://HOST:PORT/v1 (env RAG_LLM_URL).", show_default=False)
QuotesOpt = typer.Option(False, "--show-quotes", help="Under each cited title, print the paper's sentence that supports the claim.")
AuthorOpt = typer.Option(None, "--author", help="Only papers with an author name containing this.", show_default=False)
YearOpt = typer.Option(None, "--year", help="Only papers from this year or range: 2021, 2020..2023, 2020.., ..2023.", show_default=False)
SourceOpt = typer.Option(None, "--source", help="Only papers read from this file or folder (or a path containing this).", show_default=False)
TitleOpt = typer.Option(None, "--title", help="Only papers whose title contains this.", show_default=False)


def _filters(author, year, source, title):
    from rag.filters import Filters

    return Filters.parse(author=author, year=year, source=source, title=title)


def _echo(text: str = "", err: bool = False) -> None:
    """Print text that may hold titles, file names or model output: terminal escape sequences and
    other control characters never reach the terminal (a title could retitle the window or clear
    the screen). JSON output is printed as is; json.dumps escapes them."""
    typer.echo(clean(text), err=err)


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {clean_line(redact_urls(message))}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _errors():
    try:
        yield
    except RagError as exc:
        _fail(str(exc))
    except OSError as exc:  # what no library layer turned into a RagError: still one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        typer.echo("\ninterrupted", err=True)
        raise typer.Exit(130)


def _rag(**overrides):
    from rag.pipeline import Rag

    return Rag(Settings.load(**overrides))


def _print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _print_answer(answer, streamed: bool, quotes: bool = False) -> None:
    if answer.abstained:
        _echo(("\n" if streamed else "") + answer.answer)
        return
    if not streamed:
        _echo(answer.answer)
    typer.echo("\n\nSources:" if streamed else "\nSources:")
    for c in sorted(answer.citations, key=lambda c: c.n):
        _echo(f"  [{c.n}] {clean_line(c.label())}")
        if quotes and c.quote:
            _echo(f'      "{clean_line(c.quote)}"')
    if answer.relevant_papers > 1:
        typer.echo(f"(cites {answer.used_papers} of {answer.relevant_papers} relevant papers)")


def _stream(enabled: bool):
    def write(text: str) -> None:
        sys.stdout.write(clean(text))  # per piece: an ESC split from its sequence is gone all the same
        sys.stdout.flush()

    return write if enabled else None


@app.command()
def ingest(
    paths: Optional[List[Path]] = typer.Argument(
        None, help="Files or folders (PDF, BibTeX, listings, .txt, .md; folders recursively). Default: seeds/.", show_default=False
    ),
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    as_json: bool = JsonOpt,
):
    """Index papers; unchanged files cost nothing on re-ingest. A file that cannot be read is
    skipped with one warning line and exit code 1; the rest is ingested.

    Example: rag ingest seeds/ ~/papers/ refs.bib
    """
    from rag.progress import bar

    with _errors():
        rag = _rag(data_dir=data_dir, chroma_url=chroma_url)
        with bar("embedding", "chunks", disable=as_json) as progress:
            report = rag.ingest(paths or None, progress=progress)
    for line in report.skipped:
        _echo(f"warning: {clean_line(line)}", err=True)
    if as_json:
        _print_json(vars(report))
    else:
        typer.echo(
            f"{report.papers} papers from {report.files} files: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed ({report.chunks_embedded} chunks embedded, {report.seconds:.1f}s)"
        )
    if report.skipped:
        raise typer.Exit(1)  # done, but not everything given was read


@app.command()
def ask(
    question: str = typer.Argument(..., help="The question, in quotes."),
    k: Optional[int] = KOpt,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
    as_json: bool = JsonOpt,
    show_quotes: bool = QuotesOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
):
    """Answer a question from the indexed papers, citing their titles.

    Example: rag ask "Which papers prove regret bounds for control algorithms?" --year 2020..2023
    """
    with _errors():
        filters = _filters(author, year, source, title)
        answer = _rag(data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url).ask(question, k=k, on_token=_stream(not as_json), filters=filters)
    _print_json(answer.to_json()) if as_json else _print_answer(answer, streamed=True, quotes=show_quotes)


@app.command()
def summarize(
    topic: str = typer.Argument(..., help="The topic, in quotes."),
    k: Optional[int] = KOpt,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
    as_json: bool = JsonOpt,
    show_quotes: bool = QuotesOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
):
    """Write a short synthesis of what the papers say about a topic, each claim cited.

    Example: rag summarize "reward modelling for RLHF" --author Christiano
    """
    with _errors():
        filters = _filters(author, year, source, title)
        answer = _rag(data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url).summarize(topic, k=k, on_token=_stream(not as_json), filters=filters)
    _print_json(answer.to_json()) if as_json else _print_answer(answer, streamed=True, quotes=show_quotes)


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "-k", "--k", min=1, help="How many papers to show."),
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    as_json: bool = JsonOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
):
    """Find the most relevant papers without running the model (fast).

    Example: rag search "graph neural networks for recommendation" -k 3 --year 2021..
    """
    with _errors():
        sources = _rag(data_dir=data_dir, chroma_url=chroma_url).search(query, k=k, filters=_filters(author, year, source, title))
    if as_json:
        results = [
            {"rank": i, "paper_id": s.paper_id, "title": s.title, "score": round(s.score, 6), "text": s.text, "page": s.page}
            for i, s in enumerate(sources, 1)
        ]
        _print_json({"query": query, "results": results})
        return
    for i, s in enumerate(sources, 1):
        page = f", p. {s.page}" if s.page is not None else ""
        _echo(f"{i}. {clean_line(s.title)}{page}  (relevance {s.score:.2f})")
        _echo(f"   {s.text[:200]}{'…' if len(s.text) > 200 else ''}")


def _paper_json(p) -> dict:
    return {
        "paper_id": p.paper_id, "title": p.title, "authors": list(p.authors), "year": p.year, "venue": p.venue,
        "source": p.source, "sources": list(p.sources), "chunks": p.chunks,
    }


def _paper_line(p) -> str:
    authors = f" — {', '.join(p.authors[:3])}{' et al.' if len(p.authors) > 3 else ''}" if p.authors else ""
    year = f" ({p.year})" if p.year else ""
    return clean_line(f"{p.paper_id}  {p.title}{authors}{year}")


@app.command()
def papers(
    data_dir: Optional[Path] = DataDir,
    as_json: bool = JsonOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each paper's sources and chunk count."),
    chroma_url: Optional[str] = ChromaOpt,
):
    """List the indexed papers: id, title, authors, year (with -v: source files and chunks).

    Example: rag papers --year 2020..2023 --author Lovelace --json
    """
    with _errors():
        infos = _rag(data_dir=data_dir, chroma_url=chroma_url).papers(_filters(author, year, source, title))
    if as_json:
        _print_json([_paper_json(p) for p in infos])
        return
    for p in infos:
        typer.echo(_paper_line(p))
        if verbose:
            _echo(f"              {p.chunks} chunks from {clean_line(', '.join(p.sources))}")
    typer.echo(f"{len(infos)} papers")


HANDFUL = 5  # removing more papers than this asks first


@app.command()
def remove(
    targets: List[str] = typer.Argument(..., help="Paper ids (from `rag papers`) or the files/folders papers were read from."),
    yes: bool = typer.Option(False, "--yes", "-y", help=f"Remove more than {HANDFUL} papers without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be removed."),
    data_dir: Optional[Path] = DataDir,
    as_json: bool = JsonOpt,
    chroma_url: Optional[str] = ChromaOpt,
):
    """Take papers out of the index, by id or by the file or folder they came from. A paper also
    read from another file only loses that source. More than a handful of papers are listed and
    need a yes (or --yes).

    Example: rag remove ~/papers/old-draft.pdf 86d9a8fab257 --dry-run
    """
    with _errors():
        rag = _rag(data_dir=data_dir, chroma_url=chroma_url)
        plan = rag.plan_removal(targets)
        if not dry_run and len(plan.drop) > HANDFUL and not yes:
            for p in plan.drop:
                typer.echo(f"would remove {_paper_line(p)}", err=True)
            if not sys.stdin.isatty():
                raise InputError(f"this would remove {len(plan.drop)} papers; add --yes to confirm (or --dry-run to list them)")
            if not typer.confirm(f"Remove these {len(plan.drop)} papers?", default=False, err=True):
                typer.echo("nothing removed", err=True)
                raise typer.Exit(1)
        removed = plan.drop if dry_run else rag.remove(targets)
    if as_json:
        _print_json({"removed": [_paper_json(p) for p in removed], **({"dry_run": True} if dry_run else {})})
        return
    for p in removed:
        typer.echo(f"{'would remove' if dry_run else 'removed'} {_paper_line(p)}")
    typer.echo(f"{len(removed)} papers {'would be removed' if dry_run else 'removed'}")


@app.command()
def doctor(
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
):
    """Check, offline, that the models are present and verified and the papers are indexed.

    Example: rag doctor
    """
    with _errors():
        checks = _rag(data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url).doctor()
    for c in checks:
        line = f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" + ("" if c.ok else f"  -> run `{c.fix}`")
        _echo(clean_line(redact_urls(line)))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


@app.command("eval")
def evaluate(
    questions: Optional[Path] = typer.Argument(None, help="JSON lines: question, gold_titles, answer_facts, kind.", show_default=False),
    no_llm: bool = typer.Option(False, "--no-llm", help="Retrieval metrics only (no model, fast)."),
    synthetic: int = typer.Option(0, "--synthetic", min=0, help="Instead of a file: N questions made from the indexed papers (retrieval only)."),
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
    as_json: bool = JsonOpt,
):
    """Measure retrieval (BM25, dense, hybrid side by side) and answer quality on a question set.

    Example: rag eval questions.jsonl --no-llm   (or: rag eval --synthetic 50)
    """
    from rag import evaluation
    from rag.errors import InputError
    from rag.progress import bar

    with _errors():
        rag = _rag(data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url)
        if synthetic:
            items, no_llm = evaluation.synthetic_questions(rag, synthetic), True
        elif questions is None:
            raise InputError("give a question file or --synthetic N")
        else:
            items = evaluation.load_questions(questions)
        with bar("evaluating", "questions", disable=as_json) as progress:
            report = evaluation.evaluate(rag, items, use_llm=not no_llm, progress=progress)
    _print_json(report.to_json()) if as_json else _echo(evaluation.render(report))


@app.command()
def chat(
    k: Optional[int] = KOpt,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
):
    """Ask questions one after another, with follow-ups, the model kept loaded; /clear, /exit.

    Example: rag chat   (then: "Which papers study graph neural networks?", "and which of those use transformers?")
    """
    from rag import chat as chat_lib

    def read():
        try:
            return input("> ")
        except EOFError:
            return None

    def write(text: str) -> None:
        sys.stdout.write(clean(text))
        sys.stdout.flush()

    with _errors():
        rag = _rag(data_dir=data_dir, model=model)
        rag.store.count()  # fail now, not at the first question, when nothing is indexed
        load = getattr(rag.generator, "load", None)
        if load:
            load()
        chat_lib.run(chat_lib.ChatSession(rag, k=k), read, write)


@app.command()
def bench(
    sizes: str = typer.Option("82,1000,10000", "--sizes", help="Corpus sizes in papers, comma-separated (82 = the seeds)."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Skip the model part (ask, model alone, naive pipeline)."),
    questions: int = typer.Option(3, "--questions", min=1, max=4, help="How many fixed seed questions to ask."),
    cold_reps: int = typer.Option(5, "--cold-reps", min=1, help="Cold `rag search` processes per size."),
    warm_reps: int = typer.Option(3, "--warm-reps", min=1, help="Passes over the search queries, in-process, per size."),
    out: Path = typer.Option(Path("docs"), "--out", help="Where benchmarks.md, benchmarks.json and bench_latency.png go."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Keep corpora and stores here (default: a temp dir, removed).", show_default=False),
    model: Optional[str] = ModelOpt,
    from_json: Optional[List[Path]] = typer.Option(None, "--from-json", help="Measure nothing: rewrite the docs from saved benchmarks.json files (later ones win per size / for the model part).", show_default=False),
):
    """Measure ingest, search and ask speed at several corpus sizes; write docs/benchmarks.md and a plot.

    Example: rag bench --sizes 82,1000 --no-llm
    """
    from rag import bench as bench_lib

    if from_json:
        with _errors():
            report = bench_lib.combine(list(from_json), out)
        for target, measured, verdict in bench_lib.targets(report):
            typer.echo(f"{verdict:13} {target}: {measured}")
        typer.echo(f"wrote {out / 'benchmarks.md'}")
        return
    try:
        wanted = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        _fail(f"--sizes needs whole numbers separated by commas, got {sizes!r}")
    if not wanted or min(wanted) < 1:
        _fail("--sizes needs at least one size of 1 or more")
    with _errors():
        settings = Settings.load(model=model)
        plan = bench_lib.BenchPlan(
            wanted, use_llm=not no_llm, questions=questions, cold_reps=cold_reps, warm_reps=warm_reps, work_dir=work_dir,
            command=f"rag bench --sizes {sizes}{' --no-llm' if no_llm else f' --questions {questions}'}",
        )
        report = bench_lib.run(plan, out, settings, log=lambda m: typer.echo(m, err=True))
    for target, measured, verdict in bench_lib.targets(report):
        typer.echo(f"{verdict:13} {target}: {measured}")
    typer.echo(f"wrote {out / 'benchmarks.md'}")


@models_app.command("pull")
def models_pull(
    names: Optional[List[str]] = typer.Argument(None, help="Models to fetch. Default: the default model and the embedding model.", show_default=False),
    all_models: bool = typer.Option(False, "--all", help="Fetch every known model."),
):
    """Download, assemble and verify model files into models/ (the only network use).

    Example: rag models pull qwen2.5-coder-0.5b
    """
    from rag import models
    from rag.progress import bar

    with _errors():
        settings = Settings.load()
        wanted = list(models.REGISTRY) if all_models else (names or [settings.model, models.EMBEDDING_MODEL])
        specs = [models.get_spec(n) for n in wanted]
        for spec in specs:
            with bar(spec.name, "bytes") as progress:
                done = [0]

                def step(n: int) -> None:
                    done[0] += n
                    progress(done[0], spec.size)

                models.pull(spec, settings.models_dir, on_progress=step)
            _echo(f"{spec.name}: ready in {clean_line(str(settings.models_dir))}")


@models_app.command("list")
def models_list():
    """Show the known models and whether each is present and verified.

    Example: rag models list
    """
    from rag import models

    with _errors():
        settings = Settings.load()
        for spec in models.REGISTRY.values():
            status = models.check(spec, settings.models_dir)
            state = "ready" if status.verified else ("unverified" if status.present else "missing")
            default = " (default)" if spec.name in (settings.model, models.EMBEDDING_MODEL) else ""
            typer.echo(f"{spec.name:22} {spec.kind:9} {state:10} {spec.description}{default}")
    _echo(f"models folder: {clean_line(str(settings.models_dir))}")


def main() -> None:  # pragma: no cover - entry point for `python -m rag`
    app()
