"""Checks of the embedded Chroma store's files, run before Chroma opens them.

Chroma trusts its files: random bytes in `chroma.sqlite3` raise a traceback from deep inside it, and
random bytes in an HNSW segment's `data_level0.bin` made every command die with a segfault (the
native index follows neighbour ids that point outside its arrays). `check` reads only headers, sizes
and the graph's neighbour lists, so a damaged store is named in one line before Chroma sees it;
`full_check` (for `rag doctor`) adds SQLite's own `PRAGMA quick_check` and compares the index with
the collection it belongs to. The only recovery that works is a fresh store: `recovery()` names it.

What an HNSW segment folder holds (Chroma's fork of hnswlib, `persistHeader` / `persistDirty`):
`header.bin`, 100 bytes of little-endian fields; `data_level0.bin`, one fixed-size block per element
(a uint16 neighbour count, a flag byte, a pad byte, `maxM0` uint32 neighbour ids, the vector, a
uint64 label); `length.bin`, one float per element; `link_lists.bin`, per element a uint32 byte size
and that many bytes of upper-level neighbour lists; `index_metadata.pickle`, Chroma's id <-> label
maps, a pickle of plain dicts and numbers (checked here without running any of it).
"""

from __future__ import annotations

import io
import os
import pickle
import shlex
import sqlite3
import struct
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_FORMAT = "<iQQQQQQiIQQQdQ"  # persistHeader's fields, written back to back
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)  # 100
PERSISTENCE_VERSION = 1  # chroma-hnswlib's on-disk format in chromadb 1.5 (pinned <1.6): a new format needs this file
MAX_LEVEL = 64  # hnswlib levels are ~log(n)/log(M); far more means the header is garbage
MAX_ELEMENTS = 1 << 40
SEGMENT_FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin")


class Damage(Exception):
    """One thing wrong with one file; the message names the file (relative to the store)."""


def recovery(data_dir: Path) -> str:
    """The one recovery that works for a damaged embedded store: a fresh store, re-ingested."""
    d = shlex.quote(str(data_dir))
    return f"mv {d} {shlex.quote(str(data_dir) + '.damaged')} && rag ingest --data-dir {d} YOUR_PAPERS"


def check(chroma_dir: Path) -> list[str]:
    """Problems that would crash or confuse Chroma, found by reading file headers and the graph's
    neighbour lists (no vectors): [] for a healthy store (or one not created yet)."""
    problems = []
    db = chroma_dir / "chroma.sqlite3"
    if db.exists():
        try:
            _check_sqlite_header(db)
        except Damage as exc:
            problems.append(str(exc))
    for segment in _segments(chroma_dir):
        try:
            check_segment(segment)
        except Damage as exc:
            problems.append(str(exc))
    return problems


def full_check(chroma_dir: Path) -> list[str]:
    """`check`, then SQLite's own consistency check of every page and, per vector segment, the
    index's vector size against the collection's dimension."""
    problems = check(chroma_dir)
    db = chroma_dir / "chroma.sqlite3"
    if problems or not db.exists():
        return problems
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
            if rows != ["ok"]:
                problems.append(f"chroma.sqlite3: {'; '.join(map(str, rows[:3]))}")
            dims = con.execute(
                "SELECT s.id, c.dimension FROM segments s JOIN collections c ON s.collection = c.id WHERE s.scope = 'VECTOR'"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return problems + [f"chroma.sqlite3: {exc}"]
    for segment_id, dim in dims:
        header = chroma_dir / str(segment_id) / "header.bin"
        if dim and header.exists():
            h = _read_header(header)
            if h["size_data_per_element"] - h["offset_data"] - 8 != dim * 4:
                problems.append(f"{segment_id}/header.bin: vectors of {(h['size_data_per_element'] - h['offset_data'] - 8) // 4} numbers, the collection has {dim}")
    return problems


def writable(chroma_dir: Path) -> bool:
    """Whether this process may write every file Chroma writes when it opens the store (it does,
    even to read: migrations and its write log live in the SQLite file)."""
    paths = [chroma_dir, chroma_dir / "chroma.sqlite3"]
    for segment in _segments(chroma_dir):
        paths.append(segment)
        paths += [p for p in segment.iterdir() if p.is_file()]
    return all(os.access(p, os.W_OK) for p in paths if p.exists())


# --- SQLite --------------------------------------------------------------------------------------


def _check_sqlite_header(db: Path) -> None:
    """The first 100 bytes of an SQLite file: magic string, page size, fixed payload fractions."""
    try:
        with open(db, "rb") as f:
            head = f.read(100)
        size = db.stat().st_size
    except OSError as exc:
        raise Damage(f"chroma.sqlite3: cannot be read ({exc.strerror or exc})") from None
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise Damage("chroma.sqlite3: not an SQLite database (its header is not SQLite's)")
    page = struct.unpack_from(">H", head, 16)[0]
    page = 65536 if page == 1 else page
    if page < 512 or page & (page - 1) or head[21:24] != b"\x40\x20\x20":
        raise Damage("chroma.sqlite3: the database header is damaged")
    if size % page:
        raise Damage(f"chroma.sqlite3: {size} bytes is not a whole number of {page}-byte pages (truncated?)")


# --- HNSW segments -------------------------------------------------------------------------------


def _segments(chroma_dir: Path) -> list[Path]:
    """Folders holding a persisted HNSW index (named by segment id)."""
    try:
        return sorted(p for p in chroma_dir.iterdir() if p.is_dir() and (p / "header.bin").exists())
    except OSError:
        return []


def _read_header(path: Path) -> dict:
    data = path.read_bytes()
    if len(data) != HEADER_SIZE:
        raise Damage(f"{path.parent.name}/header.bin: {len(data)} bytes, an index header has {HEADER_SIZE}")
    names = (
        "version", "offset_level0", "max_elements", "count", "size_data_per_element", "label_offset", "offset_data",
        "max_level", "enter_point", "max_m", "max_m0", "m", "mult", "ef_construction",
    )
    return dict(zip(names, struct.unpack(HEADER_FORMAT, data)))


def check_segment(folder: Path) -> None:
    """Raise `Damage` for anything that would send the native index outside its arrays."""
    name = folder.name
    missing = [f for f in SEGMENT_FILES if not (folder / f).is_file()]
    if missing:
        raise Damage(f"{name}: {', '.join(missing)} missing")
    try:
        h = _read_header(folder / "header.bin")
        _check_header(name, h, folder)
        if h["count"]:
            levels = _check_link_lists(name, h, folder / "link_lists.bin")
            _check_level0(name, h, folder / "data_level0.bin")
            if levels[h["enter_point"]] < h["max_level"]:
                raise Damage(f"{name}/header.bin: the entry point is not on the top level")
        if (folder / "index_metadata.pickle").exists():
            _check_metadata(name, folder / "index_metadata.pickle")
    except OSError as exc:
        raise Damage(f"{name}: cannot be read ({exc.strerror or exc})") from None


def _check_header(name: str, h: dict, folder: Path) -> None:
    where = f"{name}/header.bin"
    if h["version"] != PERSISTENCE_VERSION:
        raise Damage(f"{where}: not an index header (version {h['version']})")
    max_m, max_m0 = h["max_m"], h["max_m0"]
    data_size = h["size_data_per_element"] - h["offset_data"] - 8
    if not (
        h["offset_level0"] == 0 and 0 < max_m < 65536 and 0 < max_m0 < 65536
        and h["offset_data"] == max_m0 * 4 + 4 and 0 < data_size < (1 << 24) and data_size % 4 == 0
        and h["label_offset"] == h["offset_data"] + data_size
        and h["count"] <= h["max_elements"] <= MAX_ELEMENTS and -1 <= h["max_level"] < MAX_LEVEL
    ):
        raise Damage(f"{where}: the index layout is inconsistent")
    if h["count"] and (h["enter_point"] >= h["count"] or h["max_level"] < 0):
        raise Damage(f"{where}: the entry point is outside the index")
    for file, need in (("data_level0.bin", h["count"] * h["size_data_per_element"]), ("length.bin", h["count"] * 4)):
        size = (folder / file).stat().st_size
        if size < need:
            raise Damage(f"{name}/{file}: {size} bytes, the header needs {need}")


def _check_level0(name: str, h: dict, path: Path) -> None:
    """Every element's bottom-level neighbour count and ids, read as columns of a memory map."""
    import numpy as np

    count, stride, links = h["count"], h["size_data_per_element"], h["offset_data"]
    rows = np.memmap(path, dtype=np.uint8, mode="r", shape=(count, stride))
    try:
        head = np.ascontiguousarray(rows[:, :links])
    finally:
        del rows
    counts = head[:, :2].copy().view("<u2").ravel()
    if int(counts.max()) > h["max_m0"]:
        raise Damage(f"{name}/data_level0.bin: element {int(np.argmax(counts > h['max_m0']))} has more neighbours than the index allows")
    ids = head[:, 4:].copy().view("<u4")
    used = np.arange(h["max_m0"]) < counts[:, None]
    bad = used & (ids >= count)
    if bad.any():
        raise Damage(f"{name}/data_level0.bin: element {int(np.argmax(bad.any(axis=1)))} links to an element that does not exist")


def _check_link_lists(name: str, h: dict, path: Path) -> list[int]:
    """The upper levels: each element's byte size must be whole levels, no higher than the index's
    top level, inside the file, with neighbour ids that exist. Returns each element's level."""
    data = path.read_bytes()
    count, per_level, max_level = h["count"], h["max_m"] * 4 + 4, h["max_level"]
    levels = [0] * count
    blocks: list[int] = []
    pos = 0
    end = len(data)
    for i in range(count):
        if pos + 4 > end:
            raise Damage(f"{name}/link_lists.bin: ends before element {i}")
        size = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        if not size:
            continue
        if size % per_level or size // per_level > max_level or pos + size > end:
            raise Damage(f"{name}/link_lists.bin: element {i} has a damaged level list")
        levels[i] = size // per_level
        blocks.extend(range(pos, pos + size, per_level))
        pos += size
    if blocks:
        import numpy as np

        raw = np.frombuffer(data, dtype=np.uint8)
        table = raw[np.asarray(blocks)[:, None] + np.arange(per_level)]
        counts = table[:, :2].copy().view("<u2").ravel()
        ids = table[:, 4:].copy().view("<u4")
        if int(counts.max()) > h["max_m"] or (((np.arange(h["max_m"]) < counts[:, None]) & (ids >= count)).any()):
            raise Damage(f"{name}/link_lists.bin: an upper-level neighbour list is damaged")
    return levels


class _NoGlobals(pickle.Unpickler):
    """Plain containers and numbers only: any class, function or persistent id is refused, so
    loading runs no code from the file."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refers to {module}.{name}")

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("uses persistent ids")


def _check_metadata(name: str, path: Path) -> None:
    where = f"{name}/index_metadata.pickle"
    try:
        meta = _NoGlobals(io.BytesIO(path.read_bytes())).load()
    except Exception as exc:  # noqa: BLE001 - any failure to parse is damage
        raise Damage(f"{where}: not Chroma's index metadata ({exc.__class__.__name__})") from None
    maps = [meta.get(k) for k in ("id_to_label", "label_to_id")] if isinstance(meta, dict) else [None]
    if not all(isinstance(m, dict) for m in maps):
        raise Damage(f"{where}: not Chroma's index metadata")


def copy_to_read(store: Path, copy: Path, data_dir: Path) -> Path:
    """`store` copied to `copy`, writable by this process (Chroma writes to a store even to read
    it), for a data dir this process cannot write."""
    import shutil
    import tempfile

    from rag.errors import StoreError

    try:
        shutil.copytree(store, copy, copy_function=shutil.copyfile)
        for root, dirs, files in os.walk(copy.parent):  # copytree kept the folders' read-only modes
            os.chmod(root, 0o700)
            for name in files:
                os.chmod(os.path.join(root, name), 0o600)
    except OSError as exc:
        raise StoreError(
            f"the data dir {data_dir} is read-only and its store could not be copied to "
            f"{tempfile.gettempdir()} to be read ({exc.strerror or exc}); set TMPDIR to a folder with space"
        ) from None
    return copy


_CHECKED: set[tuple[str, int, int]] = set()  # SQLite files (path, size, mtime) whose store passed `check`


def collection_metadata(chroma_dir: Path, collection: str) -> dict | None:
    """A collection's own metadata (the store generation, its embedder), read from Chroma's
    SQLite file without Chroma: importing chromadb and opening the client was most of a cold
    `rag search`. None when it cannot be read that way (no such file or collection, another
    Chroma schema, a locked or damaged file): the caller asks Chroma."""
    db = chroma_dir / "chroma.sqlite3"
    try:
        stamp = (str(db.resolve()), db.stat().st_size, db.stat().st_mtime_ns)
    except OSError:
        return None
    if stamp not in _CHECKED:  # a warm process searching again pays the file check once (12 ms at 8,500 chunks)
        if check(chroma_dir):
            return None
        _CHECKED.add(stamp)
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=0.5)
        try:
            found = con.execute("SELECT id FROM collections WHERE name = ?", (collection,)).fetchone()
            rows = con.execute(
                "SELECT key, str_value, int_value, float_value, bool_value FROM collection_metadata WHERE collection_id = ?", (found[0],)
            ).fetchall() if found else None
        finally:
            con.close()
    except sqlite3.Error:
        return None
    if rows is None:
        return None
    return {key: next((v for v in values if v is not None), None) for key, *values in rows}
