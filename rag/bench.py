"""Benchmarks for `rag bench` / scripts/bench.py: ingest, search and ask, measured in one run.

Ingest and cold search run as subprocesses (`python -m rag ...`), exactly as a user runs them, so
the numbers include process start-up; peak memory is the ingest process's own max RSS (from
`os.wait4`, stdlib only). Warm search and `ask` run in this process, with everything loaded.

Corpora: size 82 is `seeds/` as shipped. Other sizes are the seed papers plus synthetic ones, each
a Markdown file whose title mixes two seed titles and whose abstract is a shuffle of sentences from
two seed abstracts (as many sentences as a seed abstract has), drawn with a fixed random seed, so
every run and every machine indexes the same text.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rag.settings import PROJECT_ROOT, Settings
from rag.stats import percentile

SEED_PAPERS = 82
SEARCH_QUERIES = [
    "graph neural networks for recommendation",
    "regret bounds for control of unknown systems",
    "data-efficient augmentation for training neural networks",
    "tabular classification with transformers",
    "multi-agent reinforcement learning collusion",
    "memory-based dynamic graph neural networks",
    "self-supervised learning on graphs",
    "language model reward modelling",
]
# Questions on the seeds (each has a paper that answers it).
QUESTIONS = [
    "What does TabPFN do, and how fast is it?",
    "What speedups does the data-efficient augmentation method achieve on CIFAR10?",
    "Can Q-learners learn to collude in the iterated prisoner's dilemma?",
    "How are sheaf neural networks used for recommender systems?",
]
NAIVE_PROMPT = "Answer the question using the context.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"

Log = Callable[[str], None]
NOTES_MARKER = "<!-- analysis below is written by hand; `rag bench` keeps it when it rewrites the tables above -->"


# --- synthetic corpus ---------------------------------------------------------------------------


def seed_papers(seed_dir: Path | None = None):
    from rag import corpus

    files = corpus.load([seed_dir or PROJECT_ROOT / "seeds"])
    return [p for f in files for p in f.papers]


def synthetic_papers(n: int, seeds, rng_seed: int = 4) -> list[tuple[str, str]]:
    """`n` (title, abstract) pairs built from the seed papers' titles and sentences."""
    from rag.text import normalize_title, split_sentences

    rng = random.Random(rng_seed)
    with_text = [p for p in seeds if p.abstract]
    sentences = [split_sentences(p.abstract) for p in with_text]
    taken = {normalize_title(p.title) for p in seeds}
    out: list[tuple[str, str]] = []
    while len(out) < n:
        a, b = rng.sample(range(len(with_text)), 2)
        wa, wb = with_text[a].title.split(), with_text[b].title.split()
        title = " ".join(wa[: max(1, len(wa) // 2)] + wb[len(wb) // 2 :])
        if normalize_title(title) in taken:
            title = f"{title} {rng.choice(['Revisited', 'at Scale', 'in Practice', 'Made Simple', 'for Everyone'])}"
        if normalize_title(title) in taken:
            continue
        taken.add(normalize_title(title))
        want = len(sentences[a])
        pool = sentences[a] + sentences[b]
        body = rng.sample(pool, min(want, len(pool)))
        out.append((title, " ".join(body)))
    return out


def build_corpus(size: int, folder: Path, seed_dir: Path | None = None) -> Path:
    """A folder to ingest holding `size` papers: the seed listings plus synthetic Markdown papers
    (below 82, the first `size` seed papers as Markdown)."""
    seed_dir = seed_dir or PROJECT_ROOT / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    seeds = seed_papers(seed_dir)
    if size < len(seeds):
        for i, p in enumerate(seeds[:size]):
            (folder / f"seed_{i:03d}.md").write_text(f"# {p.title}\n\n{p.abstract}\n")
        return folder
    for f in sorted(seed_dir.glob("*.txt")):
        shutil.copy(f, folder / f.name)
    for i, (title, abstract) in enumerate(synthetic_papers(size - len(seeds), seeds)):
        (folder / f"syn_{i:05d}.md").write_text(f"# {title}\n\n{abstract}\n")
    return folder


# --- results ------------------------------------------------------------------------------------


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
class BenchReport:
    started: str
    machine: dict
    command: str
    sizes: list[SizeResult] = field(default_factory=list)
    asks: list[AskResult] = field(default_factory=list)
    model: str = ""
    model_load_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
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

    report = pick(BenchReport, {k: v for k, v in data.items() if k not in ("sizes", "asks")})
    report.sizes = [pick(SizeResult, d) for d in data.get("sizes", [])]
    report.asks = [pick(AskResult, d) for d in data.get("asks", [])]
    return report


def _read_report(path: Path) -> BenchReport:
    """A saved benchmarks.json; anything else is one error naming the file."""
    from rag.errors import InputError

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
    reports = [_read_report(Path(f)) for f in files]
    merged = reports[0]
    by_size = {s.size: (s, reports[0]) for s in merged.sizes}
    for r in reports[1:]:
        for s in r.sizes:
            by_size[s.size] = (s, r)
        if r.asks:
            merged.asks, merged.model, merged.model_load_s = r.asks, r.model, r.model_load_s
            merged.notes.append(f"The `ask` tables come from `{r.command}`, run {r.started} (load {r.machine.get('load_at_start')} .. {r.machine.get('load_at_end', '?')}).")
    merged.sizes = [by_size[k][0] for k in sorted(by_size)]
    for size, (_, r) in sorted(by_size.items()):
        if r is not reports[0]:
            merged.notes.append(f"Size {size:,} comes from `{r.command}`, run {r.started}.")
    _write(merged, out_dir)
    return merged


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": mem,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
        "load_at_start": _loadavg(),
    }


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --- subprocess runs ----------------------------------------------------------------------------


def _rag_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def _env(data_dir: Path, models_dir: Path) -> dict:
    env = dict(os.environ)
    env["RAG_DATA_DIR"] = str(data_dir)
    env["RAG_MODELS_DIR"] = str(models_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_measured(cmd: list[str], env: dict, cpu: list[float] | None = None) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MiB) of one child process, from start to exit; its CPU
    seconds (user + system) are appended to `cpu` when given."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(PROJECT_ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed ({proc.returncode}): {stderr.strip()[-500:]}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    rss_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 1024 / 1024
    return stdout, wall, rss_mb


# --- measurements -------------------------------------------------------------------------------


def bench_size(size: int, work: Path, settings: Settings, cold_reps: int, warm_reps: int, log: Log) -> tuple[SizeResult, Path]:
    result = SizeResult(size)
    if size == SEED_PAPERS:
        corpus_dir = settings.seed_dir
    else:
        log(f"[{size}] writing the corpus")
        corpus_dir = build_corpus(size, work / f"corpus-{size}", settings.seed_dir)
    data = work / f"data-{size}"
    env = _env(data, settings.models_dir)
    log(f"[{size}] ingest")
    cpu: list[float] = []
    out, wall, rss = run_measured(_rag_cmd("ingest", str(corpus_dir), "--json"), env, cpu)
    result.ingest_cpu_s = cpu[-1]
    report = json.loads(out)
    result.papers, result.chunks = report["papers"], report["chunks_embedded"]
    result.ingest_s, result.ingest_wall_s, result.peak_rss_mb = report["seconds"], wall, rss
    result.papers_per_s = result.papers / report["seconds"]
    result.chunks_per_s = result.chunks / report["seconds"]
    log(f"[{size}] {result.papers} papers, {result.chunks} chunks in {report['seconds']:.1f}s ({result.papers_per_s:.1f} papers/s), peak {rss:.0f} MiB")
    out, wall, _ = run_measured(_rag_cmd("ingest", str(corpus_dir), "--json"), env, cpu)
    result.reingest_cpu_s = cpu[-1]
    again = json.loads(out)
    assert again["chunks_embedded"] == 0, again
    result.reingest_s, result.reingest_wall_s = again["seconds"], wall
    log(f"[{size}] re-ingest unchanged {again['seconds']:.2f}s (process {wall:.2f}s)")
    for i in range(cold_reps):
        _, wall, _ = run_measured(_rag_cmd("search", SEARCH_QUERIES[i % len(SEARCH_QUERIES)], "-k", "5"), env, result.cold_search_cpu_s)
        result.cold_search_s.append(wall)
    log(f"[{size}] cold search median {result.cold_median_s:.2f}s over {cold_reps} (CPU {statistics.median(result.cold_search_cpu_s):.2f}s)")

    from rag.pipeline import Rag
    from rag.retrieval import LexicalIndex

    rag = Rag(Settings.load(data_dir=data, models_dir=settings.models_dir))
    gen = rag.store.generation()
    for _ in range(3):
        t = time.perf_counter()
        LexicalIndex.load(data / "lexical", gen)
        result.lexical_load_s = min(result.lexical_load_s or 1e9, time.perf_counter() - t)
    rag.search(SEARCH_QUERIES[0], k=5)  # warm-up: embedder, store, BM25 index
    for _ in range(warm_reps):
        for q in SEARCH_QUERIES:
            t = time.perf_counter()
            rag.search(q, k=5)
            result.warm_search_ms.append((time.perf_counter() - t) * 1000)
    log(f"[{size}] warm search p50 {result.warm_p50_ms:.1f} ms, p95 {result.warm_p95_ms:.1f} ms; BM25 index load {result.lexical_load_s * 1000:.0f} ms")
    del rag
    gc.collect()
    return result, data


class _Recording:
    """Wraps a generator to keep the messages it was sent (to replay them to the bare model)."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.messages: list[dict] | None = None

    def generate(self, messages, max_tokens, on_token=None):
        self.messages = messages
        return self.inner.generate(messages, max_tokens, on_token)


def _raw_generate(llm, messages: list[dict], max_tokens: int) -> tuple[float, float, int, int]:
    """llama.cpp alone, with the same sampling as LlamaCppGenerator: (prompt s, total s, prompt tokens, completion tokens)."""
    start = time.perf_counter()
    first = 0.0
    n = 0
    for chunk in llm.create_chat_completion(
        messages=messages, max_tokens=max_tokens, temperature=0.0, top_k=1, repeat_penalty=1.05, stream=True
    ):
        if chunk["choices"][0].get("delta", {}).get("content"):
            n += 1
            if n == 1:
                first = time.perf_counter() - start
    total = time.perf_counter() - start
    return first or total, total, max(llm.n_tokens - n, 0), n


def bench_ask(data: Path, settings: Settings, questions: list[str], log: Log) -> tuple[list[AskResult], str, float]:
    from rag import prompts
    from rag.generation import LlamaCppGenerator
    from rag.models import resolve_llm
    from rag.pipeline import Rag

    s = Settings.load(data_dir=data, models_dir=settings.models_dir, model=settings.model)
    name, path = resolve_llm(s.model, s.models_dir)
    t = time.perf_counter()
    gen = LlamaCppGenerator(path, name=name, n_ctx=s.n_ctx, threads=s.threads)
    gen.load()
    load_s = time.perf_counter() - t
    log(f"[ask] {name} loaded in {load_s:.1f}s")
    recorder = _Recording(gen)
    rag = Rag(s, generator=recorder)
    rag.search(questions[0])  # warm retrieval, as in a session: the model is what is measured
    results = []
    for q in questions:
        r = AskResult(q)
        shown: list[float] = []
        t, c = time.perf_counter(), time.process_time()
        answer = rag.ask(q, on_token=lambda _text: shown or shown.append(time.perf_counter() - t))
        r.total_s, r.total_cpu_s = time.perf_counter() - t, time.process_time() - c
        r.abstained = answer.abstained
        r.first_token_s = answer.timings.first_token_s
        r.first_text_s = shown[0] if shown else r.total_s
        r.prompt_tokens, r.completion_tokens = answer.timings.prompt_tokens, answer.timings.completion_tokens
        log(f"[ask] pipeline {r.total_s:.1f}s (first token {r.first_token_s:.1f}s, {r.prompt_tokens}+{r.completion_tokens} tokens): {q}")
        if recorder.messages is not None and answer.timings.completion_tokens:
            llm = gen.load()
            llm.reset()  # no prefix reuse: the model's own full cost for this prompt
            c = time.process_time()
            r.raw_prompt_s, r.raw_total_s, r.raw_prompt_tokens, r.raw_completion_tokens = _raw_generate(
                llm, recorder.messages, s.max_tokens
            )
            r.raw_cpu_s = time.process_time() - c
            log(f"[ask] model alone {r.raw_total_s:.1f}s (prompt {r.raw_prompt_s:.1f}s), CPU {r.raw_cpu_s:.1f}s vs pipeline CPU {r.total_cpu_s:.1f}s")
        recorder.messages = None
        # The naive pipeline: reload the model, top-5 chunks by embedding, stuffed into one prompt.
        t, c = time.perf_counter(), time.process_time()
        naive = LlamaCppGenerator(path, name=name, n_ctx=s.n_ctx, threads=s.threads)
        hits = rag.store.query(rag.embedder.embed([q])[0], 5)
        context = "\n\n".join(f"{h.record.title}: {h.record.text}" for h in hits)
        out = naive.generate(prompts.messages(NAIVE_PROMPT.format(context=context, question=q)), s.max_tokens)
        r.naive_total_s, r.naive_cpu_s = time.perf_counter() - t, time.process_time() - c
        r.naive_prompt_tokens, r.naive_completion_tokens = out.prompt_tokens, out.completion_tokens
        del naive
        gc.collect()
        log(f"[ask] naive {r.naive_total_s:.1f}s, CPU {r.naive_cpu_s:.1f}s ({r.naive_prompt_tokens}+{r.naive_completion_tokens} tokens)")
        results.append(r)
    return results, name, load_s


def run(
    sizes: list[int],
    out_dir: Path,
    settings: Settings,
    use_llm: bool = True,
    questions: int = 3,
    cold_reps: int = 5,
    warm_reps: int = 3,
    work_dir: Path | None = None,
    command: str = "",
    log: Log = lambda _m: None,
) -> BenchReport:
    """Measure everything, write `benchmarks.md`, `benchmarks.json` and `bench_latency.png` to `out_dir`."""
    report = BenchReport(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine_info(), command)
    own_tmp = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="rag-bench-")) if own_tmp else Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        def ask_part(seeds_data: Path | None) -> None:
            if seeds_data is None:
                seeds_data = work / "data-seeds"
                run_measured(_rag_cmd("ingest", str(settings.seed_dir), "--json"), _env(seeds_data, settings.models_dir))
            report.asks, report.model, report.model_load_s = bench_ask(seeds_data, settings, QUESTIONS[:questions], log)

        # The model part runs right after the seeds, so a long run stopped during a big ingest
        # still has it; results are written after every step for the same reason.
        for size in sorted(set(sizes)):
            result, data = bench_size(size, work, settings, cold_reps, warm_reps, log)
            report.sizes.append(result)
            _write(report, out_dir)
            if use_llm and size == SEED_PAPERS:
                ask_part(data)
                _write(report, out_dir)
        if use_llm and SEED_PAPERS not in sizes:
            ask_part(None)
        report.machine["load_at_end"] = _loadavg()
        _write(report, out_dir)
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    return report


# --- output -------------------------------------------------------------------------------------


def _write(report: BenchReport, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    plotted = plot(report, out_dir / "bench_latency.png")
    md = out_dir / "benchmarks.md"
    kept = ""
    if md.exists():  # hand-written analysis below the marker survives a re-run
        old = md.read_text()
        kept = old[old.index(NOTES_MARKER):] if NOTES_MARKER in old else ""
    md.write_text(render(report, plotted) + ("\n" + kept if kept else ""))


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


def render(report: BenchReport, plotted: bool = True) -> str:
    m = report.machine
    lines = [
        "# Benchmarks",
        "",
        f"Measured {report.started} by `{report.command or 'rag bench'}` on {m.get('cpu')}, "
        f"{m.get('cores')} cores, {m.get('memory')} RAM, Python {m.get('python')}, no GPU. "
        f"Load average at start {m.get('load_at_start')}, at end {m.get('load_at_end', '?')}.",
        "",
        "**These numbers are noisy.** The machine's 2 cores were shared with other jobs running models "
        "during the run (see the load averages), so a repeat can differ by tens of percent; compare "
        "ratios measured in the same run rather than absolute times across runs.",
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
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    lines += [
        "",
        "## Reproduce",
        "",
        "```bash",
        "export RAG_MODELS_DIR=models            # where `rag models pull` put the models",
        "python scripts/bench.py                  # everything: sizes 82, 1000, 10000 and the LLM part (an hour or more on 2 cores)",
        "python scripts/bench.py --sizes 82 --no-llm        # a quick run (under a minute)",
        "python scripts/bench.py --sizes 82,1000 --no-llm   # ingest at 1,000 papers too (about 2-4 minutes)",
        "rag bench --from-json a.json --from-json b.json    # rewrite these docs from saved runs' benchmarks.json",
        "rag bench --sizes 82 --questions 2 --out /tmp/bench # the same through the CLI, elsewhere",
        "```",
        "",
    ]
    return "\n".join(lines)
