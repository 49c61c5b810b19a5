"""Winograd F(2x2,3x3) against direct convolution on ONNX Runtime's CPU provider, for one layer of the default model.

    .venv/bin/python benchmarks/winograd_probe.py                      # 64 -> 32, reflect, 640x512
    .venv/bin/python benchmarks/winograd_probe.py --cin 32 --cout 64 --padding zero --size 641x511
    .venv/bin/python benchmarks/winograd_probe.py --profile            # + ORT kernel ms per node

The question (issue 12): 64 % of the default model's ONNX Runtime time is in plain 64/32-channel
3x3 convolutions, so can an exact Winograd re-parametrisation, written in standard ONNX operators,
turn its 2.25x fewer multiplications into time? Each variant here is one ``Pad + Conv`` layer of
the network written as an ONNX graph with dynamic H and W (odd sizes too), checked against the
direct form, and all are timed alternately in rounds on the session options the backend uses.

The Winograd graph: reflect (or zero) Pad by 1 plus one more row where H is odd, the C channels
stacked along the height (a free Reshape), so that ONE fixed Conv (1 -> 16, kernel 4, stride 2)
is the input transform B^T d B of every channel, and its output is already in the
position-major order the 16 per-position GEMMs need (``(1, 16*C, H/2+1, W/2)``: no Transpose).
The GEMMs are a grouped 1x1 Conv (group 16) or a batched MatMul, with the bias folded into the
position whose output transform sums to one. The output transform A^T m A is a fixed 16 -> 4
1x1 Conv + DepthToSpace, or one 16 -> 1 ConvTranspose (kernel 2, stride 2); a Slice crops the
padding row. (Same channel stacking for F(4x4,3x3) would need a per-channel pad of up to 4 rows.)
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lrcfuse_model.config import parse_size
from lrcfuse_model.inference.backends import ORT_DISABLED_OPTIMIZERS

# F(2x2, 3x3) (Lavin & Gray 2016), for correlation as ONNX Conv computes it.
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64)


class _Graph:
    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    def model(self, cin: int, cout: int) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes,
            "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, "H", "W"])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, "H", "W"])],
            initializer=self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
        onnx.checker.check_model(model, full_check=True)
        return model


def direct(w: np.ndarray, b: np.ndarray, padding: str) -> onnx.ModelProto:
    """The layer as the export writes it: reflect Pad + Conv, or Conv with zero ``pads``."""
    g = _Graph()
    g.const("w", w), g.const("b", b)
    if padding == "reflect":
        g.node("Pad", ["x", g.const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], "xp", mode="reflect")
        g.node("Conv", ["xp", "w", "b"], "y")
    else:
        g.node("Conv", ["x", "w", "b"], "y", pads=[1, 1, 1, 1])
    return g.model(w.shape[1], w.shape[0])


def winograd(w: np.ndarray, b: np.ndarray, padding: str, gemm: str = "conv", output: str = "convtranspose"):
    """The same layer as Winograd F(2x2,3x3): exact up to float rounding, any H, W >= 2."""
    cout, cin = w.shape[:2]
    g = _Graph()
    i64 = lambda *v: np.array(v, np.int64)  # noqa: E731
    g.node("Shape", ["x"], "shape")
    h = g.node("Gather", ["shape", g.const("i2", i64(2))], "h", axis=0)
    width = g.node("Gather", ["shape", g.const("i3", i64(3))], "w_", axis=0)
    # Rows: 1 above, 1 + H % 2 below (each channel an even number of rows); columns: the transform conv pads.
    g.node("Add", [g.node("Mod", [h, g.const("two", i64(2))], "odd"), g.const("one", i64(1))], "below")
    g.node("Concat", [g.const("pre", i64(0, 0, 1, 1, 0, 0)), "below", "one"], "pads", axis=0)
    g.node("Pad", ["x", "pads"], "xp", mode="reflect" if padding == "reflect" else "constant")
    g.node("Reshape", ["xp", g.const("stack", i64(1, 1, -1, 0))], "xs")  # (1, 1, C*Hp, Wp)
    bt = np.stack([np.outer(BT[i], BT[j]) for i in range(4) for j in range(4)])[:, None].astype(np.float32)
    g.node("Conv", ["xs", g.const("bt", bt)], "v", strides=[2, 2], pads=[0, 0, 2, 1])  # (1, 16, C*(H'/2), W/2)
    u = np.einsum("ia,ocab,jb->ijoc", G, w.astype(np.float64), G).reshape(16, cout, cin)
    bias = np.zeros((16, cout), np.float32)
    bias[5] = b  # A^T e_1 = (1, 1): the position (1, 1) maps to all four outputs of a tile
    if gemm == "conv":
        g.node("Reshape", ["v", g.const("vshape", i64(1, 16 * cin, -1, 0))], "vg")
        u4 = g.const("u", u.reshape(16 * cout, cin, 1, 1).astype(np.float32))
        g.node("Conv", ["vg", u4, g.const("ub", bias.reshape(-1))], "m", group=16)
        g.node("Reshape", ["m", g.const("mshape", i64(1, 16, -1, 0))], "ms")
    else:
        g.node("Shape", ["v"], "vdims")
        g.node("Reshape", ["v", g.const("vshape", i64(16, cin, -1))], "vg")
        g.node("MatMul", [g.const("u", u.astype(np.float32)), "vg"], "m0")
        g.node("Add", ["m0", g.const("ub", bias[:, :, None])], "m")
        tiles_w = g.node("Gather", ["vdims", "i3"], "tw", axis=0)
        g.node("Concat", [g.const("mpre", i64(1, 16, -1)), tiles_w], "mshape", axis=0)
        g.node("Reshape", ["m", "mshape"], "ms")
    at = np.stack([np.outer(AT[:, i], AT[:, j]).reshape(4) for i in range(4) for j in range(4)])  # (16, 4)
    if output == "convtranspose":
        g.node("ConvTranspose", ["ms", g.const("at", at.reshape(16, 1, 2, 2).astype(np.float32))], "o1", strides=[2, 2])
    else:
        g.node("Conv", ["ms", g.const("at", at.T.reshape(4, 16, 1, 1).astype(np.float32))], "o4")
        g.node("DepthToSpace", ["o4"], "o1", blocksize=2, mode="DCR")
    g.node("Reshape", ["o1", g.const("oshape", i64(1, cout, -1, 0))], "o")
    g.node("Concat", [h, width], "ends", axis=0)
    g.node("Slice", ["o", g.const("starts", i64(0, 0)), "ends", g.const("axes", i64(2, 3))], "y")
    return g.model(cin, cout)


def session(model: onnx.ModelProto, threads: int, profile_prefix: str | None = None):
    """The session options of :class:`lrcfuse_model.inference.backends.OnnxRuntimeBackend` (CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.enable_cpu_mem_arena = False
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"],
        disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS),
    )


def node_profile(model: onnx.ModelProto, x: np.ndarray, threads: int, runs: int = 4) -> list[tuple[str, float]]:
    """ORT kernel ms per node (mean over ``runs`` after one warm-up), largest first."""
    s = session(model, threads, str(Path(tempfile.mkdtemp(prefix="winograd_probe.")) / "p"))
    s.run(None, {"x": x})
    for _ in range(runs):
        s.run(None, {"x": x})
    totals: collections.Counter = collections.Counter()
    for e in json.loads(Path(s.end_profiling()).read_text()):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            totals[e["args"]["op_name"]] += e["dur"]
    return [(op, us / (runs + 1) / 1000.0) for op, us in totals.most_common()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cin", type=int, default=64)
    parser.add_argument("--cout", type=int, default=32)
    parser.add_argument("--padding", choices=("reflect", "zero"), default="reflect")
    parser.add_argument("--size", default="640x512", help="WxH")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    h, w_ = parse_size(args.size)
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((args.cout, args.cin, 3, 3)) / np.sqrt(9 * args.cin)).astype(np.float32)
    b = rng.standard_normal(args.cout).astype(np.float32)
    x = rng.standard_normal((1, args.cin, h, w_)).astype(np.float32)
    models = {
        "direct": direct(w, b, args.padding),
        "F(2,3) conv-gemm + convtranspose": winograd(w, b, args.padding),
        "F(2,3) conv-gemm + depthtospace": winograd(w, b, args.padding, output="depthtospace"),
        "F(2,3) matmul + depthtospace": winograd(w, b, args.padding, gemm="matmul", output="depthtospace"),
    }
    sessions = {k: session(m, args.threads) for k, m in models.items()}
    ref = sessions["direct"].run(None, {"x": x})[0]
    for k, s in sessions.items():
        print(f"{k:34s} max |diff| vs direct {np.abs(s.run(None, {'x': x})[0] - ref).max():.2e}")
    times: dict[str, list[float]] = {k: [] for k in sessions}
    keys = list(sessions)
    for r in range(args.rounds):
        for k in keys[r % len(keys):] + keys[: r % len(keys)]:
            start = time.perf_counter()
            sessions[k].run(None, {"x": x})
            times[k].append(time.perf_counter() - start)
    base = np.array(times["direct"])
    macs = args.cin * args.cout * 9 * h * w_ / 1e9
    print(f"{args.cin} -> {args.cout}, {args.padding} padding, {w_}x{h}: {macs:.2f} G MACs, {args.threads} threads")
    for k in keys:
        t = np.array(times[k])
        print(f"{k:34s} {1000 * np.median(t):7.1f} ms; direct/this per-round median {np.median(base / t):.2f}")
        if args.profile:
            rows = node_profile(models[k], x, args.threads)
            print("    " + ", ".join(f"{op} {ms:.0f}" for op, ms in rows if ms >= 0.5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
