"""Static int8 quantization (QDQ) of an exported fp32 model, keeping the float-critical nodes float.

Never dynamic quantization: dynamically quantized convolutions ran 2x slower than fp32 here
(issue 6). Static QDQ: per-channel int8 weights, uint8 activations, MinMax ranges from
calibration images (the augmented calibration model only returns each tensor's min and max,
so hundreds of images cost little memory; ORT 1.32's ``CalibMaxIntermediateOutputs`` would
silently discard data, do not use it), ``onnxruntime.quantization.quant_pre_process`` first (symbolic shape
inference skipped: the dynamic H/W trip it up).

What stays float, and why:

- keypoints: the 1x1 conv giving the detector logits (``detector_out``): int8 logits (256 levels
  over the logit range) quantize the softmax scores and scramble the keypoint ranking (issue 6:
  top-500 overlap fell to 0.1 with a quantized softmax). It costs 4800 x 65 x 96 MACs at 640x480,
  ~0.5 ms. Softmax/NMS are not in the graph at all (runtime.postprocess does them in numpy).
  The descriptor L2 normalisation (ReduceL2/Div) is never in ``QUANTIZED_OPS``, so it is float.
- places: the whole NetVLAD/GeM head and the projection (``pool``, ``proj``): the soft-assignment
  conv feeds a sharp softmax (alpha = 50) and the residual aggregation and both L2
  normalisations are precision-sensitive while costing nothing next to the trunk.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)

QUANTIZED_OPS: tuple[str, ...] = ("Conv", "Add", "Concat", "Resize", "MaxPool", "AveragePool", "Relu")
# Torch module names (path segments of the exported node names, see export.wrappers) kept float.
FLOAT_MODULES: tuple[str, ...] = ("detector_out",)
# NetVLAD stays float (soft-assignment softmax and residual sums lost R@1 in int8); the 4096->256
# projection is quantized: shipped place model, 128x160, 1 thread, ORT: 1.34 -> 1.18-1.21 ms,
# file 4.85 -> 1.71 MB, Nordland R@1 0.372 -> 0.373 (pool in int8 too: 1.17 ms but R@1 0.367).
PLACES_FLOAT_MODULES: tuple[str, ...] = ("pool",)
# Places add the squeeze-excitation ops (GlobalAveragePool, Mul). HardSigmoid has no int8 kernel
# in ORT; quantizing it only added Q/DQ pairs. Measured at 128x160, 1 thread, untrained nets:
# keypoint:edge trunk 6.5 -> 1.5 ms, resnet18 38 -> 9.7 ms, but mobilenetv3_small 1.4-1.6 ms fp32
# vs 1.6-2.0 ms int8 (depthwise convs and float hard-swish between Q/DQ pairs): no int8 gain there.
PLACES_QUANTIZED_OPS: tuple[str, ...] = (*QUANTIZED_OPS, "GlobalAveragePool", "Mul", "Gemm", "MatMul")
# The one-pass frontend (export.frontend): the keypoint part exactly as the keypoint model, so its
# outputs equal keypoints.int8.onnx's; NetVLAD and the grid cell means (exact averages) stay float
# as in the place model, the projections are quantized.
FRONTEND_FLOAT_MODULES: tuple[str, ...] = (*FLOAT_MODULES, "head/pool", "head/attention", "head/grid_pool")
FRONTEND_QUANTIZED_OPS: tuple[str, ...] = (*QUANTIZED_OPS, "Gemm", "MatMul")

# What each shipped kind keeps float and may quantize: {kind: (float_modules, op_types)}.
RECIPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "keypoints": (FLOAT_MODULES, QUANTIZED_OPS),
    "places": (PLACES_FLOAT_MODULES, PLACES_QUANTIZED_OPS),
    "frontend": (FRONTEND_FLOAT_MODULES, FRONTEND_QUANTIZED_OPS),
}


def node_in_modules(name: str, modules: Iterable[str]) -> bool:
    """True when an exported node name ``/net/a/b/Op`` lies inside one of the torch ``modules``
    (a module name matches a whole path segment; ``"a/b"`` matches consecutive segments)."""
    segments = name.strip("/").split("/")[:-1]
    path = "/" + "/".join(segments) + "/"
    return any(f"/{m.strip('/')}/" in path for m in modules)


def _calibration_reader(calibration: Sequence[np.ndarray], input_name: str):
    """ONNX Runtime's calibration protocol over a list of inputs (float32, contiguous)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(calibration)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {input_name: np.ascontiguousarray(x, dtype=np.float32)}

    return Reader()


def quantize_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration: Sequence[np.ndarray],
    float_modules: Sequence[str] = FLOAT_MODULES,
    op_types: Sequence[str] = QUANTIZED_OPS,
    input_name: str = "image",
    reduce_range: bool = True,
) -> Path:
    """Static QDQ int8: per-channel int8 weights, uint8 activations, MinMax on ``calibration``.

    Args:
        fp32_path: exported fp32 model.
        int8_path: output (written atomically; metadata_props of the fp32 model are kept).
        calibration: network inputs (e.g. 1 x 1 x H x W float32 in [0, 1]), one per run.
        float_modules: torch modules whose nodes stay float (see ``node_in_modules``).
        op_types: op types that may be quantized; everything else stays float.
        reduce_range: 7-bit weights. On x86 CPUs with AVX2 but no VNNI, onnxruntime's uint8 x int8
            kernels can saturate the pairwise sums of full-range weights: there the tiny test model's
            int8 keypoints overlapped its fp32 ones by 0.37, with this 0.95 (an AMD EPYC, session
            34; the same test passed at full range on earlier machines). A robot's CPU is not chosen
            by the exporter, so the weights give up a bit instead (False: full range, as the models
            shipped before session 34 were quantized).

    Returns ``int8_path``. Raises ValueError when ``calibration`` is empty.
    """
    import onnx
    from onnxruntime.quantization import (
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    if len(calibration) == 0:
        raise ValueError("int8 calibration needs at least one image")

    int8_path = Path(int8_path)
    with tempfile.TemporaryDirectory(prefix="homeloc-quant-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        exclude = [n.name for n in onnx.load(str(pre)).graph.node if node_in_modules(n.name, float_modules)]
        log.info("quantizing %s: %d float nodes kept (%s)", fp32_path, len(exclude), ", ".join(float_modules))
        quantize_static(
            str(pre),
            str(out),
            _calibration_reader(calibration, input_name),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            reduce_range=reduce_range,
        )
        proto = onnx.load(str(out))
        src = onnx.load(str(fp32_path), load_external_data=False)
        del proto.metadata_props[:]
        proto.metadata_props.extend(src.metadata_props)
        atomic_write(int8_path, proto.SerializeToString())
    return int8_path


def quantization_summary(path: str | Path, float_modules: Sequence[str] = FLOAT_MODULES) -> dict:
    """What a QDQ model quantized: counts of Q/DQ nodes, quantized vs float ops, and for every node
    inside ``float_modules`` whether it reads a dequantized weight (it should not).

    Returns ``{"quantize_linear", "dequantize_linear", "quantized_nodes", "float_nodes",
    "float_module_nodes": [{"name", "op", "weight_quantized", "output_quantized"}],
    "outputs_dequantized": [output names produced by a DequantizeLinear]}``.
    """
    import onnx

    g = onnx.load(str(path)).graph
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    q = [n for n in g.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in g.node if n.op_type == "DequantizeLinear"]
    compute = [n for n in g.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]

    def from_dq(t: str) -> bool:
        p = producer.get(t)
        return p is not None and p.op_type == "DequantizeLinear"

    quantized = [n for n in compute if n.input and from_dq(n.input[0])]
    float_mod = []
    for n in compute:
        if node_in_modules(n.name, float_modules):
            float_mod.append(
                {
                    "name": n.name,
                    "op": n.op_type,
                    "weight_quantized": len(n.input) > 1 and from_dq(n.input[1]),
                    "output_quantized": any(
                        c.op_type == "QuantizeLinear" for c in consumers.get(n.output[0], [])
                    ),
                }
            )
    return {
        "quantize_linear": len(q),
        "dequantize_linear": len(dq),
        "quantized_nodes": len(quantized),
        "float_nodes": len(compute) - len(quantized),
        "float_module_nodes": float_mod,
        "outputs_dequantized": [o.name for o in g.output if from_dq(o.name)],
    }
