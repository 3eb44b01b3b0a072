"""Model files: presence/size/hash checks, resolving --model, and the real pulled files."""

from __future__ import annotations

import hashlib

import pytest

from rag import models
from rag.errors import ModelError
from rag.models import ModelFile, ModelSpec


def tiny_spec(tmp_path, content: bytes = b"hello model bytes") -> ModelSpec:
    mf = ModelFile("tiny/weights.bin", len(content), hashlib.sha256(content).hexdigest(), ())
    return ModelSpec("tiny", "llm", "test model", (mf,))


def test_check_reports_missing(tmp_path):
    status = models.check(tiny_spec(tmp_path), tmp_path)
    assert (status.present, status.verified) == (False, False)
    assert "missing" in status.detail and str(tmp_path / "tiny" / "weights.bin") in status.detail


def test_check_reports_wrong_size(tmp_path):
    spec = tiny_spec(tmp_path)
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "weights.bin").write_bytes(b"partial")
    status = models.check(spec, tmp_path)
    assert (status.present, status.verified) == (True, False)
    assert "wrong size" in status.detail


def test_check_full_verifies_hash_and_writes_stamp(tmp_path):
    content = b"hello model bytes"
    spec = tiny_spec(tmp_path, content)
    path = tmp_path / "tiny" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(content)
    cheap = models.check(spec, tmp_path)
    assert not cheap.verified and "changed since it was verified" in cheap.detail  # no stamp yet
    assert models.check(spec, tmp_path, full=True).verified
    assert models.check(spec, tmp_path).verified  # the stamp now vouches for it


def test_check_full_catches_same_size_corruption(tmp_path):
    content = b"hello model bytes"
    spec = tiny_spec(tmp_path, content)
    path = tmp_path / "tiny" / "weights.bin"
    path.parent.mkdir()
    path.write_bytes(content)
    assert models.check(spec, tmp_path, full=True).verified
    path.write_bytes(b"HELLO MODEL BYTES")  # same size, other bytes
    assert not models.check(spec, tmp_path).verified  # the stamp no longer matches the file
    full = models.check(spec, tmp_path, full=True)
    assert not full.verified and "sha256" in full.detail


def test_require_names_the_pull_command(tmp_path):
    with pytest.raises(ModelError) as exc:
        models.require(models.get_spec("qwen2.5-coder-0.5b"), tmp_path)
    msg = str(exc.value)
    assert "rag models pull qwen2.5-coder-0.5b" in msg and "\n" not in msg


def test_get_spec_unknown_name():
    with pytest.raises(ModelError, match="unknown model 'gpt-17'.*known models: .*qwen2.5-coder-1.5b"):
        models.get_spec("gpt-17")


def _one_line_with_fix(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    assert "rag models pull" in msg or "qwen2.5-coder-1.5b" in msg or "--model" in msg, f"no fix named in: {msg}"
    return msg


def test_resolve_llm_unknown_name(tmp_path):
    with pytest.raises(ModelError) as exc:
        models.resolve_llm("llama-9000", tmp_path)
    assert "llama-9000" in _one_line_with_fix(exc)


def test_resolve_llm_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ModelError) as exc:
        models.resolve_llm(str(missing), tmp_path)
    assert str(missing) in _one_line_with_fix(exc)


def test_resolve_llm_registry_model_not_pulled(tmp_path):
    with pytest.raises(ModelError) as exc:
        models.resolve_llm("qwen2.5-coder-1.5b", tmp_path)
    assert "rag models pull qwen2.5-coder-1.5b" in _one_line_with_fix(exc)


def test_resolve_llm_rejects_the_embedding_model(tmp_path):
    with pytest.raises(ModelError, match="embedding model"):
        models.resolve_llm(models.EMBEDDING_MODEL, tmp_path)


@pytest.mark.parametrize("content", [b"PK\x03\x04 a zip file", b"", b"GGU"])
def test_non_gguf_file_is_a_model_error(tmp_path, content):
    f = tmp_path / "weights.gguf"
    f.write_bytes(content)
    with pytest.raises(ModelError, match="not a GGUF") as exc:
        models.resolve_llm(str(f), tmp_path)
    assert "\n" not in str(exc.value)


def test_gguf_path_resolves_to_its_file_name(tmp_path):
    f = tmp_path / "my-model.gguf"
    f.write_bytes(b"GGUF" + b"\x00" * 32)
    assert models.resolve_llm(str(f), tmp_path) == ("my-model.gguf", f)


def test_missing_model_through_rag_is_a_model_error(tmp_path):
    from rag.pipeline import Rag
    from rag.settings import Settings

    rag = Rag(Settings.load(model=str(tmp_path / "missing.gguf"), models_dir=tmp_path))
    with pytest.raises(ModelError):
        rag.generator


def test_registry_is_consistent():
    assert models.DEFAULT_LLM in models.REGISTRY and models.REGISTRY[models.DEFAULT_LLM].kind == "llm"
    assert models.REGISTRY[models.EMBEDDING_MODEL].kind == "embedding"
    for spec in models.REGISTRY.values():
        for mf in spec.files:
            if spec.built_from:  # built at pull from a registry model's verified file
                assert models.REGISTRY[spec.built_from].files and not mf.parts and not mf.sha256
            else:
                assert len(mf.sha256) == 64 and mf.size > 0 and mf.parts


# --- the real pulled files ------------------------------------------------------------------


def test_real_embedding_model_verifies_in_full(models_dir):
    spec = models.get_spec(models.EMBEDDING_MODEL)
    status = models.check(spec, models_dir, full=True)
    assert status.verified, f"{status.detail}; run `rag models pull`"


def test_real_default_llm_is_present_and_stamped(models_dir):
    # cheap check only (size + stamp written by `rag models pull`); hashing 1 GB is too slow here
    status = models.check(models.get_spec(models.DEFAULT_LLM), models_dir)
    assert status.verified, f"{status.detail}; run `rag models pull`"
    name, path = models.resolve_llm(models.DEFAULT_LLM, models_dir)
    assert name == models.DEFAULT_LLM
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"


def test_real_embedder_output(real_embedder):
    import numpy as np

    vectors = real_embedder.embed(["graph neural networks", "", "A much longer sentence about reinforcement learning agents."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    again = real_embedder.embed(["graph neural networks"])
    assert np.allclose(again[0], vectors[0], atol=1e-5)  # a text's neighbours in a call do not change its vector
    close = real_embedder.embed(["GNNs on graphs", "a recipe for lemon cake"])
    assert float(vectors[0] @ close[0]) > float(vectors[0] @ close[1])


def _reference_vectors(model_path, tokenizer_path, texts, batch_size=32):
    """The embedder as it was before the parallel small-batch version: one onnxruntime session,
    the tokenizer padding each batch of 32, texts in their given order."""
    import numpy as np
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(256)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    rows = []
    for start in range(0, len(texts), batch_size):
        enc = tok.encode_batch(texts[start : start + batch_size])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {k: v for k, v in feed.items() if k in names})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        rows.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(rows)


def test_parallel_sessions_give_each_text_the_vector_it_gets_alone(real_embedder):
    """Sorting by length and one session per core must not change any vector: each is the vector
    of its text run alone (the int8 model quantizes activations per run, so a padded batch would
    give other vectors)."""
    import numpy as np

    from rag import chunking, corpus
    from rag.embedding import OnnxEmbedder
    from conftest import SEEDS_DIR

    papers = [p for f in corpus.load([SEEDS_DIR]) for p in f.papers]
    texts = [chunking.dense_text(p.title, c.text) for p in papers for c in chunking.chunk_paper(p)][:16]
    texts += ["x", "graph neural networks", " ".join(["word"] * 400)]  # shortest, short, truncated at 256 tokens
    expected = _reference_vectors(real_embedder.model_path, real_embedder.tokenizer_path, texts, batch_size=1)
    got = real_embedder.embed(texts)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    serial = OnnxEmbedder(real_embedder.model_path, real_embedder.tokenizer_path, workers=1).embed(texts)
    assert np.abs(serial - expected).max() < 1e-5


def test_the_int8_model_keeps_the_float_models_vectors(real_embedder, models_dir):
    """The model built at pull computes its weight products in int8 (MatMulInteger) and each
    vector stays within cosine 0.98 of the published float-computing model's."""
    import collections

    import onnx

    from rag import chunking, corpus
    from conftest import SEEDS_DIR

    ops = collections.Counter(n.op_type for n in onnx.load(str(real_embedder.model_path)).graph.node)
    assert ops["MatMulInteger"] == 6 * 6  # 6 layers: query, key, value, output, 2 feed-forward
    assert ops["MultiHeadAttention"] == ops["Gelu"] == 6 and ops["MatMul"] == 0 and ops["Where"] == 0
    papers = [p for f in corpus.load([SEEDS_DIR]) for p in f.papers]
    texts = [chunking.dense_text(p.title, c.text) for p in papers for c in chunking.chunk_paper(p)][:24] + ["x", "graph neural networks"]
    float_model = models_dir / models.get_spec(models.EMBEDDING_SOURCE).files[0].filename
    reference = _reference_vectors(float_model, real_embedder.tokenizer_path, texts, batch_size=1)
    cosines = (real_embedder.embed(texts) * reference).sum(axis=1)
    assert cosines.min() > 0.98, cosines.min()


def test_fusing_attention_changes_no_arithmetic(models_dir, tmp_path):
    """Each layer's ~25 exported attention and GELU operators become onnxruntime's own two: on the
    float model (where no per-run quantization amplifies rounding) every vector is the same within
    float rounding, padded batches included. A graph of another shape is left untouched."""
    import numpy as np
    import onnx

    from rag import quantize

    source = models_dir / models.get_spec(models.EMBEDDING_SOURCE).files[0].filename
    tokenizer = models_dir / models.get_spec(models.EMBEDDING_SOURCE).files[1].filename
    folded, fused = tmp_path / "folded.onnx", tmp_path / "fused.onnx"
    quantize.fold(source, folded)
    model = onnx.load(str(folded))
    assert quantize.fuse(model) == 6
    onnx.save(model, str(fused))
    texts = ["x", "graph neural networks", "A much longer sentence about reinforcement learning agents and their rewards."] + [" ".join(["word"] * 300)]
    for batch_size in (1, 4):
        plain = _reference_vectors(folded, tokenizer, texts, batch_size)
        assert np.abs(_reference_vectors(fused, tokenizer, texts, batch_size) - plain).max() < 1e-5
    again = onnx.load(str(fused))
    assert quantize.fuse(again) == 0 and again.SerializeToString() == onnx.load(str(fused)).SerializeToString()


def test_broken_embedding_model_is_a_model_error(tmp_path):
    from rag.embedding import OnnxEmbedder

    (tmp_path / "model.onnx").write_bytes(b"not an onnx graph")
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ModelError, match="rag models pull"):
        OnnxEmbedder(tmp_path / "model.onnx", tmp_path / "tokenizer.json").embed(["x"])


def test_the_embedder_is_built_at_pull_and_checked_by_its_stamp(models_dir, tmp_path):
    """Built from the verified source file (copied here, so nothing is downloaded), moved into
    place whole, and from then on checked like a pulled file against the sha256 its build recorded."""
    import shutil

    source = models.get_spec(models.EMBEDDING_SOURCE)
    for mf in source.files:
        (tmp_path / mf.filename).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(models_dir / mf.filename, tmp_path / mf.filename)
    assert models.check(source, tmp_path, full=True).verified
    built = models.get_spec(models.EMBEDDING_MODEL)
    assert not models.check(built, tmp_path).present
    (path,) = models.pull(built, tmp_path)
    assert models.check(built, tmp_path, full=True).verified
    assert models.sha256_file(path) == models.sha256_file(models_dir / built.files[0].filename)  # the same bytes on every build here
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no build left-overs
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "changed since it was verified" in models.check(built, tmp_path).detail
    assert "fails its sha256 check" in models.check(built, tmp_path, full=True).detail
    path.unlink()
    models.pull(built, tmp_path)  # a missing or damaged build is simply built again
    assert models.check(built, tmp_path, full=True).verified
