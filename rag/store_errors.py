"""The one-line errors of the store: a full disk, a data dir that cannot be written, a damaged
store (with the one recovery that works), or what Chroma said, worded for the user."""

from __future__ import annotations

import errno
import shlex
import shutil
import sqlite3
from pathlib import Path

from rag import health
from rag.errors import StoreError

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_SPACE = 16 << 20  # below this much free space, a failing store is most likely a full disk
NO_WRITE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def is_store_failure(exc: BaseException) -> bool:
    """Errors that come from the store's files or Chroma (which raises many types), as opposed to
    bugs in this code: these become one `StoreError` line."""
    if isinstance(exc, (OSError, sqlite3.Error)):
        return True
    return type(exc).__module__.split(".")[0] in ("chromadb", "httpx", "httpcore")


def damaged(data_dir: Path, problem: str) -> StoreError:
    error = StoreError(
        f"the store in {data_dir} is damaged ({problem}); the only recovery is a fresh store, "
        f"re-ingested: {health.recovery(data_dir)}"
    )
    error.fix = health.recovery(data_dir)  # what `rag doctor` prints after `-> run`
    return error


def cannot_write(data_dir: Path, reason: str) -> StoreError:
    return StoreError(
        f"cannot write to the data dir {data_dir} ({reason}); `rag ingest` and `rag remove` need "
        f"write access to it (search, papers and doctor work read-only)"
    )


def error_for(data_dir: Path, url: str | None, exc: BaseException) -> StoreError:
    """One line for an exception out of Chroma or the file system: a full disk, a folder that
    cannot be written, a damaged store (with its recovery), or what Chroma said."""
    text = " ".join(str(exc).split())
    low = text.lower()
    code = getattr(exc, "errno", None)
    if code in NO_SPACE or "disk is full" in low or "no space left" in low or "quota exceeded" in low:
        where = f"the Chroma server at {url}" if url else f"the device of the data dir {data_dir}"
        return StoreError(
            f"no space left on {where}; papers stored before this command are intact: free some space and run it again"
        )
    if not url and (code in NO_WRITE or "readonly database" in low or "read-only" in low or "permission denied" in low):
        return cannot_write(data_dir, getattr(exc, "strerror", None) or text[:120])
    if url:
        return StoreError(f"the Chroma server at {url} failed ({exc.__class__.__name__}: {text[:200]})")
    free = _free_bytes(data_dir)
    if free is not None and free < LOW_SPACE:
        # Chroma applies its write log even to read, so a full disk fails reads with unrelated words
        error = StoreError(
            f"the store in {data_dir} failed ({exc.__class__.__name__}: {text[:160]}) with {free // 1024} KiB free on its "
            "device: free some space and run the command again (papers stored before are intact)"
        )
        error.fix = f"df -h {shlex.quote(str(data_dir))}"  # after `-> run`: shows the full device
        return error
    if any(k in low for k in ("not a database", "malformed", "corrupt", "hnsw", "segment reader", "index_metadata")):
        return damaged(data_dir, text[:200])
    return StoreError(f"the store in {data_dir} failed ({exc.__class__.__name__}: {text[:200]}); run `rag doctor` to check it")


def _free_bytes(data_dir: Path) -> int | None:
    try:
        return shutil.disk_usage(data_dir).free
    except OSError:
        return None


def other_embedder(location: str, stored: str, current: str, chunks: int) -> StoreError:
    error = StoreError(
        f"the store in {location} holds vectors of {stored}, and this version embeds with {current}; "
        f"run `rag ingest --reembed` once to embed its {chunks:,} chunks again (no file is read again)"
    )
    error.fix = "rag ingest --reembed"
    return error
