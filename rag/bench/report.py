"""A benchmark run's results, its JSON, and docs/benchmarks.md (tables, targets, the plot)."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rag.bench.corpus import SEED_PAPERS
from rag.errors import InputError
from rag.stats import percentile

NOTES_MARKER = "<!-- analysis below is written by hand; `rag bench` keeps it when it rewrites the tables above -->"


@dataclass
class SizeResult:
    size: int
    papers: int = 0
    chunks: int = 0
    ingest_s: float = 0.0  # the ingest's own report (in-process work)
    ingest_wall_s: float = 0.0  # the whole `rag ingest` process
    papers_per_s: float = 0.0
    chunks_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    reingest_s: float = 0.0
    reingest_wall_s: float = 0.0
    lexical_load_s: float = 0.0
    cold_search_s: list[float] = field(default_factory=list)
    # CPU seconds (user + system) of the same processes: wall time minus waiting for a core,
    # which on a machine shared with other jobs is most of the difference between runs.
    ingest_cpu_s: float = 0.0
    reingest_cpu_s: float = 0.0
    cold_search_cpu_s: list[float] = field(default_factory=list)
    warm_search_ms: list[float] = field(default_factory=list)

    @property
    def cold_median_s(self) -> float:
        return statistics.median(self.cold_search_s) if self.cold_search_s else float("nan")

    @property
    def warm_p50_ms(self) -> float:
        return percentile(self.warm_search_ms, 50)

    @property
    def warm_p95_ms(self) -> float:
        return percentile(self.warm_search_ms, 95)


@dataclass
class AskResult:
    question: str
    abstained: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_s: float = 0.0  # retrieval + the model's first token
    first_text_s: float = 0.0  # first checked sentence shown to the user
    total_s: float = 0.0
    raw_prompt_s: float = 0.0  # llama.cpp alone on the same messages, prefix cache cleared
    raw_total_s: float = 0.0
    raw_prompt_tokens: int = 0
    raw_completion_tokens: int = 0
    naive_total_s: float = 0.0  # load model + top-5 chunks stuffed into a prompt + generate
    # CPU seconds of this process (all threads) for the same three runs: on a machine shared with
    # other jobs, wall time mostly measures the neighbours; CPU time measures the work.
    total_cpu_s: float = 0.0
    raw_cpu_s: float = 0.0
    naive_cpu_s: float = 0.0
    naive_prompt_tokens: int = 0
    naive_completion_tokens: int = 0

    @property
    def tokens_per_s(self) -> float:
        gen = self.total_s - self.first_token_s
        return (self.completion_tokens - 1) / gen if gen > 0 and self.completion_tokens > 1 else float("nan")

    @property
    def raw_prompt_tok_s(self) -> float:
        return self.raw_prompt_tokens / self.raw_prompt_s if self.raw_prompt_s > 0 else float("nan")

    @property
    def raw_gen_tok_s(self) -> float:
        gen = self.raw_total_s - self.raw_prompt_s
        return (self.raw_completion_tokens - 1) / gen if gen > 0 and self.raw_completion_tokens > 1 else float("nan")


@dataclass
class PdfResult:
    """`rag ingest` of a folder of PDFs: pages read per second of the ingest (parsing, chunking and
    embedding together), and the re-ingest of the unchanged folder (no parsing: pdf_cache)."""

    folder: str
    files: int = 0
    pages: int = 0
    chunks: int = 0
    ingest_s: float = 0.0
    ingest_wall_s: float = 0.0
    reingest_s: float = 0.0

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.ingest_s if self.ingest_s > 0 else float("nan")


@dataclass
class BenchReport:
    started: str
    machine: dict
    command: str
    sizes: list[SizeResult] = field(default_factory=list)
    asks: list[AskResult] = field(default_factory=list)
    model: str = ""
    model_load_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    pdfs: PdfResult | None = None
    baseline: str = ""  # the saved run this one is compared with (`--baseline`): when and how it ran
    against: list[dict] = field(default_factory=list)  # bench.compare.ratios rows

    def to_json(self) -> dict:
        data = asdict(self)
        if self.pdfs:
            data["pdfs"].update(pages_per_s=self.pdfs.pages_per_s)
        for s, d in zip(self.sizes, data["sizes"]):
            d.update(cold_median_s=s.cold_median_s, warm_p50_ms=s.warm_p50_ms, warm_p95_ms=s.warm_p95_ms)
        for a, d in zip(self.asks, data["asks"]):
            d.update(tokens_per_s=a.tokens_per_s, raw_prompt_tok_s=a.raw_prompt_tok_s, raw_gen_tok_s=a.raw_gen_tok_s)
        return data


def load_report(data: dict) -> BenchReport:
    """A report back from its benchmarks.json (derived fields are recomputed, not read)."""
    def pick(cls, d: dict):
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})

    report = pick(BenchReport, {k: v for k, v in data.items() if k not in ("sizes", "asks", "pdfs")})
    report.pdfs = pick(PdfResult, data["pdfs"]) if isinstance(data.get("pdfs"), dict) else None
    report.sizes = [pick(SizeResult, d) for d in data.get("sizes", [])]
    report.asks = [pick(AskResult, d) for d in data.get("asks", [])]
    return report


def read_report(path: Path) -> BenchReport:
    """A saved benchmarks.json; anything else is one error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    except ValueError as exc:  # not UTF-8, or not JSON
        raise InputError(f"{path}: not a benchmarks.json written by `rag bench` ({exc.__class__.__name__})") from None
    try:
        if not isinstance(data, dict) or not all(isinstance(d, dict) for d in data.get("sizes", []) + data.get("asks", [])):
            raise TypeError("not a report object")
        return load_report(data)
    except (TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a benchmarks.json written by `rag bench` ({exc})") from None


def combine(files: list[Path], out_dir: Path) -> BenchReport:
    """One report from several runs' benchmarks.json (e.g. the sizes from a long run, the model
    part from another): later files win for a size or for the model part; notes say which run
    gave what. Writes the docs like `run`."""
    reports = [read_report(Path(f)) for f in files]
    merged = reports[0]
    by_size = {s.size: (s, reports[0]) for s in merged.sizes}
    for r in reports[1:]:
        for s in r.sizes:
            by_size[s.size] = (s, r)
        if r.pdfs:
            merged.pdfs = r.pdfs
        if r.asks:
            merged.asks, merged.model, merged.model_load_s = r.asks, r.model, r.model_load_s
            merged.notes.append(f"The `ask` tables come from `{r.command}`, run {r.started} (load {r.machine.get('load_at_start')} .. {r.machine.get('load_at_end', '?')}).")
    merged.sizes = [by_size[k][0] for k in sorted(by_size)]
    for size, (_, r) in sorted(by_size.items()):
        if r is not reports[0]:
            merged.notes.append(f"Size {size:,} comes from `{r.command}`, run {r.started}.")
    write(merged, out_dir)
    return merged


def write(report: BenchReport, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    plotted = plot(report, out_dir / "bench_latency.png")
    md = out_dir / "benchmarks.md"
    kept = ""
    if md.exists():  # hand-written analysis below the marker survives a re-run
        old = md.read_text()
        kept = old[old.index(NOTES_MARKER):] if NOTES_MARKER in old else ""
    md.write_text(render(report, plotted) + ("\n" + kept if kept else ""))


def _against(report: BenchReport) -> list[str]:
    """The table of `report.against` (bench.compare.ratios), or nothing."""
    if not report.against:
        return []
    lines = ["", f"## Against the baseline ({report.baseline})", "",
             "Ratios are new / old; below 1 is better for a time, above 1 for a rate.", "",
             "| measure | old | new | new / old | better |", "|---|---:|---:|---:|---|"]
    return lines + [f"| {r['measure']} | {r['old']} | {r['new']} | {r['ratio']:.2f} | {r['better']} |" for r in report.against]


def plot(report: BenchReport, path: Path) -> bool:
    """Search latency and ingest throughput against corpus size; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xs = [s.papers or s.size for s in report.sizes]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(xs, [s.cold_median_s * 1000 for s in report.sizes], "o-", label="cold `rag search` process (median)")
    a.plot(xs, [s.warm_p95_ms for s in report.sizes], "s-", label="warm search p95")
    a.plot(xs, [s.warm_p50_ms for s in report.sizes], "^-", label="warm search p50")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("papers in the store")
    a.set_ylabel("latency (ms)")
    a.set_title("search latency")
    a.grid(True, which="both", alpha=0.3)
    a.legend(fontsize=8)
    b.plot(xs, [s.papers_per_s for s in report.sizes], "o-", label="ingest papers/s")
    b.plot(xs, [s.chunks_per_s for s in report.sizes], "s-", label="ingest chunks/s")
    b.set_xscale("log")
    b.set_xlabel("papers ingested")
    b.set_ylabel("throughput (1/s)")
    b.set_title("ingest throughput")
    b.grid(True, which="both", alpha=0.3)
    b.legend(fontsize=8)
    fig.suptitle(f"paper-rag, {report.machine.get('cores')} cores, {report.started}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _f(x: float, digits: int = 2) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def targets(report: BenchReport) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target of issue #4."""
    by = {s.size: s for s in report.sizes}
    rows = []

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else ("met" if ok else "NOT met")

    s = by.get(SEED_PAPERS)
    rows.append(("cold `rag search` <= 1.0 s on the seeds", f"{_f(s.cold_median_s)} s median" if s else "-", verdict(s and s.cold_median_s <= 1.0)))
    s = by.get(10_000)
    biggest = max(report.sizes, key=lambda r: r.size, default=None)
    if s:
        rows.append(("warm search p95 <= 50 ms at 10,000 papers", f"{_f(s.warm_p95_ms, 1)} ms", verdict(s.warm_p95_ms <= 50)))
    else:
        got = f"{_f(biggest.warm_p95_ms, 1)} ms at {biggest.size:,} (10,000 not run)" if biggest else "-"
        rows.append(("warm search p95 <= 50 ms at 10,000 papers", got, verdict(None)))
    if biggest:
        rows.append(("ingest >= 100 papers/s", f"{_f(biggest.papers_per_s, 1)} papers/s at {biggest.size:,}", verdict(biggest.papers_per_s >= 100)))
    s = by.get(1000)
    rows.append(("re-ingest unchanged <= 2 s at 1,000 papers", f"{_f(s.reingest_s)} s (process {_f(s.reingest_wall_s)} s)" if s else "-", verdict(s and s.reingest_s <= 2.0)))
    asks = [a for a in report.asks if a.raw_total_s > 0]
    if asks:
        # Verdicts on CPU seconds when they were measured: wall time on a shared machine is noise.
        ratio = sum(a.total_s for a in asks) / sum(a.raw_total_s for a in asks)
        cpu = [a for a in asks if a.raw_cpu_s > 0]
        cpu_ratio = sum(a.total_cpu_s for a in cpu) / sum(a.raw_cpu_s for a in cpu) if cpu else None
        shown = f"{cpu_ratio:.2f} x CPU time ({ratio:.2f} x wall)" if cpu_ratio else f"{ratio:.2f} x wall"
        rows.append(("`ask` total <= 1.10 x the model's own prompt+generation time", shown, verdict((cpu_ratio or ratio) <= 1.10)))
        ttft = statistics.median(a.first_token_s for a in report.asks)
        rows.append((f"time to first token <= 3 s ({report.model}, seeds question)", f"{ttft:.1f} s median (wall)", verdict(ttft <= 3.0)))
        speed = sum(a.naive_total_s for a in report.asks) / sum(a.total_s for a in report.asks)
        cpu_speed = sum(a.naive_cpu_s for a in report.asks) / sum(a.total_cpu_s for a in report.asks) if all(a.total_cpu_s > 0 for a in report.asks) else None
        shown = f"{cpu_speed:.2f} x CPU time ({speed:.2f} x wall)" if cpu_speed else f"{speed:.2f} x wall"
        rows.append((">= 2x faster end to end than the naive pipeline", shown, verdict((cpu_speed or speed) >= 2.0)))
    else:
        for t in ("`ask` total <= 1.10 x the model's own time", "time to first token <= 3 s", ">= 2x faster than the naive pipeline"):
            rows.append((t, "-", verdict(None)))
    return rows


def _noise_note(machine: dict) -> str:
    """What the load averages say about these numbers, from this run's machine."""
    cores = machine.get("cores") or 1
    loads = [float(x) for x in str(machine.get("load_at_start", "")).split()[:1] + str(machine.get("load_at_end", "")).split()[:1] if x.replace(".", "", 1).isdigit()]
    busy = max(loads, default=0.0)
    if busy >= 0.5 * cores:
        return (
            f"**These numbers are noisy.** The load average reached {busy:.2f} on {cores} cores during the run, so "
            "other work shared the machine and a repeat can differ by tens of percent; compare ratios measured "
            "in the same run rather than absolute times across runs."
        )
    return (
        f"The machine was otherwise quiet (load average at most {busy:.2f} on {cores} cores); still, compare "
        "ratios measured in the same run rather than absolute times across runs."
    )


def render(report: BenchReport, plotted: bool = True) -> str:
    m = report.machine
    lines = [
        "# Benchmarks",
        "",
        f"Measured {report.started} by `{report.command or 'rag bench'}` on {m.get('cpu')}, "
        f"{m.get('cores')} cores, {m.get('memory')} RAM, Python {m.get('python')}, GPU: {m.get('gpu', 'not recorded')}. "
        f"Load average at start {m.get('load_at_start')}, at end {m.get('load_at_end', '?')}.",
        "",
        _noise_note(m),
        "",
        "## Targets (issue #4)",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {v} | {ok} |" for t, v, ok in targets(report)]
    lines += [
        "",
        "## Ingest and search by corpus size",
        "",
        "Size 82 is `seeds/`; larger corpora add synthetic papers built from seed sentences (fixed random seed). "
        "Ingest runs as a `rag ingest` process with the real embedder; *ingest s* is the ingest's own time "
        "(what `rag ingest` prints), *process s* includes start-up. Re-ingest is the same command again on the "
        "unchanged corpus. Cold search is a whole `rag search` process, shell to printed result. Warm search is "
        "`Rag.search` in a process that has already searched once (p50/p95 over every query and repetition).",
        "",
        "| papers | chunks | ingest s | process s (CPU s) | papers/s | chunks/s | peak RSS MiB | re-ingest s (process s; CPU s) | cold search s (median, min; CPU median) | warm p50 ms | warm p95 ms | BM25 index load ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in report.sizes:
        cold = f"{_f(s.cold_median_s)}, {_f(min(s.cold_search_s))}" if s.cold_search_s else "-"
        if s.cold_search_cpu_s:
            cold += f"; {_f(statistics.median(s.cold_search_cpu_s))}"
        cpu = lambda x: f" ({_f(x, 1)})" if x else ""  # noqa: E731
        lines.append(
            f"| {s.papers:,} | {s.chunks:,} | {_f(s.ingest_s, 1)} | {_f(s.ingest_wall_s, 1)}{cpu(s.ingest_cpu_s)} | {_f(s.papers_per_s, 1)} | "
            f"{_f(s.chunks_per_s, 1)} | {_f(s.peak_rss_mb, 0)} | {_f(s.reingest_s)} ({_f(s.reingest_wall_s)}{'; ' + _f(s.reingest_cpu_s) if s.reingest_cpu_s else ''}) | {cold} | "
            f"{_f(s.warm_p50_ms, 1)} | {_f(s.warm_p95_ms, 1)} | {_f(s.lexical_load_s * 1000, 0)} |"
        )
    if plotted:
        lines += ["", "![search latency and ingest throughput against corpus size](bench_latency.png)"]
    if report.pdfs:
        p = report.pdfs
        lines += [
            "",
            "## PDF ingest",
            "",
            f"`rag ingest {p.folder}` into an empty store: parsing (PDFium for the text, pypdf for the first page's layout), "
            "chunking and embedding together; re-ingest is the same folder unchanged (parsed PDFs come from the cache).",
            "",
            "| files | pages | chunks | ingest s (process s) | pages/s | re-ingest s |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {p.files} | {p.pages} | {p.chunks} | {_f(p.ingest_s, 1)} ({_f(p.ingest_wall_s, 1)}) | {_f(p.pages_per_s, 1)} | {_f(p.reingest_s)} |",
        ]
    if report.asks:
        lines += [
            "",
            f"## `ask` on the seeds ({report.model}, loaded once in {report.model_load_s:.1f} s)",
            "",
            "*pipeline*: `Rag.ask` with the model already loaded (as in `rag chat`); first token = retrieval + the "
            "model's first token; first text = the first checked sentence shown. *model alone*: llama.cpp given the "
            "very same messages with its prefix cache cleared, so its time is the model's own prompt processing + "
            "generation. *naive*: load the model, embed the question, top-5 chunks stuffed into one prompt, generate "
            "(same max tokens and sampling).",
            "",
            "| question | prompt tok | answer tok | first token s | first text s | tok/s | pipeline total s (CPU s) | model alone s (prompt s; CPU s) | model prompt tok/s | model gen tok/s | pipeline / model (CPU) | naive total s (CPU s; tokens) | naive / pipeline (CPU) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for a in report.asks:
            nan = float("nan")
            ratio = a.total_s / a.raw_total_s if a.raw_total_s else nan
            cpu_ratio = a.total_cpu_s / a.raw_cpu_s if a.raw_cpu_s else nan
            naive = a.naive_total_s / a.total_s if a.total_s else nan
            naive_cpu = a.naive_cpu_s / a.total_cpu_s if a.total_cpu_s else nan
            lines.append(
                f"| {a.question}{' (abstained)' if a.abstained else ''} | {a.prompt_tokens} | {a.completion_tokens} | "
                f"{_f(a.first_token_s, 1)} | {_f(a.first_text_s, 1)} | {_f(a.tokens_per_s, 1)} | {_f(a.total_s, 1)} ({_f(a.total_cpu_s, 1)}) | "
                f"{_f(a.raw_total_s, 1)} ({_f(a.raw_prompt_s, 1)}; {_f(a.raw_cpu_s, 1)}) | {_f(a.raw_prompt_tok_s, 0)} | {_f(a.raw_gen_tok_s, 1)} | "
                f"{_f(ratio)} ({_f(cpu_ratio)}) | {_f(a.naive_total_s, 1)} ({_f(a.naive_cpu_s, 1)}; {a.naive_prompt_tokens}+{a.naive_completion_tokens}) | "
                f"{_f(naive)} ({_f(naive_cpu)}) |"
            )
    lines += _against(report)
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    lines += [
        "",
        "## Reproduce",
        "",
        "```bash",
        "export RAG_MODELS_DIR=models            # where `rag models pull` put the models",
        "python scripts/bench.py                  # everything: sizes 82, 1000, 10000 and the LLM part (an hour or more on a laptop)",
        "python scripts/bench.py --sizes 82 --no-llm        # a quick run (under a minute)",
        "python scripts/bench.py --sizes 82,1000 --no-llm   # ingest at 1,000 papers too (about 2-4 minutes)",
        "rag bench --from-json a.json --from-json b.json    # rewrite these docs from saved runs' benchmarks.json",
        "rag bench --sizes 82 --questions 2 --out /tmp/bench # the same through the CLI, elsewhere",
        "```",
        "",
    ]
    return "\n".join(lines)
