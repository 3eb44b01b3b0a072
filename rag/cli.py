"""The `rag` command: thin commands over `rag.pipeline.Rag`. Each builds settings, calls one
library function inside the error boundary and prints; shared parts are in cli_common.py, the
tool commands (eval, chat, bench, models) in cli_tools.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from rag.cli_common import (
    AuthorOpt, BibOpt, CategoryOpt, ChromaOpt, DataDir, EvidenceOpt, JsonOpt, KOpt, LlmOpt, ModelOpt, QuotesOpt, SourceOpt, TitleOpt, YearOpt,
    app, check_bib_target, echo, errors, fail, filters_from, print_answer, print_json, rag_for, show_evidence, stream, write_bib,
)
from rag.errors import InputError
from rag.safe_text import clean_line, redact_urls

__all__ = ["app", "main"]


@app.command()
def ingest(
    ctx: typer.Context,
    paths: Optional[List[Path]] = typer.Argument(
        None, help="Files or folders (PDF, BibTeX, listings, .txt, .md; folders recursively). Default: seeds/.", show_default=False
    ),
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    as_json: bool = JsonOpt,
    watch: bool = typer.Option(False, "--watch", help="Keep going: re-ingest whenever files under the paths are added, changed or deleted (Ctrl-C stops)."),
    zotero: Optional[Path] = typer.Option(
        None, "--zotero", metavar="DIR", show_default=False,
        help="Also read a Zotero library, read-only: the folder holding zotero.sqlite and storage/ (usually ~/Zotero). Each item is a paper, with its PDFs.",
    ),
    reembed: bool = typer.Option(False, "--reembed", help="Embed every stored chunk again with this version's embedder (when a search says the store's vectors are another's); reads no file."),
):
    """Index papers; unchanged files cost nothing on re-ingest. A file that cannot be read is
    skipped with one warning line and exit code 1; the rest is ingested.

    Example: rag ingest seeds/ ~/papers/ refs.bib   (or: rag ingest ~/papers --watch, rag ingest --zotero ~/Zotero)
    """
    from rag.progress import bar

    if reembed:
        return _reembed(ctx, paths, data_dir, chroma_url, as_json, watch or zotero)
    if watch and zotero:
        fail("--watch follows files, not a Zotero library; run `rag ingest --zotero DIR` again after changing the library")
    if watch:
        return _watch(ctx, paths, data_dir, chroma_url)
    with errors():
        rag = rag_for(ctx, data_dir=data_dir, chroma_url=chroma_url)
        with bar("embedding", "chunks", disable=as_json) as progress:
            report = rag.ingest(paths or None, progress=progress, zotero=zotero)
    for line in report.skipped:
        echo(f"warning: {clean_line(line)}", err=True)
    if as_json:
        print_json(vars(report))
    else:
        typer.echo(
            f"{report.papers} papers from {report.files} files: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed ({report.chunks_embedded} chunks embedded, {report.seconds:.1f}s)"
        )
    if report.skipped:
        raise typer.Exit(1)  # done, but not everything given was read


def _reembed(ctx: typer.Context, paths, data_dir, chroma_url, as_json: bool, other: object) -> None:
    from rag.progress import bar

    if paths or other:
        fail("--reembed re-embeds what the store holds: give it no files, --watch or --zotero (ingest them after)")
    with errors():
        rag = rag_for(ctx, data_dir=data_dir, chroma_url=chroma_url)
        with bar("re-embedding", "chunks", disable=as_json) as progress:
            chunks = rag.reembed(progress)
    if as_json:
        print_json({"chunks_embedded": chunks, "embedder": rag.embedder.name})
    else:
        typer.echo(f"{chunks} chunks embedded again with {rag.embedder.name}")


def _watch(ctx: typer.Context, paths, data_dir, chroma_url) -> None:
    """`rag ingest --watch`: one line per changed file and per ingest, until Ctrl-C."""
    from rag import watch

    with errors():
        rag = rag_for(ctx, data_dir=data_dir, chroma_url=chroma_url)
        roots = [Path(p).expanduser() for p in (paths or [rag.settings.seed_dir])]
        echo(f"watching {', '.join(str(r) for r in roots)} (Ctrl-C stops)")
        try:
            watch.watch(rag, watch.WatchPlan(roots), lambda line: echo(clean_line(line)))
        except KeyboardInterrupt:
            echo("stopped")


@app.command()
def ask(
    ctx: typer.Context,
    question: str = typer.Argument(..., help="The question, in quotes."),
    k: Optional[int] = KOpt,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
    as_json: bool = JsonOpt,
    show_quotes: bool = QuotesOpt,
    evidence: bool = EvidenceOpt,
    bib: Optional[Path] = BibOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
    category: Optional[str] = CategoryOpt,
):
    """Answer a question from the indexed papers, citing their titles. What was found is printed
    first, while the model writes.

    Example: rag ask "Which papers prove regret bounds for control algorithms?" --year 2020..2023 --bib cited.bib
    """
    with errors():
        filters = filters_from(author, year, source, title, category)
        check_bib_target(bib)
        rag = rag_for(ctx, data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url)
        answer = rag.ask(question, k=k, on_token=stream(not as_json), filters=filters, on_evidence=show_evidence(evidence and not as_json))
    print_json(answer.to_json()) if as_json else print_answer(answer, streamed=True, quotes=show_quotes)
    with errors():
        write_bib(rag, answer, bib)


@app.command()
def summarize(
    ctx: typer.Context,
    topic: str = typer.Argument(..., help="The topic, in quotes."),
    k: Optional[int] = KOpt,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
    as_json: bool = JsonOpt,
    show_quotes: bool = QuotesOpt,
    evidence: bool = EvidenceOpt,
    bib: Optional[Path] = BibOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
    category: Optional[str] = CategoryOpt,
):
    """Write a short synthesis of what the papers say about a topic, each claim cited.

    Example: rag summarize "reward modelling for RLHF" --author Christiano --bib cited.bib
    """
    with errors():
        filters = filters_from(author, year, source, title, category)
        check_bib_target(bib)
        rag = rag_for(ctx, data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url)
        answer = rag.summarize(topic, k=k, on_token=stream(not as_json), filters=filters, on_evidence=show_evidence(evidence and not as_json))
    print_json(answer.to_json()) if as_json else print_answer(answer, streamed=True, quotes=show_quotes)
    with errors():
        write_bib(rag, answer, bib)


@app.command()
def search(
    ctx: typer.Context,
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "-k", "--k", min=1, help="How many papers to show."),
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    as_json: bool = JsonOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
    category: Optional[str] = CategoryOpt,
):
    """Find the most relevant papers without running the model (fast).

    Example: rag search "graph neural networks for recommendation" -k 3 --year 2021..
    """
    with errors():
        sources = rag_for(ctx, data_dir=data_dir, chroma_url=chroma_url).search(query, k=k, filters=filters_from(author, year, source, title, category))
    if as_json:
        print_json({"query": query, "results": [s.to_json(rank) for rank, s in enumerate(sources, 1)]})
        return
    from rag import render

    for rank, s in enumerate(sources, 1):
        for line in render.search_lines(rank, s):
            typer.echo(line)


@app.command()
def papers(
    ctx: typer.Context,
    data_dir: Optional[Path] = DataDir,
    as_json: bool = JsonOpt,
    author: Optional[str] = AuthorOpt,
    year: Optional[str] = YearOpt,
    source: Optional[str] = SourceOpt,
    title: Optional[str] = TitleOpt,
    category: Optional[str] = CategoryOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show each paper's sources and chunk count."),
    chroma_url: Optional[str] = ChromaOpt,
):
    """List the indexed papers: id, title, authors, year (with -v: source files and chunks).

    Example: rag papers --year 2020..2023 --author Lovelace --json
    """
    with errors():
        infos = rag_for(ctx, data_dir=data_dir, chroma_url=chroma_url).papers(filters_from(author, year, source, title, category))
    if as_json:
        print_json([p.to_json() for p in infos])
        return
    from rag.render import paper_line

    for p in infos:
        typer.echo(paper_line(p))
        if verbose:
            echo(f"              {p.chunks} chunks from {clean_line(', '.join(p.sources))}")
    typer.echo(f"{len(infos)} papers")


HANDFUL = 5  # removing more papers than this asks first


@app.command()
def remove(
    ctx: typer.Context,
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
    from rag.render import paper_line

    with errors():
        rag = rag_for(ctx, data_dir=data_dir, chroma_url=chroma_url)
        plan = rag.plan_removal(targets)
        if not dry_run and len(plan.drop) > HANDFUL and not yes:
            for p in plan.drop:
                typer.echo(f"would remove {paper_line(p)}", err=True)
            if not sys.stdin.isatty():
                raise InputError(f"this would remove {len(plan.drop)} papers; add --yes to confirm (or --dry-run to list them)")
            if not typer.confirm(f"Remove these {len(plan.drop)} papers?", default=False, err=True):
                typer.echo("nothing removed", err=True)
                raise typer.Exit(1)
        removed = plan.drop if dry_run else rag.remove(targets)
    if as_json:
        print_json({"removed": [p.to_json() for p in removed], **({"dry_run": True} if dry_run else {})})
        return
    for p in removed:
        typer.echo(f"{'would remove' if dry_run else 'removed'} {paper_line(p)}")
    typer.echo(f"{len(removed)} papers {'would be removed' if dry_run else 'removed'}")


@app.command()
def doctor(
    ctx: typer.Context,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
):
    """Check, offline, that the models are present and verified and the papers are indexed.

    Example: rag doctor
    """
    with errors():
        checks = rag_for(ctx, data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url).doctor()
    for c in checks:
        line = f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" + ("" if c.ok else f"  -> run `{c.fix}`")
        echo(clean_line(redact_urls(line)))
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


from rag import cli_tools  # noqa: E402,F401  registers eval, chat, bench and models after the commands above


def main() -> None:  # pragma: no cover - entry point for `python -m rag`
    app()
