"""The store under faults a reliability probe found (issue #17), each against the real Chroma store
(the fake embedder only makes vectors): a crafted BM25 cache pickle, a read-only data dir, a full
disk during ingest, and a damaged `chroma.sqlite3` or HNSW index. Every case ends in exit code 2
and one `error:` line (or, for `rag doctor`, one FAIL line naming the recovery), never a traceback
or a segfault, and the papers already stored stay intact.

Commands that can crash the interpreter, or that need the operating system to refuse writes, run
in a subprocess (`_cli_process`) with the fake embedder patched in, so the suite survives them."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SEED_FILES, SEED_PAPERS, FakeEmbedder, _require_model
from rag import cli, corpus, health, models
from rag.index import LexicalIndex
from rag.errors import StoreError
from rag.pipeline import Rag
from rag.settings import PROJECT_ROOT, Settings
from rag.store import PaperWrite, Store
from rag.types import Chunk, Paper

TESTS_DIR = Path(__file__).parent


# --- helpers -------------------------------------------------------------------------------------


def cli_run(monkeypatch, *args: str):
    """The CLI in this process, with the fake embedder (vectors of the same size as the real one's)
    handed in through the Typer context."""
    factory = lambda **kw: Rag(Settings.load(**kw), embedder=FakeEmbedder())  # noqa: E731
    return CliRunner().invoke(cli.app, list(args), obj=factory)


_RUNNER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    from rag import cli
    from rag.pipeline import Rag
    from rag.settings import Settings
    cli.app(sys.argv[1:], obj=lambda **kw: Rag(Settings.load(**kw), embedder=FakeEmbedder()))
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


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a hash of its bytes: the store before and after must match."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


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
        items.append(PaperWrite(paper, [Chunk(f"{paper.paper_id}:0", paper.paper_id, 0, text)], emb.embed([text]), "h" + tag, "f"))
    store.put_papers(items)


@pytest.fixture(scope="module")
def hnsw_store(tmp_path_factory) -> Path:
    """A store big enough (600 chunks in one write) that Chroma persists its HNSW index to disk; with
    fewer, the segment files hold an empty index and damage to them goes unread."""
    data = tmp_path_factory.mktemp("hnsw") / "data"
    store = Store(data)
    with store.writer() as s:
        _one_chunk_papers(s, 600)
        s.mark_vectors_from(FakeEmbedder.name)
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
    real = Store.chunk_vectors  # every chunk and its vector, read when the index is built from the store
    monkeypatch.setattr(Store, "chunk_vectors", lambda self, ids: rebuilt.append(1) or real(self, ids))
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
    index = LexicalIndex.load(folder, gen)
    assert index is not None and index.scores("TabPFN").max() > 0
    assert not marker.exists()


# --- a read-only data dir --------------------------------------------------------------------------


def _read_only_runner(tmp_path: Path) -> list[str]:
    """A command prefix under which chmod stops this user's writes. As root it drops the
    capabilities that override file modes (setpriv); skips when that is not possible."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if not setpriv:
        pytest.skip("running as root, where chmod does not stop writes, and setpriv (to drop root's file capabilities) is not installed")
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0o555)
    prefix = [setpriv, "--bounding-set=-all", "--inh-caps=-all"]
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"], capture_output=True, timeout=60)
    finally:
        probe.chmod(0o755)
    if done.returncode == 0:
        pytest.skip("running as root and dropping capabilities with setpriv did not stop writes to a read-only folder")
    return prefix


def _make_read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_read_only_data_dir_search_papers_doctor_work_ingest_and_remove_say_they_cannot_write(seeded, tmp_path, models_dir):
    for name in (models.EMBEDDING_MODEL, models.DEFAULT_LLM):  # `doctor` checks the models too
        _require_model(name)
    prefix = _read_only_runner(tmp_path)
    papers_before = stored(seeded)
    victim = next(iter(papers_before))
    _make_read_only(seeded)
    before = snapshot(seeded)
    try:
        search = _cli_process("search", "TabPFN tabular classification", "-k", "1", data=seeded, prefix=prefix)
        assert search.returncode == 0 and "TabPFN" in search.stdout, search.stderr[-2000:]
        listed = _cli_process("papers", "--json", data=seeded, prefix=prefix)
        assert listed.returncode == 0, listed.stderr[-2000:]
        assert {p["paper_id"] for p in json.loads(listed.stdout)} == set(papers_before)
        doctor = _cli_process("doctor", data=seeded, prefix=prefix)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr[-2000:]
        assert f"ok   store: {SEED_PAPERS} papers" in doctor.stdout and "read-only" in doctor.stdout
        extra = tmp_path / "extra.md"
        extra.write_text("# Zorblax Crystal Resonance\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
        ingest = _cli_process("ingest", str(extra), data=seeded, prefix=prefix)
        assert_one_error_line(ingest.returncode, ingest.stderr, "cannot write to the data dir", str(seeded))
        remove = _cli_process("remove", victim, "--yes", data=seeded, prefix=prefix)
        assert_one_error_line(remove.returncode, remove.stderr, "cannot write to the data dir", str(seeded))
        assert snapshot(seeded) == before  # not one byte of the store changed
    finally:
        _make_writable(seeded)
    assert stored(seeded) == papers_before


def test_a_store_opened_read_only_is_a_temporary_copy_and_refuses_writes(seeded, monkeypatch):
    """In-process, with the permission check answering 'no' (the suite may run as root): reads go to
    a copy that is removed with the store, and a writer on the same Store is refused."""
    monkeypatch.setattr(health, "writable", lambda chroma_dir: False)
    before = snapshot(seeded / "chroma")
    store = Store(seeded)
    assert len(store.stored_papers()) == SEED_PAPERS and store.read_only
    copy = store._copy
    assert copy.exists() and seeded not in copy.parents
    with pytest.raises(StoreError) as exc:
        with store.writer():
            pass
    assert "cannot write to the data dir" in str(exc.value) and not store.read_only
    assert not copy.exists()  # the copy goes as soon as it is not used
    assert len(store.stored_papers()) == SEED_PAPERS  # and reading again makes a new one
    copy = store._copy
    store.close()
    assert not copy.exists()
    assert snapshot(seeded / "chroma") == before


# --- a full disk during ingest --------------------------------------------------------------------


def test_full_disk_during_ingest_is_one_line_and_stored_papers_stay(data_dir, seed_copy, monkeypatch, tmp_path):
    first, second = sorted(seed_copy.glob("*.txt"))
    Rag(Settings.load(data_dir=data_dir), embedder=FakeEmbedder()).ingest([first])
    papers_before = stored(data_dir)
    calls = []
    real = Store.put_papers

    def fills_the_disk(self, items):
        calls.append(len(items))
        if len(calls) == 2:  # one batch written, then the device is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, items)

    monkeypatch.setattr(Store, "put_papers", fills_the_disk)
    result = cli_run(monkeypatch, "ingest", str(second))
    assert_one_error_line(result.exit_code, result.stderr, "no space left", str(data_dir), "intact")
    assert len(calls) == 2
    after = stored(data_dir)
    assert {pid: after[pid] for pid in papers_before} == papers_before  # every paper stored before is whole
    monkeypatch.setattr(Store, "put_papers", real)
    again = cli_run(monkeypatch, "ingest", str(first), str(second))  # space freed: the same ingest completes
    assert again.exit_code == 0, again.output
    assert len(stored(data_dir)) == SEED_PAPERS


def test_full_disk_inside_chroma_is_one_line(seeded, monkeypatch, seed_copy):
    """The same when SQLite itself reports the full disk (as Chroma raises it)."""
    import chromadb.errors

    papers_before = stored(seeded)

    def full(self, *args, **kwargs):
        raise chromadb.errors.InternalError("error returned from database: (code: 13) database or disk is full")

    from chromadb.api.models.Collection import Collection

    monkeypatch.setattr(Collection, "upsert", full)
    note = seed_copy / "zorblax.md"
    note.write_text("# Zorblax Crystal Resonance\n\nZorblax crystals resonate at dusk.\n", encoding="utf-8")
    result = cli_run(monkeypatch, "ingest", str(note))
    assert_one_error_line(result.exit_code, result.stderr, "no space left", str(seeded))
    assert stored(seeded) == papers_before


def _can_mount_tmpfs() -> str | None:
    """Why a real full device cannot be made here, or None when it can (root in a mount namespace)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return "needs root and unshare to mount a small tmpfs"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True, text=True, timeout=60)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a mount namespace ({probe.stderr.strip()[:100]})"


def test_a_really_full_device_during_ingest(seeded, tmp_path):
    """A tmpfs a little larger than the seeded store, filled by an ingest: one line, exit 2, and once
    space is freed (the tmpfs grown) the papers stored before are all there and an ingest completes."""
    why = _can_mount_tmpfs()
    if why:
        pytest.skip(why)
    more = tmp_path / "more"
    more.mkdir()
    words = "zorblax crystals resonate at dusk while the lab measures spectral drift and phase noise".split()
    for i in range(300):
        body = " ".join(words[(i + j) % len(words)] for j in range(400))
        (more / f"note{i:03d}.md").write_text(f"# Zorblax note {i}\n\n{body} {i}\n", encoding="utf-8")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    size_kb = sum(p.stat().st_size for p in seeded.rglob("*") if p.is_file()) // 1024 + 1024
    env_python = f"PYTHONPATH={PROJECT_ROOT} {sys.executable} -c {_shell(_RUNNER.format(tests=str(TESTS_DIR)))}"
    script = f"""
        set -u
        mount -t tmpfs -o size={size_kb}k tmpfs {mnt} || exit 99
        cp -a {seeded} {mnt}/data
        {env_python} ingest {more} --data-dir {mnt}/data > {tmp_path}/full.out 2> {tmp_path}/full.err; echo $? > {tmp_path}/full.rc
        mount -o remount,size=256m {mnt}
        {env_python} papers --json --data-dir {mnt}/data > {tmp_path}/after.json 2> {tmp_path}/after.err
        {env_python} ingest {more} --data-dir {mnt}/data > {tmp_path}/again.out 2> {tmp_path}/again.err; echo $? > {tmp_path}/again.rc
    """
    done = subprocess.run(["unshare", "-m", "bash", "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=600, cwd=str(PROJECT_ROOT))
    assert done.returncode == 0, done.stderr
    assert_one_error_line(int((tmp_path / "full.rc").read_text()), (tmp_path / "full.err").read_text(), "no space left")
    after = {p["paper_id"] for p in json.loads((tmp_path / "after.json").read_text())}
    assert set(stored(seeded)) <= after
    assert (tmp_path / "again.rc").read_text().strip() == "0", (tmp_path / "again.err").read_text()[-2000:]


def _shell(text: str) -> str:
    import shlex

    return shlex.quote(text)


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
