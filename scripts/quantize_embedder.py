#!/usr/bin/env python
"""MiniLM with int8 arithmetic, for measuring it (#15, item 5): not used by the product.

The shipped `minilm-l6-int8/model.onnx` stores int8 weights but computes in float: its graph turns
each weight back into float32 (Cast, Mul) and multiplies with plain `MatMul` (48 of them, no
`MatMulInteger`). This script folds those weights into float32 (onnxruntime's basic graph
optimisation, saved to a file) and quantizes the result dynamically (onnxruntime.quantization:
int8 weights, activations quantized per call, `MatMulInteger`). It needs the `onnx` package,
which the product does not install: `pip install onnx`.

    python scripts/quantize_embedder.py [--models-dir models] [--out /tmp/minilm-q8.onnx]
    python scripts/compare_embedders.py --embedders minilm,minilm-q8 --q8-model /tmp/minilm-q8.onnx
"""

import argparse
import collections
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "minilm-q8.onnx")
    args = ap.parse_args()
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = args.models_dir / "minilm-l6-int8" / "model.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        folded = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        quantize_dynamic(str(folded), str(args.out), weight_type=QuantType.QInt8)
    for path in (source, args.out):
        ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
        print(f"{path}: {path.stat().st_size:,} bytes, MatMul {ops['MatMul']}, MatMulInteger {ops['MatMulInteger']}")


if __name__ == "__main__":
    main()
