"""The README's contract matches the code: its module list names every module, and the JSON keys
it documents are the keys the commands print. Pure, no model files."""

from __future__ import annotations

import re

from rag.settings import PROJECT_ROOT
from rag.types import Answer, CheckedSentence, Citation, PaperInfo, Source, Timings

README = (PROJECT_ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def _documented(command: str) -> set[str]:
    """Every key in the README's `{...}` / `[{...}]` shape printed after `command`."""
    text = _section("### JSON for other tools")
    shape = re.compile(r"`([\[{][^`]*)`").search(text, text.index(command) + len(command))
    return set(re.findall(r'"(\w+)"', shape.group(1)))


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_layout_names_every_module():
    rag = PROJECT_ROOT / "rag"
    modules = {p.name for p in rag.glob("*.py") if not p.name.startswith("__")}
    modules |= {f"{p.name}/" for p in rag.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    listed = set(re.findall(r"`(\w+\.py|\w+/)`", _section("## Layout"))) - {"rag/", "seeds/", "models/", "tests/", "scripts/", "docs/"}
    assert listed == modules, f"README lists {sorted(listed - modules)} that do not exist and misses {sorted(modules - listed)}"


def test_ask_json_keys_are_the_documented_ones():
    source = Source("p1", "A Title", ("Ann Author",), "Text.", 0.5, 0.4, 1.0)
    answer = Answer(
        "Q?", "Text [1].", False, [Citation(1, "p1", "A Title", quote="Text.")], [source], "m", Timings(),
        checked=[CheckedSentence("Text [1].", (1,), 1.0, True, "Text.")],
    )
    assert _keys(answer.to_json()) == _documented("`rag ask Q --json`")


def test_papers_json_keys_are_the_documented_ones():
    info = PaperInfo("p1", "A Title", ("Ann Author",), "/x.bib", 1, 2021, ("/x.bib",), "Venue")
    assert _keys([info.to_json()]) == _documented("`rag papers --json`")


def test_search_json_keys_are_the_documented_ones():
    source = Source("p1", "A Title", ("Ann Author",), "Text.", 0.5, 0.4, 1.0)
    assert _keys({"query": "q", "results": [source.to_json(rank=1)]}) == _documented("`rag search Q --json`")
