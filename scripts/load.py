#!/usr/bin/env python
"""Concurrent load test of the two-server setup (docs/deploy.md): N clients ask questions through
one Chroma server and one model server while another process ingests papers into the same server.

It starts its own servers on 127.0.0.1 (free ports, a temporary folder), so nothing of the user's
is touched: `chroma run` and `python -m llama_cpp.server` with the 0.5B model and
`--interrupt_requests False` (by default that server cuts a running answer short when another
request arrives). The seeds are ingested through the Chroma server first; then, all at once, each
client process asks its questions through `rag.Rag` and one more process ingests synthetic papers
(rag/bench.py's generator). Servers and temporary files are removed however the run ends.

    RAG_MODELS_DIR=models .venv/bin/python scripts/load.py --write-docs

(24 questions take about 10 minutes on 2 cores, hence the budget; see docs/deploy.md.)

Exit status: 0 when every question was answered, 1 when any question or ingest failed (or was cut
off by --max-seconds), 2 on bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's `rag`, wherever the script is run from

from rag.bench import seed_papers, synthetic_papers  # noqa: E402
from rag.stats import percentile  # noqa: E402
from rag.errors import RagError  # noqa: E402

DOCS = ROOT / "docs" / "deploy.md"
START, END = "<!-- load:start -->", "<!-- load:end -->"
SERVER_MODEL = "qwen2.5-coder-0.5b"
INGEST_BATCH = 10  # synthetic papers per ingest call: each call is one write + one generation bump on the server
# Question shapes filled with seed-paper titles: every question has a paper that answers it.
SHAPES = ["What does the paper '{}' propose?", "What problem does '{}' address?", "What are the main results of '{}'?"]
KEYS = [
    "clients", "questions_per_client", "max_tokens", "max_seconds", "model", "threads", "questions", "answered", "abstained", "errors",
    "error_messages", "wall_s", "throughput_qps", "latency_p50_s", "latency_p95_s", "ttft_p50_s", "retrieval_p50_s",
    "prompt_tokens_p50", "completion_tokens", "ingest_papers", "ingest_s", "papers_in_store", "seed_ingest_s", "load_avg_peak",
    "load_avg_end", "cores",
]


class BadInput(Exception):
    """Reported as one stderr line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse prints usage + message; one line is enough
        raise BadInput(f"{message} (see --help)")


# --- pure parts ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = _Parser(prog="scripts/load.py", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="Example: RAG_MODELS_DIR=models .venv/bin/python scripts/load.py --write-docs")
    p.add_argument("--clients", type=int, default=8, help="client processes asking at once (default 8)")
    p.add_argument("--questions", type=int, default=3, help="questions each client asks, one after another (default 3)")
    p.add_argument("--max-tokens", type=int, default=64, help="longest answer in tokens (default 64)")
    p.add_argument("--max-seconds", type=float, default=900, help="budget for the concurrent phase; questions not done by then are errors (default 900: 24 questions take about 10 minutes on 2 cores)")
    p.add_argument("--ingest-papers", type=int, default=60, help="synthetic papers ingested during the questions (default 60)")
    p.add_argument("--threads", type=int, default=server_threads(), help="CPU threads of the model server (default: all cores but one)")
    p.add_argument("--models-dir", type=Path, default=None, help="where the models are (default: RAG_MODELS_DIR or ./models)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--write-docs", action="store_true", help=f"replace the section between {START} and {END} in docs/deploy.md")
    p.add_argument("--docs", type=Path, default=DOCS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("clients", "questions", "max_tokens", "threads"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.ingest_papers < 0:
        raise BadInput(f"--ingest-papers must be 0 or more, got {args.ingest_papers}")
    if not args.max_seconds > 0:
        raise BadInput(f"--max-seconds must be more than 0, got {args.max_seconds:g}")
    if args.write_docs:
        text = args.docs.read_text() if args.docs.exists() else ""
        if START not in text or END not in text:
            raise BadInput(f"{args.docs} has no {START} ... {END} section to replace")
    return args


def server_threads(cores: int | None = None) -> int:
    """All cores but one: the clients, the ingest and Chroma run on this machine too, and a llama.cpp
    server given every core stalls whenever another process runs (its threads wait on each other at
    every step). Measured on 2 busy cores: 2 threads generated 2 tokens/s, 1 thread 27 tokens/s."""
    cores = cores or os.cpu_count() or 2
    return max(1, cores - 1)


def questions_for(titles: list[str], clients: int, per_client: int) -> list[list[str]]:
    """Distinct questions for every client (none repeats unless there are more questions than titles)."""
    total = clients * per_client
    step = max(len(titles) // max(total, 1), 1)
    flat = [SHAPES[i % len(SHAPES)].format(titles[(i * step) % len(titles)]) for i in range(total)]
    return [flat[c * per_client : (c + 1) * per_client] for c in range(clients)]


def summarise(records: list[dict], ingest: dict, wall_s: float) -> dict:
    """Per-question records ({'ok', 'latency_s', 'ttft_s', 'retrieval_s', 'abstained', 'tokens', 'error'})
    and the ingest result -> the report's numbers."""
    ok = [r for r in records if r["ok"]]
    errors = [r["error"] for r in records if not r["ok"]] + list(ingest.get("errors", []))
    return {
        "questions": len(records),
        "answered": len(ok),
        "abstained": sum(r["abstained"] for r in ok),
        "errors": len(errors),
        "error_messages": sorted(set(errors))[:5],
        "wall_s": round(wall_s, 2),
        "throughput_qps": round(len(ok) / wall_s, 3) if wall_s > 0 else 0.0,
        "latency_p50_s": _round(percentile([r["latency_s"] for r in ok], 50)),
        "latency_p95_s": _round(percentile([r["latency_s"] for r in ok], 95)),
        "ttft_p50_s": _round(percentile([r["ttft_s"] for r in ok if r["ttft_s"]], 50)),  # 0: no model call
        "retrieval_p50_s": _round(percentile([r["retrieval_s"] for r in ok], 50), 3),
        "prompt_tokens_p50": _round(percentile([r["prompt_tokens"] for r in ok if r.get("prompt_tokens")], 50), 0),
        "completion_tokens": sum(r["tokens"] for r in ok),
        "ingest_papers": ingest.get("papers", 0),
        "ingest_s": _round(ingest.get("seconds", 0.0)),
    }


def _round(x: float, digits: int = 2) -> float | None:
    return None if x != x else round(x, digits)  # NaN (no values) -> null in JSON


def render(report: dict) -> str:
    """The Markdown table written into docs/deploy.md."""
    def f(x, unit="s"):
        return "n/a" if x is None else f"{x:g} {unit}".strip()

    rows = [
        ("clients × questions each", f"{report['clients']} × {report['questions_per_client']} (answers ≤ {report['max_tokens']} tokens, budget {report['max_seconds']:g} s)"),
        ("model server", f"{report['model']}, {report['threads']} thread{'s' if report['threads'] != 1 else ''}, one request at a time"),
        ("questions answered", f"{report['answered']} of {report['questions']} ({report['abstained']} abstained)"),
        ("errors", str(report["errors"])),
        ("wall time", f(report["wall_s"])),
        ("throughput", f(report["throughput_qps"], "questions/s")),
        ("latency p50 / p95", f"{f(report['latency_p50_s'])} / {f(report['latency_p95_s'])}"),
        ("time to first token p50", f(report["ttft_p50_s"])),
        ("retrieval p50", f(report["retrieval_p50_s"])),
        ("ingested meanwhile", f"{report['ingest_papers']} papers in {f(report['ingest_s'])} ({report['papers_in_store']} papers in the store after)"),
        ("seed ingest before the run", f"82 papers in {f(report['seed_ingest_s'])}"),
        ("load average (1 min), peak / end", f"{report['load_avg_peak']} / {report['load_avg_end']} on {report['cores']} cores"),
    ]
    lines = ["| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


def write_docs(path: Path, report: dict) -> bool:
    """Put the table into `path`, unless the run had errors: the docs show a clean run or nothing."""
    if report["errors"]:
        return False
    path.write_text(replace_section(path.read_text(), render(report)))
    return True


def replace_section(text: str, body: str) -> str:
    """`text` with everything between the load markers replaced by `body`."""
    head, sep, rest = text.partition(START)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise BadInput(f"no {START} ... {END} section to replace")
    return f"{head}{START}\n{body.strip()}\n{END}{tail}"


# --- servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: list[str], health: str, log: Path, seconds: float = 180) -> subprocess.Popen:
    """Start `cmd` in its own process group (so teardown reaches its children) and wait until
    `health` answers. Output goes to `log`: an unread pipe fills up and stalls a chatty server."""
    import httpx

    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{Path(cmd[0]).name} exited early: {log.read_text()[-1000:]}")
        try:
            if httpx.get(health, timeout=2).status_code < 500:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"{health} did not come up in {seconds:g}s (log: {log})")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# --- worker processes ---------------------------------------------------------------------------


def _settings(data_dir: Path, urls: dict, models_dir: Path, max_tokens: int):
    from rag.settings import Settings

    return Settings.load(data_dir=data_dir, models_dir=models_dir, max_tokens=max_tokens, **urls)


def client(index: int, questions: list[str], urls: dict, work: Path, models_dir: Path, max_tokens: int,
           deadline_in: float, ready, go, results) -> None:
    """One user: warm up (embedder, lexical index), wait for the start, ask one question after another."""
    from rag.generation import RemoteGenerator
    from rag.pipeline import Rag

    rag = Rag(_settings(work / f"client-{index}", urls, models_dir, max_tokens),
              generator=RemoteGenerator(urls["llm_url"], timeout=deadline_in))
    try:
        rag.search("warm up", k=1)
    finally:
        ready.put(index)
    go.wait()
    deadline = time.monotonic() + deadline_in
    for q in questions:
        if time.monotonic() > deadline:
            results.put({"ok": False, "error": f"not asked: --max-seconds {deadline_in:g} reached (raise it on a slow machine)"})
            continue
        started = time.perf_counter()
        try:
            a = rag.ask(q)
        except Exception as exc:  # any failure is counted, with its one-line reason
            results.put({"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
            continue
        t = a.timings
        results.put({"ok": True, "latency_s": time.perf_counter() - started, "ttft_s": t.first_token_s,
                     "retrieval_s": t.retrieve_s, "abstained": a.abstained, "tokens": t.completion_tokens,
                     "prompt_tokens": t.prompt_tokens, "error": ""})


def ingester(folder: Path, urls: dict, work: Path, models_dir: Path, ready, go, results) -> None:
    """Another user ingesting papers into the same Chroma server, in batches, while the questions run."""
    from rag.pipeline import Rag

    rag = Rag(_settings(work / "ingester", urls, models_dir, 1))
    try:
        rag.embedder.embed(["warm up"])
    finally:
        ready.put("ingester")
    go.wait()
    files = sorted(folder.glob("*.md"))
    started, added, errors = time.perf_counter(), 0, []
    for i in range(0, len(files), INGEST_BATCH):
        try:
            added += rag.ingest(files[i : i + INGEST_BATCH]).added
        except Exception as exc:
            errors.append(f"ingest {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    results.put({"papers": added, "seconds": time.perf_counter() - started, "errors": errors})


# --- the run ------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[load] {msg}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    from rag import models
    from rag.pipeline import Rag
    from rag.settings import Settings

    models_dir = (args.models_dir or Settings.load().models_dir).expanduser().resolve()
    model_name, model_path = models.resolve_llm(SERVER_MODEL, models_dir)
    models.require(models.get_spec(models.EMBEDDING_MODEL), models_dir)
    work = Path(tempfile.mkdtemp(prefix="rag-load-"))
    chroma = llm = None
    procs: list = []
    try:
        chroma_port, llm_port = free_port(), free_port()
        log(f"starting chroma on :{chroma_port} and {model_name} on :{llm_port} (work dir {work})")
        chroma = start_server([str(Path(sys.executable).with_name("chroma")), "run", "--path", str(work / "chroma"),
                               "--host", "127.0.0.1", "--port", str(chroma_port)],
                              f"http://127.0.0.1:{chroma_port}/api/v2/heartbeat", work / "chroma.log")
        llm = start_server([sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
                            "--port", str(llm_port), "--n_ctx", "4096", "--n_threads", str(args.threads),
                            "--interrupt_requests", "False"],
                           f"http://127.0.0.1:{llm_port}/v1/models", work / "llm.log")
        urls = {"chroma_url": f"http://127.0.0.1:{chroma_port}", "llm_url": f"http://127.0.0.1:{llm_port}/v1"}

        seeds = seed_papers()
        main = Rag(_settings(work / "main", urls, models_dir, args.max_tokens))
        report = main.ingest([main.settings.seed_dir])
        seed_ingest_s = report.seconds
        log(f"ingested {report.added} seed papers through chroma in {seed_ingest_s:.1f}s")
        synthetic = work / "synthetic"
        synthetic.mkdir()
        for i, (title, abstract) in enumerate(synthetic_papers(args.ingest_papers, seeds)):
            (synthetic / f"syn_{i:03d}.md").write_text(f"# {title}\n\n{abstract}\n")

        ctx = mp.get_context("spawn")  # fresh interpreters: no forked Chroma/ONNX/thread state
        ready, results, done_ingest, go = ctx.Queue(), ctx.Queue(), ctx.Queue(), ctx.Event()
        titles = [p.title for p in seeds if p.abstract]
        for i, qs in enumerate(questions_for(titles, args.clients, args.questions)):
            procs.append(ctx.Process(target=client, args=(i, qs, urls, work, models_dir, args.max_tokens,
                                                          args.max_seconds, ready, go, results), daemon=True))
        procs.append(ctx.Process(target=ingester, args=(synthetic, urls, work, models_dir, ready, go, done_ingest), daemon=True))
        for p in procs:
            p.start()
        waiting = len(procs)  # every process has loaded what it needs before the clock starts
        while waiting:
            try:
                ready.get(timeout=0.5)
                waiting -= 1
            except Exception:  # queue.Empty
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a client process failed while starting (see the traceback above)")
        log(f"{args.clients} clients x {args.questions} questions, {args.ingest_papers} papers ingested meanwhile")
        go.set()
        started = time.monotonic()
        deadline = started + args.max_seconds + 30  # grace for the answer in flight at the deadline
        expected = args.clients * args.questions
        records: list[dict] = []
        ingest: dict | None = None
        loads: list[float] = []
        while (len(records) < expected or ingest is None) and time.monotonic() < deadline:
            loads.append(os.getloadavg()[0])
            try:
                while True:
                    records.append(results.get(timeout=0.5))
            except Exception:  # queue.Empty
                pass
            if ingest is None and not done_ingest.empty():
                ingest = done_ingest.get()
            if all(not p.is_alive() for p in procs) and results.empty() and done_ingest.empty():
                break
        wall = time.monotonic() - started
        missing = expected - len(records)
        records += [{"ok": False, "error": f"no answer: client cut off by --max-seconds {args.max_seconds:g} or crashed"}] * max(missing, 0)
        ingest = ingest or {"papers": 0, "seconds": wall, "errors": ["ingest did not finish"]}
        papers_in_store = len(main.papers())
        out = {"clients": args.clients, "questions_per_client": args.questions, "max_tokens": args.max_tokens,
               "max_seconds": args.max_seconds, "model": model_name, "threads": args.threads}
        out.update(summarise(records, ingest, wall))
        out.update({"papers_in_store": papers_in_store, "seed_ingest_s": round(seed_ingest_s, 1),
                    "load_avg_peak": round(max(loads or [0.0]), 2), "load_avg_end": round(os.getloadavg()[0], 2),
                    "cores": os.cpu_count()})
        return out
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=10)
        stop(llm)
        stop(chroma)
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # A plain `kill` must still tear the servers down: turn SIGTERM into an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        report = run(args)
    except RagError as exc:  # models missing, store unreachable: the user's to fix
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a server or a process that would not start
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.write_docs:
        written = write_docs(args.docs, report)
        log(f"wrote the table into {args.docs}" if written else f"not writing {args.docs}: the run had {report['errors']} errors")
    print(json.dumps(report, indent=2) if args.json else render(report))
    for message in report["error_messages"]:
        log(f"error: {message}")
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
