"""The musicnn network as an ONNX model, built from the checkpoint variables of the musicnn wheel, run by
onnxruntime.

The network is the one of musicnn's ``models.build_musicnn`` (Pons & Serra; 1.6 front-end filters, 64 mid-end
filters, 200 back-end units) written layer by layer with ``onnx.helper`` in NCHW layout: [batch, channels, time,
mel band] in the front end, [batch, channels, time] after it. Inference-mode batch norms (epsilon 0.001, as in
the checkpoint's graph) and no dropout. The checkpoint's TF kernels [kh, kw, in, out] become ONNX's [out, in, kh,
kw]. Nothing of TensorFlow is needed: the variables are read with :mod:`.tfproto`.

Why: onnxruntime's convolutions take about half the CPU time of the TensorFlow 2.5 library bundled with essentia
on the same patches (bench/RESULTS.md, "musicnn runtimes"), and the tagger networks are most of the builder's
CPU time. The outputs match the original model's stored reference outputs (checked on conversion, like the
frozen graphs).
"""

from __future__ import annotations

import typing as tp

import numpy as np

from genrecraft.core.errors import ModelFilesError

EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default, the FusedBatchNorm epsilon in the graph
TAGS, EMBEDDING, INPUT = "tags", "embedding", "patches"
OPSET = 18


def _require(module: str) -> tp.Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelFilesError(f"the musicnn tagger needs the {module} package: pip install {module} "
                              "(genrecraft's requirements/constraints.txt pins it), or use --tagger none") from exc


def build(variables: tp.Mapping[str, np.ndarray], num_classes: int = 50) -> tp.Any:
    """The ONNX model of musicnn with the checkpoint ``variables``: input ``patches`` [batch, 187, 96] log-mel,
    outputs ``tags`` [batch, 50] (sigmoid) and ``embedding`` [batch, 200] (the penultimate dense layer before its
    ReLU, ``model/dense/BiasAdd``)."""
    onnx = _require("onnx")
    from onnx import TensorProto, helper, numpy_helper

    nodes: tp.List[tp.Any] = []
    inits: tp.List[tp.Any] = []
    names: tp.Set[str] = set()

    def const(name: str, value: np.ndarray) -> str:
        if name not in names:  # a name used twice is the same constant (the axes)
            names.add(name)
            inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(kind: str, inputs: tp.Sequence[str], name: str, **attrs) -> str:
        nodes.append(helper.make_node(kind, list(inputs), [name], name=name, **attrs))
        return name

    def var(name: str) -> np.ndarray:
        if name not in variables:
            raise ValueError(f"musicnn checkpoint has no variable {name}")
        return np.asarray(variables[name], dtype=np.float32)

    def batch_norm(x: str, index: int) -> str:
        prefix = "batch_normalization" + (f"_{index}" if index else "")
        return op("BatchNormalization", [x, const(f"{prefix}/gamma", var(f"{prefix}/gamma")),
                                         const(f"{prefix}/beta", var(f"{prefix}/beta")),
                                         const(f"{prefix}/mean", var(f"{prefix}/moving_mean")),
                                         const(f"{prefix}/var", var(f"{prefix}/moving_variance"))],
                  f"{prefix}/out", epsilon=EPSILON)

    def conv(x: str, index: int, pads: tp.Sequence[int], one_d: bool = False) -> str:
        """TF ``conv2d_<index>`` (+ bias + ReLU); ``one_d``: the mid-end's [7, channels] kernels as 1-D convs."""
        prefix = "conv2d" + (f"_{index}" if index else "")
        kernel = var(f"{prefix}/kernel")  # [kh, kw, in, out]
        weight = kernel[:, :, 0, :].transpose(2, 1, 0) if one_d else kernel.transpose(3, 2, 0, 1)
        y = op("Conv", [x, const(f"{prefix}/w", weight), const(f"{prefix}/b", var(f"{prefix}/bias"))],
               f"{prefix}/conv", pads=list(pads))
        return op("Relu", [y], f"{prefix}/relu")

    axes = lambda name, *values: const(name, np.array(values, dtype=np.int64))  # noqa: E731

    # front end: [B, 187, 96] -> [B, 1, 187, 96], input batch norm
    x = op("Unsqueeze", [INPUT, axes("axis1", 1)], "expand")
    x = batch_norm(x, 0)
    features = []
    # timbral: time padded 3 + 3, valid in frequency, then max over the remaining bands
    for index, bn in ((0, 1), (1, 2)):
        y = batch_norm(conv(x, index, [3, 0, 3, 0]), bn)
        features.append(op("ReduceMax", [y, axes("axis3", 3)], f"timbral{index}", keepdims=0))
    # temporal: [k, 1] kernels, TF "SAME" padding in time (k - 1 split, the larger half after)
    for index, bn, k in ((2, 3, 128), (3, 4, 64), (4, 5, 32)):
        y = batch_norm(conv(x, index, [(k - 1) // 2, 0, k // 2, 0]), bn)
        features.append(op("ReduceMax", [y, axes("axis3", 3)], f"temporal{index}", keepdims=0))
    front = op("Concat", features, "front", axis=1)  # [B, 561, T]

    # mid end: three 7-wide convs over all channels, the 2nd and 3rd residual
    c1 = batch_norm(conv(front, 5, [3, 3], one_d=True), 6)
    r2 = op("Add", [batch_norm(conv(c1, 6, [3, 3], one_d=True), 7), c1], "res2")
    r3 = op("Add", [batch_norm(conv(r2, 7, [3, 3], one_d=True), 8), r2], "res3")
    mid = op("Concat", [front, c1, r2, r3], "mid", axis=1)  # [B, 753, T]

    # back end: max and mean over time, interleaved per channel as TF's concat([max, mean], 2) + flatten
    pooled = [op("ReduceMax", [mid, axes("axis2", 2)], "max_pool", keepdims=0),
              op("ReduceMean", [mid, axes("axis2", 2)], "mean_pool", keepdims=0)]
    pooled = [op("Unsqueeze", [p, axes("axis2", 2)], f"{p}/x") for p in pooled]
    flat = op("Reshape", [op("Concat", pooled, "pool", axis=2), axes("flat_shape", 0, -1)], "flat")
    flat = batch_norm(flat, 9)
    dense = op("Gemm", [flat, const("dense/w", var("dense/kernel")), const("dense/b", var("dense/bias"))],
               EMBEDDING)
    hidden = batch_norm(op("Relu", [dense], "dense/relu"), 10)
    logits = op("Gemm", [hidden, const("dense_1/w", var("dense_1/kernel")),
                         const("dense_1/b", var("dense_1/bias"))], "logits")
    op("Sigmoid", [logits], TAGS)

    graph = helper.make_graph(
        nodes, "musicnn", [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 187, 96])],
        [helper.make_tensor_value_info(TAGS, TensorProto.FLOAT, ["batch", num_classes]),
         helper.make_tensor_value_info(EMBEDDING, TensorProto.FLOAT, ["batch", 200])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="genrecraft (from the musicnn 0.1.0 wheel's checkpoint)")
    model.ir_version = 8  # opset 18's IR version: onnxruntime releases of the last years load it
    onnx.checker.check_model(model)
    return model


class OnnxNetwork:
    """An onnxruntime session of a musicnn ONNX file; one intra-op thread (the builder runs one per worker)."""

    def __init__(self, path: str, threads: int = 1):
        ort = _require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, patches: np.ndarray) -> tp.Dict[str, np.ndarray]:
        """``{"tags": [patches, 50], "embedding": [patches, 200]}`` of log-mel ``patches`` [patches, 187, 96]."""
        tags, embedding = self.session.run([TAGS, EMBEDDING],
                                           {INPUT: np.ascontiguousarray(patches, dtype=np.float32)})
        return {"tags": tags, "embedding": embedding}
