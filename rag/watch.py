"""`rag ingest --watch`: keep the store in step with folders. The folders are polled (no platform
watcher: the same code on every laptop and network drive); a change is acted on once the files
have stopped changing, so a PDF still being downloaded is read once, whole. Each ingest is the
ordinary one (unchanged files cost nothing), so an interrupted watch leaves the store as a
finished ingest left it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rag import corpus
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.pipeline import Rag
    from rag.types import IngestReport

Snapshot = dict[str, tuple[int, int]]  # file -> (mtime_ns, size)


@dataclass(frozen=True)
class Change:
    kind: str  # "new", "changed" or "deleted"
    path: str


@dataclass(frozen=True)
class WatchPlan:
    """What to watch and how often; `stop` is polled between rounds (tests and Ctrl-C handlers)."""

    roots: list[Path]
    interval_s: float = 2.0
    settle_s: float = 1.0  # files must stay unchanged this long before they are read
    stop: Callable[[], bool] = lambda: False


def snapshot(roots: list[Path], on_line: Callable[[str], None]) -> Snapshot | None:
    """Every paper file under `roots`, or None when a root is gone or unreadable (said once per
    round; nothing is removed from the store for a folder that merely went away)."""
    try:
        files = corpus.discover(roots)
    except (RagError, OSError) as exc:
        on_line(f"warning: {exc}; waiting for it to come back")
        return None
    found: Snapshot = {}
    for path in files:
        try:
            stat = path.stat()
        except OSError:  # deleted between the listing and now: the next round sees it gone
            continue
        found[str(path)] = (stat.st_mtime_ns, stat.st_size)
    return found


def changes(before: Snapshot, after: Snapshot) -> list[Change]:
    out = [Change("new", p) for p in after if p not in before]
    out += [Change("changed", p) for p in after if p in before and after[p] != before[p]]
    out += [Change("deleted", p) for p in before if p not in after]
    return sorted(out, key=lambda c: c.path)


def summary(report: "IngestReport") -> str:
    return (f"{report.papers} papers: {report.added} added, {report.updated} updated, {report.removed} removed "
            f"({report.chunks_embedded} chunks embedded, {report.seconds:.1f}s)")


def watch(rag: "Rag", plan: WatchPlan, on_line: Callable[[str], None], sleep: Callable[[float], None] = time.sleep) -> None:
    """Ingest once, then again after every settled change, one line per changed file and one for
    the ingest, until `plan.stop()` says so (Ctrl-C ends it through KeyboardInterrupt instead)."""
    seen = snapshot(plan.roots, on_line)
    if seen is not None:
        _ingest(rag, plan, on_line)
    while not plan.stop():
        sleep(plan.interval_s)
        now = snapshot(plan.roots, on_line)
        if now is None or now == seen:
            continue
        while True:  # debounce: wait until the folder holds still
            sleep(plan.settle_s)
            later = snapshot(plan.roots, on_line)
            if later is None or later == now:
                break
            now = later
        if later is None:
            continue
        for change in changes(seen or {}, now):
            on_line(f"{change.kind}: {change.path}")
        _ingest(rag, plan, on_line)
        seen = now


def _ingest(rag: "Rag", plan: WatchPlan, on_line: Callable[[str], None]) -> None:
    try:
        report = rag.ingest(plan.roots)
    except RagError as exc:  # a store that cannot be written now may be writable next round
        on_line(f"warning: {exc}")
        return
    for skipped in report.skipped:
        on_line(f"warning: {skipped}")
    on_line(summary(report))
