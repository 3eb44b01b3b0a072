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


def doctor(settings: Settings, store: Store, generator: Callable[[], Generator]) -> list[Check]:
    """`generator` is called only when a model server is set: a local model is checked by its
    files, not loaded."""
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
    checks.append(store_check(store))
    return checks


def store_check(store: Store) -> Check:
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
    except RagError as exc:
        return Check("store", False, str(exc), getattr(exc, "fix", "rag ingest"))
    read_only = " (read-only: ingest and remove cannot write it)" if store.read_only else ""
    return Check("store", count > 0, f"{n_papers} papers, {count} chunks in {store.url or store.path}{read_only}", "rag ingest")
