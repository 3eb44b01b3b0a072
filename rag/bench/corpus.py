"""The benchmark corpora: size 82 is `seeds/` as shipped; other sizes add synthetic papers, each a
Markdown file whose title mixes two seed titles and whose abstract is a shuffle of sentences from
two seed abstracts, drawn with a fixed random seed, so every run and every machine indexes the
same text."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from rag.settings import PROJECT_ROOT

SEED_PAPERS = 82


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
