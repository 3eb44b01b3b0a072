"""The layers of docs/architecture.md hold: data flows one way, files -> Paper -> Chunk -> store ->
passages -> prompt -> Answer, and a module never imports one of a higher layer (function-local
imports count: hiding a cycle inside a function is still a cycle). Pure, no model files."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

RAG = Path(__file__).resolve().parent.parent / "rag"

# Lowest first. A module may import its own layer or lower ones, never a higher one.
LAYERS = [
    {"errors", "types", "text", "meaning", "stats", "prompts", "safe_text"},  # the standard library only
    {"settings", "models", "quantize", "filters", "papers", "readers", "zotero", "pdf", "pdf_title", "pdf_cache", "chunking", "citations", "generation", "prompt_cache", "judge", "references", "progress", "render", "health"},
    {"schema", "store_errors"},
    {"corpus", "embedding", "rerank", "store", "evidence"},
    {"index", "retrieval", "passages"},
    {"ingest", "answer", "doctor"},
    {"pipeline"},
    {"evaluation", "claims", "chat", "mcp_server", "watch", "bench", "__init__"},
    {"cli", "cli_common", "cli_tools", "__main__"},
]


def _modules() -> dict[str, Path]:
    found = {p.stem: p for p in RAG.glob("*.py")}
    found.update({p.name: p for p in RAG.iterdir() if p.is_dir() and (p / "__init__.py").exists()})
    return found


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(rag modules, other top-level packages) that `path` imports anywhere in its code."""
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    own, other = set(), set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top = node.module.split(".")
                if top[0] == "rag":
                    own |= {top[1]} if len(top) > 1 else {a.name for a in node.names}
                else:
                    other.add(top[0])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")
                    (own.add(top[1]) if top[0] == "rag" and len(top) > 1 else other.add(top[0]))
    own.discard(path.stem if path.is_file() else path.name)
    return own, other


def _layer(name: str) -> int:
    for i, layer in enumerate(LAYERS):
        if name in layer:
            return i
    raise AssertionError(f"rag/{name} is in no layer of tests/test_layers.py: give it one (and a line in docs/architecture.md)")


def test_every_module_has_a_layer():
    for name in _modules():
        _layer(name)


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_module_imports_a_higher_layer(name):
    own, _ = _imports(_modules()[name])
    upward = sorted(m for m in own if m in _modules() and _layer(m) > _layer(name))
    assert not upward, f"rag/{name} (layer {_layer(name)}) imports {upward} from a higher layer"


def test_no_import_cycle():
    graph = {name: {m for m in _imports(path)[0] if m in _modules()} for name, path in _modules().items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep) :] + [dep]))
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_lowest_layer_needs_only_the_standard_library():
    for name in sorted(LAYERS[0] & set(_modules())):
        _, other = _imports(_modules()[name])
        third_party = sorted(m for m in other if m not in sys.stdlib_module_names and m != "__future__")
        assert not third_party, f"rag/{name} imports {third_party}: the foundation layer is standard library only"


def test_the_checker_sees_a_function_local_import(tmp_path):
    """The check above cannot pass vacuously: an import hidden in a function is found."""
    f = tmp_path / "probe.py"
    f.write_text("def f():\n    from rag.pipeline import Rag\n    import numpy\n")
    own, other = _imports(f)
    assert own == {"pipeline"} and other == {"numpy"}


# --- shape ------------------------------------------------------------------------------------------

MAX_PARAMETERS = 6  # more, and a record should carry them (answer.Mode, bench.BenchPlan)
MAX_LINES = 420


def _functions():
    for path in sorted(RAG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield path, node


def test_no_function_takes_more_than_six_parameters():
    """Typer commands and MCP tools aside: their parameters are the command's options and the
    tool's JSON schema."""
    long = []
    for path, fn in _functions():
        if any("command" in ast.unparse(d) or ast.unparse(d) == "server.tool()" for d in fn.decorator_list):
            continue
        a = fn.args
        names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs if x.arg not in ("self", "cls")]
        if len(names) > MAX_PARAMETERS:
            long.append(f"{path.relative_to(RAG.parent)}:{fn.lineno} {fn.name} ({len(names)})")
    assert not long, "functions with more than six parameters: " + ", ".join(long)


def test_no_module_is_over_about_400_lines():
    big = {str(p.relative_to(RAG.parent)): n for p in RAG.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these modules: {big}"
