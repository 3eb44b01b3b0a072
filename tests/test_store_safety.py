"""The store under faults a reliability probe found (issue #17), each against the real Chroma store
(the fake embedder only makes vectors): a crafted BM25 cache pickle, a read-only data dir, a full
disk during ingest, and a damaged `chroma.sqlite3` or HNSW index. Every case ends in exit code 2
and one `error:` line (or, for `rag doctor`, one FAIL line naming the recovery), never a traceback
or a segfault, and the papers already stored stay intact.

Commands that can crash the interpreter, or that need the operating system to refuse writes, run
in a subprocess (`_cli_process`) with the fake embedder patched in, so the suite survives them."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SEED_FILES, SEED_PAPERS, FakeEmbedder
from rag import cli, corpus, health, retrieval
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings
from rag.store import Store
from rag.types import Chunk, Paper

TESTS_DIR = Path(__file__).parent


# --- helpers -------------------------------------------------------------------------------------


def cli_run(monkeypatch, *args: str):
    """The CLI in this process, with the fake embedder (vectors of the same size as the real one's)."""
    monkeypatch.setattr(cli, "_rag", lambda **kw: Rag(Settings.load(**kw), embedder=FakeEmbedder()))
    return CliRunner().invoke(cli.app, list(args))


_RUNNER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    from rag import cli
    from rag.pipeline import Rag
    from rag.settings import Settings
    cli._rag = lambda **kw: Rag(Settings.load(**kw), embedder=FakeEmbedder())
    cli.app(sys.argv[1:])
    """
)


def _cli_process(*args: str, data: Path, prefix: list[str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """`rag ARGS --data-dir DATA` in a fresh interpreter (fake embedder), so a segfault is only a return code."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    cmd = [*(prefix or []), sys.executable, "-c", _RUNNER.format(tests=str(TESTS_DIR)), *args, "--data-dir", str(data)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(PROJECT_ROOT), timeout=timeout)


def assert_one_error_line(code: int, stderr: str, *needles: str) -> str:
    """Exit code 2, exactly one `error:` line and it comes last (a progress bar may precede it), no traceback."""
    assert code == 2, (code, stderr[-2000:])
    assert "Traceback" not in stderr, stderr[-2000:]
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr[-2000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def stored(data: Path) -> dict[str, tuple[str, int]]:
    """Paper id -> (content hash, chunk count), read afresh from the store."""
    return {pid: (p.content_hash, p.chunks) for pid, p in Store(data).stored_papers().items()}


@pytest.fixture
def seeded(data_dir, seed_copy) -> Path:
    """The seed papers ingested into the test's data dir (real Chroma, fake vectors)."""
    assert Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).ingest([seed_copy]).added == SEED_PAPERS
    return data_dir


def _one_chunk_papers(store: Store, n: int, start: int = 0, tag: str = "") -> None:
    """`n` one-chunk papers written straight to the store; a `tag` rewrites them with new text."""
    emb = FakeEmbedder()
    items = []
    for i in range(start, start + n):
        title = f"Synthetic paper {i}"
        paper = Paper(corpus.paper_id_for(title), title, (), f"zorblax {i} {tag}", "/elsewhere/notes.md")
        text = f"zorblax crystals resonate {i} {tag} gamma{i % 17}"
        items.append((paper, [Chunk(f"{paper.paper_id}:0", paper.paper_id, 0, text)], emb.embed([text]), "h" + tag, "f", 0, None))
    store.put_papers(items)


@pytest.fixture(scope="module")
def hnsw_store(tmp_path_factory) -> Path:
    """A store big enough (600 chunks in one write) that Chroma persists its HNSW index to disk; with
    fewer, the segment files hold an empty index and damage to them goes unread."""
    data = tmp_path_factory.mktemp("hnsw") / "data"
    store = Store(data)
    with store.writer() as s:
        _one_chunk_papers(s, 600)
        s.bump_generation()
    segment = _segment(data)
    header = health._read_header(segment / "header.bin")
    assert header["count"] == 600 and (segment / "index_metadata.pickle").exists(), header
    return data


def _segment(data: Path) -> Path:
    (segment,) = [p for p in (data / "chroma").iterdir() if (p / "header.bin").exists()]
    return segment


# --- item 9: the BM25 cache cannot run code ------------------------------------------------------


class _RunsCode:
    """What a crafted pickle does: creates a file when it is loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_bm25_pickle_is_never_loaded_and_the_index_is_rebuilt_from_the_store(seeded, monkeypatch, tmp_path):
    folder = seeded / "lexical"
    marker = tmp_path / "code-ran"
    (folder / "bm25.pkl").write_bytes(pickle.dumps(_RunsCode(marker)) + pickle.dumps(_RunsCode(marker)))
    rebuilt = []
    real = Store.all_chunks
    monkeypatch.setattr(Store, "all_chunks", lambda self: rebuilt.append(1) or real(self))
    result = cli_run(monkeypatch, "search", "TabPFN tabular classification", "-k", "1")
    assert result.exit_code == 0, result.output
    assert "TabPFN" in result.stdout
    assert not marker.exists(), "the pickle ran code"
    assert not (folder / "bm25.pkl").exists()  # deleted, unread
    assert (folder / "bm25.npz").exists() and rebuilt == [1]  # rebuilt from the store, saved in the new format


def test_an_index_file_holding_a_pickle_is_refused_unread(seeded, tmp_path):
    """numpy can store Python objects as pickles inside an .npz; the cache is read with
    allow_pickle=False, so such a file is rebuilt instead of loaded."""
    import numpy as np

    folder = seeded / "lexical"
    marker = tmp_path / "code-ran"
    gen = Store(seeded).generation()
    with np.load(folder / "bm25.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["indices"] = np.array([_RunsCode(marker)], dtype=object)
    with open(folder / "bm25.npz", "wb") as f:
        np.savez(f, **arrays)
    index = retrieval.LexicalIndex.load(folder, gen)
    assert index is not None and index.scores("TabPFN").max() > 0
    assert not marker.exists()


# --- a damaged store -------------------------------------------------------------------------------


def _damaged_copy(source: Path, tmp_path: Path, target: str) -> Path:
    data = tmp_path / "damaged"
    shutil.copytree(source, data)
    path = data / "chroma" / "chroma.sqlite3" if target == "chroma.sqlite3" else _segment(data) / target
    if target == "sqlite-pages":  # SQLite's header intact, every page after the first random
        path = data / "chroma" / "chroma.sqlite3"
        with open(path, "r+b") as f:
            f.seek(4096)
            f.write(os.urandom(path.stat().st_size - 4096))
    else:
        path.write_bytes(os.urandom(path.stat().st_size))
    return data


DAMAGE = ["chroma.sqlite3", "sqlite-pages", "header.bin", "data_level0.bin", "link_lists.bin", "index_metadata.pickle"]


@pytest.mark.parametrize("target", DAMAGE)
def test_a_damaged_store_is_one_line_naming_the_recovery_never_a_segfault(hnsw_store, tmp_path, target):
    """Random bytes in `data_level0.bin` made every command segfault; each command now runs in its
    own interpreter and ends with one line that names the recovery."""
    data = _damaged_copy(hnsw_store, tmp_path, target)
    for args in (["search", "zorblax crystals"], ["papers"], ["ingest", str(SEED_FILES[0])]):
        done = _cli_process(*args, data=data)
        assert done.returncode != -11, f"`rag {args[0]}` segfaulted on a damaged {target}"
        line = assert_one_error_line(done.returncode, done.stderr, "damaged", f"mv {data} {data}.damaged && rag ingest --data-dir {data}")
        assert len(line) < 600


@pytest.mark.parametrize("target", ["chroma.sqlite3", "sqlite-pages", "data_level0.bin"])
def test_doctor_names_the_damage_and_the_fix(hnsw_store, tmp_path, target):
    data = _damaged_copy(hnsw_store, tmp_path, target)
    done = _cli_process("doctor", data=data)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])  # doctor's own code for a failed check
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("FAIL store")]
    assert "damaged" in line and f"-> run `mv {data} {data}.damaged && rag ingest --data-dir {data} YOUR_PAPERS`" in line


def test_the_named_recovery_works(hnsw_store, tmp_path, seed_copy):
    data = _damaged_copy(hnsw_store, tmp_path, "data_level0.bin")
    data.rename(f"{data}.damaged")  # the first half of the recovery command
    done = _cli_process("ingest", str(seed_copy), data=data)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(stored(data)) == SEED_PAPERS


def test_a_healthy_store_passes_every_check_after_updates_and_deletes(hnsw_store, tmp_path):
    """No false alarm: the checks must pass on everything Chroma writes (here a persisted index that
    then had papers added, rewritten and removed), or every command would refuse a good store."""
    data = tmp_path / "healthy"
    shutil.copytree(hnsw_store, data)
    store = Store(data)
    with store.writer() as s:
        _one_chunk_papers(s, 400, start=600)
        _one_chunk_papers(s, 150, start=0, tag=" revised")
        s.delete_papers([corpus.paper_id_for(f"Synthetic paper {i}") for i in range(200, 300)])
        s.bump_generation()
    assert health.check(data / "chroma") == [] and health.full_check(data / "chroma") == []
    done = _cli_process("search", "zorblax crystals", data=data)
    assert done.returncode == 0, done.stderr[-2000:]
    assert health.check(data / "chroma") == [] and health.full_check(data / "chroma") == []


def test_chroma_errors_become_one_store_error_line(seeded, monkeypatch):
    """Whatever Chroma raises from a read (here a damaged page it reports) is one line, not a traceback."""
    import chromadb.errors
    from chromadb.api.models.Collection import Collection

    def broken(self, *args, **kwargs):
        raise chromadb.errors.InternalError("error returned from database: (code: 11) database disk image is malformed")

    monkeypatch.setattr(Collection, "get", broken)
    result = cli_run(monkeypatch, "papers")
    assert_one_error_line(result.exit_code, result.stderr, "damaged", "rag ingest --data-dir")
