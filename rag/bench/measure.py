"""The measurements: ingest and cold search as `rag` subprocesses, exactly as a user runs them (so
the numbers include process start-up; peak memory is the child's own max RSS from `os.wait4`),
warm search and `ask` in this process with everything loaded."""

from __future__ import annotations

import gc
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag.bench.corpus import SEED_PAPERS, build_corpus
from rag.bench.compare import ratios
from rag.bench.report import AskResult, BenchReport, PdfResult, SizeResult, read_report, write
from rag.errors import RagError
from rag.generation import SAMPLING
from rag.settings import PROJECT_ROOT, Settings

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
        "gpu": _gpu(),
        "load_at_start": _loadavg(),
    }


def _gpu() -> str:
    """Whether this llama.cpp build can offload to a GPU: what decides the model's speed here."""
    try:
        import llama_cpp

        return "llama.cpp with GPU offload" if llama_cpp.llama_supports_gpu_offload() else "none used (CPU build of llama.cpp)"
    except (ImportError, AttributeError, OSError):
        return "unknown"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --- subprocess runs -----------------------------------------------------------------------------


def _rag_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", *args]


def _env(data_dir: Path, models_dir: Path) -> dict:
    env = dict(os.environ)
    env["RAG_DATA_DIR"] = str(data_dir)
    env["RAG_MODELS_DIR"] = str(models_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_measured(cmd: list[str], env: dict, cpu: list[float] | None = None, ok: tuple[int, ...] = (0,)) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MiB) of one child process, from start to exit; its CPU
    seconds (user + system) are appended to `cpu` when given. An exit code not in `ok` is an error."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=str(PROJECT_ROOT))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode not in ok:
        last = stderr.strip().splitlines()[-1:] or ["no message"]
        raise RagError(f"`rag {' '.join(cmd[3:])}` failed with exit code {proc.returncode}: {last[0][:300]}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    rss_mb = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 1024 / 1024
    return stdout, wall, rss_mb


# --- measurements -------------------------------------------------------------------------------


def bench_pdfs(folder: Path, work: Path, settings: Settings, log: Log) -> PdfResult:
    """A folder of PDFs ingested into an empty store, then again unchanged."""
    env = _env(work / "data-pdfs", settings.models_dir)
    log(f"[pdfs] ingest {folder}")
    # Exit 1 is an ingest that warned (a PDF titled from its file name) and read every file.
    out, wall, _ = run_measured(_rag_cmd("ingest", str(folder), "--json"), env, ok=(0, 1))
    first = json.loads(out)
    if not first["pages"]:
        raise RagError(f"{folder}: no PDF pages were read; give a folder of PDFs")
    result = PdfResult(str(folder), first["files"], first["pages"], first["chunks_embedded"], first["seconds"], wall)
    out, _, _ = run_measured(_rag_cmd("ingest", str(folder), "--json"), env, ok=(0, 1))
    result.reingest_s = json.loads(out)["seconds"]
    log(f"[pdfs] {result.pages} pages in {result.ingest_s:.1f}s ({result.pages_per_s:.1f} pages/s); re-ingest {result.reingest_s:.2f}s")
    return result


def bench_size(size: int, work: Path, settings: Settings, reps: tuple[int, int], log: Log) -> tuple[SizeResult, Path]:
    """Ingest, re-ingest, `reps` = (cold, warm) search repetitions at one corpus size."""
    cold_reps, warm_reps = reps
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
    if again["chunks_embedded"]:
        raise RagError(f"re-ingesting the unchanged {size}-paper corpus embedded {again['chunks_embedded']} chunks; the store in {data} is not what the benchmark wrote")
    result.reingest_s, result.reingest_wall_s = again["seconds"], wall
    log(f"[{size}] re-ingest unchanged {again['seconds']:.2f}s (process {wall:.2f}s)")
    for i in range(cold_reps):
        _, wall, _ = run_measured(_rag_cmd("search", SEARCH_QUERIES[i % len(SEARCH_QUERIES)], "-k", "5"), env, result.cold_search_cpu_s)
        result.cold_search_s.append(wall)
    log(f"[{size}] cold search median {result.cold_median_s:.2f}s over {cold_reps} (CPU {statistics.median(result.cold_search_cpu_s):.2f}s)")

    from rag.pipeline import Rag
    from rag.index import LexicalIndex, cache_folder

    rag = Rag(Settings.load(data_dir=data, models_dir=settings.models_dir))
    gen = rag.store.generation()
    for _ in range(3):
        t = time.perf_counter()
        LexicalIndex.load(cache_folder(rag.store), gen)
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
        messages=messages, max_tokens=max_tokens, stream=True, **SAMPLING
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


@dataclass(frozen=True)
class BenchPlan:
    """What one `rag bench` run measures."""

    sizes: list[int]
    use_llm: bool = True
    questions: int = 3
    cold_reps: int = 5
    warm_reps: int = 3
    work_dir: Path | None = None  # kept after the run when given; a temporary folder otherwise
    pdfs: Path | None = None  # a folder of PDFs whose ingest speed (pages/s) is measured too
    baseline: Path | None = None  # a saved benchmarks.json to report ratios against
    command: str = ""  # how the run was started, for the report


def run(plan: BenchPlan, out_dir: Path, settings: Settings, log: Log = lambda _m: None) -> BenchReport:
    """Measure everything, write `benchmarks.md`, `benchmarks.json` and `bench_latency.png` to `out_dir`."""
    report = BenchReport(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine_info(), plan.command)
    old = read_report(Path(plan.baseline)) if plan.baseline else None  # a bad file fails before any work
    if old:
        report.baseline = f"`{old.command or 'rag bench'}`, run {old.started}"

    def save() -> None:
        if old:
            report.against = ratios(report, old)
        write(report, out_dir)

    own_tmp = plan.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="rag-bench-")) if own_tmp else Path(plan.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        def ask_part(seeds_data: Path | None) -> None:
            if seeds_data is None:
                seeds_data = work / "data-seeds"
                run_measured(_rag_cmd("ingest", str(settings.seed_dir), "--json"), _env(seeds_data, settings.models_dir))
            report.asks, report.model, report.model_load_s = bench_ask(seeds_data, settings, QUESTIONS[: plan.questions], log)

        # The model part runs right after the seeds, so a long run stopped during a big ingest
        # still has it; results are written after every step for the same reason.
        for size in sorted(set(plan.sizes)):
            result, data = bench_size(size, work, settings, (plan.cold_reps, plan.warm_reps), log)
            report.sizes.append(result)
            save()
            if plan.use_llm and size == SEED_PAPERS:
                ask_part(data)
                save()
        if plan.use_llm and SEED_PAPERS not in plan.sizes:
            ask_part(None)
        if plan.pdfs:
            report.pdfs = bench_pdfs(Path(plan.pdfs), work, settings, log)
        report.machine["load_at_end"] = _loadavg()
        save()
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    return report
