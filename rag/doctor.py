"""`rag doctor`: offline checks of everything `ask` needs, each with the command that fixes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rag import health, models, prompts
from rag.errors import RagError
from rag.generation import Generator
from rag.safe_text import redact_url
from rag.settings import Settings
from rag.store import Store


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def doctor(settings: Settings, store: Store, generator: Callable[[], Generator], embedder: str) -> list[Check]:
    """`generator` is called only when a model server is set: a local model is checked by its
    files, not loaded. `embedder` is the name of the embedder searches will use."""
    checks = []
    if settings.llm_url:
        server = f"model server {redact_url(settings.llm_url)}"
        try:
            generator().generate(prompts.messages("Say OK."), 2)
            checks.append(Check(server, True, "answers"))
        except RagError as exc:
            checks.append(Check(server, False, str(exc), "start the model server"))
    for spec in models.REGISTRY.values():
        if spec.kind == "llm" and (spec.name != settings.model or settings.llm_url):
            continue
        status = models.check(spec, settings.models_dir, full=True)
        checks.append(Check(f"model {spec.name}", status.verified, status.detail, f"rag models pull {spec.name}"))
    if settings.model not in models.REGISTRY and not settings.llm_url:
        try:
            models.resolve_llm(settings.model, settings.models_dir)
            checks.append(Check(f"model {settings.model}", True, "ok"))
        except RagError as exc:
            checks.append(Check(f"model {settings.model}", False, str(exc), "rag models pull"))
    if not settings.llm_url:
        checks.append(build_check())
    checks.append(store_check(store, embedder))
    return checks


# llama.cpp's name for an instruction set -> the /proc/cpuinfo flag a CPU needs to run it.
_CPU_FLAGS = {"AVX": "avx", "AVX2": "avx2", "FMA": "fma", "F16C": "f16c", "AVX512": "avx512f"}
_FIX = "rebuild llama.cpp for this CPU: .venv/bin/pip uninstall -y llama-cpp-python && PIP_NO_CACHE_DIR=1 bash scripts/setup.sh"


def build_check(cpuinfo: str = "/proc/cpuinfo") -> Check:
    """The instruction sets llama.cpp was built with, next to the CPU's. Read in a child process:
    a build for instructions this CPU lacks dies with an illegal instruction, which must not take
    `rag doctor` with it."""
    import subprocess
    import sys

    try:
        flags = set(next(line for line in open(cpuinfo, encoding="utf-8") if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return Check("llama.cpp build", True, "this CPU's instruction sets are not readable here; not compared")
    try:
        done = subprocess.run(
            [sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"],
            capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("llama.cpp build", False, f"cannot ask llama.cpp how it was built ({exc.__class__.__name__})", _FIX)
    if done.returncode != 0:
        why = "an illegal instruction: it was built for another CPU" if done.returncode == -4 else (done.stderr.strip().splitlines() or ["failed"])[-1]
        return Check("llama.cpp build", False, f"loading llama.cpp failed with {why}", _FIX)
    built = [name for name in _CPU_FLAGS if f"| {name} = 1 " in f"| {done.stdout}"]
    missing = [name for name in built if _CPU_FLAGS[name] not in flags]
    if missing:
        return Check("llama.cpp build", False, f"built with {', '.join(missing)}, which this CPU lacks: the model would crash", _FIX)
    usable = [name for name, flag in _CPU_FLAGS.items() if flag in flags]
    return Check("llama.cpp build", True, f"built with {' '.join(built) or 'no vector extensions'}; this CPU has {' '.join(usable) or 'none of them'}")


def store_check(store: Store, embedder: str) -> Check:
    """The embedded store's files get the full check (SQLite's own included) before Chroma opens
    them; a damaged store's only fix is a fresh one, re-ingested."""
    if not store.url and store.exists():
        problems = health.full_check(store.path)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return Check("store", False, f"damaged: {problems[0]}{more}", health.recovery(store.data_dir))
    try:
        count = store.count()
        n_papers = len(store.stored_papers())
        store.require_vectors_from(embedder)
    except RagError as exc:
        return Check("store", False, str(exc), getattr(exc, "fix", "rag ingest"))
    read_only = " (read-only: ingest and remove cannot write it)" if store.read_only else ""
    return Check("store", count > 0, f"{n_papers} papers, {count} chunks in {store.url or store.path}{read_only}", "rag ingest")
