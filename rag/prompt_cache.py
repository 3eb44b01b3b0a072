"""The model's reading of the start every prompt shares, kept on disk. Each `rag ask` is a fresh
process, and reading the prompt is most of its wait on a laptop CPU; the system message and the
chat template's opening are the same for every question, so a fresh process restores the model's
state after them instead of reading them again. Within one process (chat, eval, the MCP server)
llama.cpp already reuses what it has read.

The shared start is always read as a batch of its own, restored or not, so a process with the
saved state answers exactly as one without it. (Against reading the whole prompt in one batch,
llama.cpp's arithmetic differs in the last bits, and a greedy answer can take another word: 1 of
52 dev questions, docs/evaluation.md.)

One file per model file, llama.cpp build, context size and prefix text, written once and moved
into place atomically. It is an optimisation only: a file that cannot be read, written or loaded
is ignored and the prompt is read as before. This module owns the file's format."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import tempfile
from pathlib import Path

MAGIC = b"rag-prompt-state 1\n"
KEEP = 8  # newest state files kept: one per model and setting in use; older ones (an upgraded llama.cpp, a replaced model) go
_SENTINEL = "\x00rag-question\x00"


class PromptCache:
    def __init__(self, folder: Path, model_path: Path, n_ctx: int):
        self.folder = Path(folder)
        self.model_path = Path(model_path)
        self.n_ctx = n_ctx
        self.restored = 0  # prefix tokens the last `prime` restored from disk (0: read or none)

    def prime(self, llm, messages: list[dict]) -> int:
        """Leave `llm` holding the shared start of `messages`' prompt, restored from disk when it
        is there, else read once and saved. Returns the prefix's length in tokens (0: none)."""
        self.restored = 0
        try:
            text = shared_prefix(llm, messages)
            if not text:
                return 0
            tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            n = len(tokens)
            if llm.n_tokens >= n and [int(t) for t in llm.input_ids[:n]] == tokens:
                return n  # this process has read it already
            path = self.folder / f"{self._key(text)}.state"
            if _restore(llm, path, tokens):
                self.restored = n
                return n
            llm.reset()
            llm.eval(tokens)
            _save(llm, path, tokens)
            return n
        except Exception:  # an optimisation must never cost the answer
            return 0

    def _key(self, text: str) -> str:
        import llama_cpp

        stat = self.model_path.stat()
        ident = json.dumps([self.model_path.name, stat.st_size, int(stat.st_mtime), llama_cpp.__version__, self.n_ctx, text])
        return hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def shared_prefix(llm, messages: list[dict]) -> str:
    """The templated prompt up to where the last message's text starts: the part every prompt with
    the same earlier messages shares. "" when the model has no chat template of its own."""
    template = llm.metadata.get("tokenizer.chat_template")
    if not template or not messages or llm.chat_format != "chat_template.default":
        return ""
    if any(m.get("role") != "system" for m in messages[:-1]):
        return ""  # a conversation's history would make a file per turn; the system message is what repeats
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(template=template, eos_token="", bos_token="")
    probe = [*messages[:-1], {**messages[-1], "content": _SENTINEL}]
    prompt = formatter(messages=probe).prompt
    return prompt.split(_SENTINEL, 1)[0] if _SENTINEL in prompt else ""


def _restore(llm, path: Path, tokens: list[int]) -> bool:
    import llama_cpp

    try:
        data = path.read_bytes()
    except OSError:
        return False
    if not data.startswith(MAGIC):
        return False
    try:  # a file cut inside its header is unreadable, not an error: it is read again and rewritten
        header_end = data.index(b"\n", len(MAGIC))
        header = json.loads(data[len(MAGIC) : header_end])
    except ValueError:
        return False
    blob = data[header_end + 1 :]
    if not isinstance(header, dict) or header.get("tokens") != tokens or len(blob) != header.get("size"):
        return False
    llm.reset()
    buffer = (ctypes.c_uint8 * len(blob)).from_buffer_copy(blob)
    if llama_cpp.llama_state_set_data(llm._ctx.ctx, buffer, len(blob)) != len(blob):
        llm.reset()
        return False
    llm.input_ids[: len(tokens)] = tokens
    llm.n_tokens = len(tokens)
    return True


def _save(llm, path: Path, tokens: list[int]) -> None:
    import llama_cpp

    size = llama_cpp.llama_state_get_size(llm._ctx.ctx)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_get_data(llm._ctx.ctx, buffer, size)
    blob = bytes(buffer[:written])
    header = json.dumps({"tokens": tokens, "size": len(blob)}).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:  # a read-only models folder: every process reads the prefix, as before
        return
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + header + b"\n" + blob)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other users of a shared models folder read it too
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return
    _prune(path.parent)


def _prune(folder: Path) -> None:
    try:
        saved = sorted(folder.glob("*.state"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in saved[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:  # another process pruned first
        pass
