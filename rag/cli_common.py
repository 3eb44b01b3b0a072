"""What every `rag` command shares: the Typer app, the common options, the one error boundary
(`errors()`: a `RagError` or a stray `OSError` becomes one `error:` line and exit code 2), the
seam that hands a command its `Rag`, and answer printing. The commands are in cli.py (papers and
answers) and cli_tools.py (eval, chat, bench, models)."""

from __future__ import annotations

import contextlib
import json

import typer

from rag.errors import InputError, RagError
from rag.safe_text import clean, clean_line, redact_urls
from rag.settings import Settings

app = typer.Typer(
    help="Ask questions about a collection of research papers, offline, with cited titles.\n\n"
    "Example: rag ingest && rag ask \"Which papers study model-based reinforcement learning?\"",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("paper-rag")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "unknown"
        typer.echo(f"rag (paper-rag) {number}")
        raise typer.Exit()


@app.callback()
def _options(
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    pass


models_app = typer.Typer(help="Fetch and list model files.\n\nExample: rag models pull", no_args_is_help=True)
app.add_typer(models_app, name="models")

DataDir = typer.Option(None, "--data-dir", help="Store location (env RAG_DATA_DIR).", show_default=False)
ModelOpt = typer.Option(None, "--model", "-m", help="Model name from `rag models list` or a .gguf path (env RAG_MODEL).", show_default=False)
KOpt = typer.Option(None, "-k", "--k", min=1, help="How many papers to use.", show_default=False)
JsonOpt = typer.Option(False, "--json", help="Print JSON only.")
ChromaOpt = typer.Option(None, "--chroma-url", help="Use a Chroma server, http://HOST:PORT (env RAG_CHROMA_URL).", show_default=False)
LlmOpt = typer.Option(None, "--llm-url", help="Generate with an OpenAI-compatible server, http://HOST:PORT/v1 (env RAG_LLM_URL).", show_default=False)
EvidenceOpt = typer.Option(True, "--evidence/--no-evidence", help="Before the answer, print each paper it will draw on and its sentence closest to the question.")
QuotesOpt = typer.Option(False, "--show-quotes", help="Under each cited title, print the paper's sentence that supports the claim.")
AuthorOpt = typer.Option(None, "--author", help="Only papers with an author name containing this.", show_default=False)
YearOpt = typer.Option(None, "--year", help="Only papers from this year or range: 2021, 2020..2023, 2020.., ..2023.", show_default=False)
SourceOpt = typer.Option(None, "--source", help="Only papers read from this file or folder (or a path containing this).", show_default=False)
CategoryOpt = typer.Option(None, "--category", help="Only papers in this arXiv category (cs.CL) or archive (cs).", show_default=False)
TitleOpt = typer.Option(None, "--title", help="Only papers whose title contains this.", show_default=False)


def filters_from(author, year, source, title, category=None):
    from rag.filters import Filters

    return Filters.parse(author=author, year=year, source=source, title=title, category=category)


def echo(text: str = "", err: bool = False) -> None:
    """Print text that may hold titles, file names or model output: terminal escape sequences and
    other control characters never reach the terminal (a title could retitle the window or clear
    the screen). JSON output is printed as is; json.dumps escapes them."""
    typer.echo(clean(text), err=err)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {clean_line(redact_urls(message))}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def errors():
    try:
        yield
    except RagError as exc:
        fail(str(exc))
    except OSError as exc:  # what no library layer turned into a RagError: still one line, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        typer.echo("\ninterrupted", err=True)
        raise typer.Exit(130)


def rag_for(ctx: typer.Context, **overrides):
    """The `Rag` for one command. A caller may hand in a factory as the context object (tests give
    fakes this way: `CliRunner().invoke(app, args, obj=factory)`); else one is built from settings."""
    if callable(ctx.obj):
        return ctx.obj(**overrides)
    from rag.pipeline import Rag

    return Rag(Settings.load(**overrides))


def print_json(data) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_answer(answer, streamed: bool, quotes: bool = False) -> None:
    from rag import render

    if answer.abstained:
        echo(("\n" if streamed else "") + answer.answer)
        return
    if not streamed:
        echo(answer.answer)
    typer.echo("\n" if streamed else "")
    for line in render.sources_lines(answer, quotes):
        typer.echo(line)
    coverage = render.coverage_line(answer)
    if coverage:
        typer.echo(coverage)


def stream(enabled: bool):
    from rag import render

    return render.stdout_writer() if enabled else None


BibOpt = typer.Option(None, "--bib", help="Write the BibTeX entries of the papers the answer cites to this file.", show_default=False, dir_okay=False)


def check_bib_target(path) -> None:
    """Refuse a --bib file that cannot be written before the model runs, not after."""
    import os

    if path is None:
        return
    parent = path.expanduser().resolve().parent
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"cannot write the BibTeX file {path}: {'it is a folder' if path.is_dir() else 'its folder is missing or read-only'}")


def write_bib(rag, answer, path) -> None:
    """The cited papers' entries to `path` (written whole or not at all); one line on stderr."""
    import os

    if path is None:
        return
    text = rag.bibtex(answer)
    if not text:
        echo(f"no paper cited: {path} not written", err=True)
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    n = len({c.paper_id for c in answer.citations})
    echo(f"wrote {n} BibTeX {'entry' if n == 1 else 'entries'} to {path}", err=True)


def show_evidence(enabled: bool):
    from rag import render

    return render.evidence_writer() if enabled else None
