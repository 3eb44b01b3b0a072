"""The embedding model with int8 arithmetic, built once at `rag models pull` from the pulled file.

The published all-MiniLM-L6-v2 "int8" file stores int8 weights but computes in float: its graph
turns every weight back into float32 (Cast, Mul) before 48 plain `MatMul`s. Here those weights are
folded into float32 (onnxruntime's basic graph optimisation) and quantized again, per output
channel, with int8 arithmetic (`MatMulInteger`, activations quantized per call). On SciFact's
abstracts that embeds 1.75x as fast at the same hybrid nDCG@10 (docs/benchmarks.md); per-channel
scales keep each vector within cosine 0.99 of the float model's (per-tensor: 0.87).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from rag.errors import ModelError


def build_int8(source: Path, target: Path) -> None:
    """Write `target` (not atomically: the caller moves it into place) from the float-computing
    `source`. The same onnx and onnxruntime versions give the same bytes on every run."""
    try:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelError(f"cannot build {target.name}: {exc.name or exc} is missing; reinstall the project (pip install -e .)") from None
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        folded = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        logging.disable(logging.WARNING)  # quantize_dynamic's advice to pre-process is for image models
        try:
            ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
            quantize_dynamic(str(folded), str(target), weight_type=QuantType.QInt8, per_channel=True)
        except Exception as exc:  # onnx and onnxruntime raise their own untyped errors
            raise ModelError(f"cannot build {target.name} from {source} ({exc})") from None
        finally:
            logging.disable(logging.NOTSET)
