"""The tool commands of `rag`: eval, chat, mcp, bench and models. Registered on the same app as the
paper and answer commands (cli.py imports this module last, so `rag --help` keeps its order)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from rag.cli_common import ChromaOpt, DataDir, JsonOpt, KOpt, LlmOpt, ModelOpt, app, echo, errors, fail, models_app, print_json, rag_for, stream
from rag.safe_text import clean_line
from rag.settings import Settings


@app.command("eval")
def evaluate(
    ctx: typer.Context,
    questions: Optional[Path] = typer.Argument(None, help="JSON lines: question, gold_titles, answer_facts, kind.", show_default=False),
    no_llm: bool = typer.Option(False, "--no-llm", help="Retrieval metrics only (no model, fast)."),
    synthetic: int = typer.Option(0, "--synthetic", min=0, help="Instead of a file: N questions made from the indexed papers (retrieval only)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="For a claims file: the JSON-lines corpus its paper ids refer to.", show_default=False),
    per_label: int = typer.Option(0, "--per-label", min=0, help="For a claims file: N claims of each label, spread over the file (0: all)."),
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
    as_json: bool = JsonOpt,
):
    """Measure retrieval (BM25, dense, hybrid side by side) and answer quality on a question set,
    or the direction of answers on a claims file (SciFact's claims_test_labels.jsonl shape).

    Example: rag eval questions.jsonl --no-llm   (or: rag eval --synthetic 50;
    rag eval claims_test_labels.jsonl --corpus corpus.jsonl.gz --per-label 20)
    """
    from rag import claims, evaluation
    from rag.errors import InputError
    from rag.progress import bar

    with errors():
        rag = rag_for(ctx, data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url)
        if questions is not None and claims.is_claims_file(questions):
            from rag.corpus import corpus_titles

            items = claims.load_claims(questions, corpus_titles(corpus) if corpus else {}, per_label)
            with bar("asking", "claims", disable=as_json) as progress:
                result = claims.evaluate_claims(rag.ask, items, progress)
            print_json(result.to_json()) if as_json else echo(claims.render(result))
            return
        if synthetic:
            items, no_llm = evaluation.synthetic_questions(rag, synthetic), True
        elif questions is None:
            raise InputError("give a question file or --synthetic N")
        else:
            items = evaluation.load_questions(questions)
        with bar("evaluating", "questions", disable=as_json) as progress:
            report = evaluation.evaluate(rag, items, use_llm=not no_llm, progress=progress)
    print_json(report.to_json()) if as_json else echo(evaluation.render(report))


@app.command()
def chat(
    ctx: typer.Context,
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

    with errors():
        rag = rag_for(ctx, data_dir=data_dir, model=model)
        rag.store.count()  # fail now, not at the first question, when nothing is indexed
        load = getattr(rag.generator, "load", None)
        if load:
            load()
        chat_lib.run(chat_lib.ChatSession(rag, k=k), read, stream(True))


@app.command()
def mcp(
    ctx: typer.Context,
    model: Optional[str] = ModelOpt,
    data_dir: Optional[Path] = DataDir,
    chroma_url: Optional[str] = ChromaOpt,
    llm_url: Optional[str] = LlmOpt,
):
    """Serve the papers to MCP clients (assistants, editors) over stdio: tools search_papers, ask,
    summarize and list_papers, with the same filters as the commands.

    Example: rag mcp --data-dir ~/.local/share/paper-rag   (register this command with the client)
    """
    with errors():
        try:
            from rag.mcp_server import build_server
        except ImportError as exc:
            fail(f"the MCP SDK is not installed ({exc}); run scripts/setup.sh")
        rag = rag_for(ctx, data_dir=data_dir, model=model, chroma_url=chroma_url, llm_url=llm_url)  # bad settings: one line now, not at the first call
        build_server(lambda: rag).run("stdio")


@app.command()
def bench(
    sizes: str = typer.Option("82,1000,10000", "--sizes", help="Corpus sizes in papers, comma-separated (82 = the seeds)."),
    no_llm: bool = typer.Option(False, "--no-llm", help="Skip the model part (ask, model alone, naive pipeline)."),
    questions: int = typer.Option(3, "--questions", min=1, max=4, help="How many fixed seed questions to ask."),
    cold_reps: int = typer.Option(5, "--cold-reps", min=1, help="Cold `rag search` processes per size."),
    warm_reps: int = typer.Option(3, "--warm-reps", min=1, help="Passes over the search queries, in-process, per size."),
    out: Path = typer.Option(Path("docs"), "--out", help="Where benchmarks.md, benchmarks.json and bench_latency.png go."),
    work_dir: Optional[Path] = typer.Option(None, "--work-dir", help="Keep corpora and stores here (default: a temp dir, removed).", show_default=False),
    pdfs: Optional[Path] = typer.Option(None, "--pdfs", help="Also measure the ingest of this folder of PDFs (pages/s).", show_default=False),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="A saved benchmarks.json (an earlier commit's run) to report new / old ratios against.", show_default=False),
    model: Optional[str] = ModelOpt,
    from_json: Optional[List[Path]] = typer.Option(None, "--from-json", help="Measure nothing: rewrite the docs from saved benchmarks.json files (later ones win per size / for the model part).", show_default=False),
):
    """Measure ingest, search and ask speed at several corpus sizes; write docs/benchmarks.md and a plot.

    Example: rag bench --sizes 82,1000 --no-llm   (or: rag bench --sizes 82 --no-llm --pdfs ~/papers --baseline old.json)
    """
    from rag import bench as bench_lib

    if from_json:
        with errors():
            report = bench_lib.combine(list(from_json), out)
        for target, measured, verdict in bench_lib.targets(report):
            typer.echo(f"{verdict:13} {target}: {measured}")
        typer.echo(f"wrote {out / 'benchmarks.md'}")
        return
    try:
        wanted = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        fail(f"--sizes needs whole numbers separated by commas, got {sizes!r}")
    if not wanted or min(wanted) < 1:
        fail("--sizes needs at least one size of 1 or more")
    if pdfs is not None and not pdfs.is_dir():
        fail(f"--pdfs needs a folder of PDFs, got {pdfs}")
    with errors():
        settings = Settings.load(model=model)
        plan = bench_lib.BenchPlan(
            wanted, use_llm=not no_llm, questions=questions, cold_reps=cold_reps, warm_reps=warm_reps, work_dir=work_dir, pdfs=pdfs, baseline=baseline,
            command=f"rag bench --sizes {sizes}{' --no-llm' if no_llm else f' --questions {questions}'}{f' --pdfs {pdfs}' if pdfs else ''}",
        )
        report = bench_lib.run(plan, out, settings, log=lambda m: typer.echo(m, err=True))
    for target, measured, verdict in bench_lib.targets(report):
        typer.echo(f"{verdict:13} {target}: {measured}")
    typer.echo(f"wrote {out / 'benchmarks.md'}")


@models_app.command("pull")
def models_pull(
    names: Optional[List[str]] = typer.Argument(None, help="Models to fetch. Default: the default model, the embedding model and the reranker.", show_default=False),
    all_models: bool = typer.Option(False, "--all", help="Fetch every known model."),
):
    """Download, assemble and verify model files into models/ (the only network use).

    Example: rag models pull qwen2.5-coder-0.5b
    """
    from rag import models
    from rag.progress import bar

    with errors():
        settings = Settings.load()
        wanted = list(models.REGISTRY) if all_models else (names or [settings.model, models.EMBEDDING_MODEL, models.RERANKER_MODEL])
        specs = [models.get_spec(n) for n in wanted]
        for spec in specs:
            with bar(spec.name, "bytes") as progress:
                done = [0]

                def step(n: int) -> None:
                    done[0] += n
                    progress(done[0], spec.size)

                models.pull(spec, settings.models_dir, on_progress=step)
            echo(f"{spec.name}: ready in {clean_line(str(settings.models_dir))}")


@models_app.command("list")
def models_list():
    """Show the known models and whether each is present and verified.

    Example: rag models list
    """
    from rag import models

    with errors():
        settings = Settings.load()
        for spec in models.REGISTRY.values():
            status = models.check(spec, settings.models_dir)
            state = "ready" if status.verified else ("unverified" if status.present else "missing")
            default = " (default)" if spec.name in (settings.model, models.EMBEDDING_MODEL, models.RERANKER_MODEL) else ""
            typer.echo(f"{spec.name:24} {spec.kind:9} {state:10} {spec.description}{default}")
    echo(f"models folder: {clean_line(str(settings.models_dir))}")
