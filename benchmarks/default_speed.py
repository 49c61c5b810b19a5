"""The default model on ONNX Runtime: the export before issue 12's re-parametrisation against the one now.

    .venv/bin/python benchmarks/default_speed.py                          # 640x512, 12 rounds
    .venv/bin/python benchmarks/default_speed.py --sizes 640x512,1024x768 --rounds 16
    .venv/bin/python benchmarks/default_speed.py --profile                # + ORT kernel time per op type
    .venv/bin/python benchmarks/default_speed.py --openvino --split       # + the new export on OpenVINO

"old" is ``export_onnx(model, deploy=False)``: the modules exported as they are, with the two
earlier rewrites (export format 3). "new" is ``export_onnx(model)``: the same weights through
:func:`lrcfuse_model.inference.deploy_graph.deploy_module` (export format 4's graph) with the
``lrcfuse.cpu_spin_wait=0`` hint (format 5). "old-nospin" (``--split``) is the old graph with that hint
added, to tell the graph's share of the gain from the session option's. "new-openvino" (``--openvino``)
is the new export on :class:`OpenVinoBackend` (export format 6 names OpenVINO as this network's CPU
runtime). The others run on :class:`OnnxRuntimeBackend` (the session options the node uses); all in
one process, in rounds with the order rotated
every round, so load drift on a shared machine hits all alike: each line gives the median ms and the
median of the per-round old/new ratios. The outputs are compared with each other and with PyTorch on
the same frames (largest absolute difference).
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
import torch

from lrcfuse_model.config import parse_size
from lrcfuse_model.inference.backends import ORT_DISABLED_OPTIMIZERS, Backend, OnnxRuntimeBackend, TorchBackend
from lrcfuse_model.inference.export import export_onnx
from lrcfuse_model.inference.openvino_backend import OpenVinoBackend
from lrcfuse_model.inference.runtimes import SPIN_WAIT_HINT
from lrcfuse_model.nn.checkpoint import load_model


def frame_pair(h: int, w: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth scene with texture and noise (random noise alone is not what the network sees)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.5 + 0.3 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    ir = np.clip(base + 0.05 * g.standard_normal((h, w)), 0, 1).astype(np.float32)
    vi = np.clip(1.0 - base + 0.1 * g.standard_normal((h, w)), 0, 1).astype(np.float32)
    return ir, vi


def profile(path: Path, h: int, w: int, runs: int = 3) -> list[tuple[str, float]]:
    """ONNX Runtime's kernel time per op type (ms per frame), largest first."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads, options.inter_op_num_threads = 2, 1
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=list(ORT_DISABLED_OPTIMIZERS)
    )
    ir, vi = frame_pair(h, w)
    feeds = {"ir": ir[None, None], "vi": vi[None, None]}
    session.run(None, feeds)  # warm-up (profiled too: counted in the average)
    for _ in range(runs):
        session.run(None, feeds)
    events = json.loads(Path(session.end_profiling()).read_text())
    totals: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            totals[e["args"]["op_name"]] += e["dur"]
    return [(op, us / (runs + 1) / 1000.0) for op, us in totals.most_common()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="640x512", help="comma-separated WxH (default 640x512)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: the backend's choice)")
    parser.add_argument("--profile", action="store_true", help="also print ORT kernel time per op type")
    parser.add_argument("--split", action="store_true", help="also time the old graph with the new session hint")
    parser.add_argument("--openvino", action="store_true", help="also time the new export on OpenVINO")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, args.threads or torch.get_num_threads()))
    model = load_model(None)
    folder = Path(tempfile.mkdtemp(prefix="default_speed."))
    paths = {
        "old": export_onnx(model, folder / "old.onnx", deploy=False),
        "new": export_onnx(model, folder / "new.onnx"),
    }
    if args.split:
        import onnx

        proto = onnx.load(str(paths["old"]))
        onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, SPIN_WAIT_HINT: "0"})
        paths["old-nospin"] = folder / "old_nospin.onnx"
        onnx.save_model(proto, str(paths["old-nospin"]))
    backends: dict[str, Backend] = {k: OnnxRuntimeBackend(p, threads=args.threads) for k, p in paths.items()}
    if args.openvino:
        backends["new-openvino"] = OpenVinoBackend(paths["new"], threads=args.threads)
    reference = TorchBackend(model)
    print(f"ONNX Runtime, {backends['new'].threads} threads; exports in {folder}")
    for size in args.sizes.split(","):
        h, w = parse_size(size)
        ir, vi = frame_pair(h, w)
        for b in backends.values():  # warm-up (OpenVINO compiles for this size on the second frame of it)
            b.fuse(ir, vi)
        outs = {k: b.fuse(ir, vi) for k, b in backends.items()}  # parity, on the models the rounds time
        ref = reference.fuse(ir, vi)
        diffs = ", ".join(f"|{k} - torch| {np.abs(out - ref).max():.2e}" for k, out in outs.items())
        print(f"{w}x{h}: max |new - old| {np.abs(outs['new'] - outs['old']).max():.2e}, {diffs}")
        keys = list(backends)
        times: dict[str, list[float]] = {k: [] for k in keys}
        for r in range(args.rounds):
            for k in keys[r % len(keys) :] + keys[: r % len(keys)]:  # each variant first in turn
                start = time.perf_counter()
                backends[k].fuse(ir, vi)
                times[k].append(time.perf_counter() - start)
        for k in keys[1:]:
            ratios = np.array(times["old"]) / np.array(times[k])
            print(
                f"{w}x{h}: old {1000 * np.median(times['old']):.0f} ms, {k} {1000 * np.median(times[k]):.0f} ms "
                f"(medians of {args.rounds} rounds); old/{k} per-round ratio median {np.median(ratios):.2f} "
                f"(min {ratios.min():.2f}, max {ratios.max():.2f})"
            )
        if args.profile:
            for k, p in paths.items():
                rows = profile(p, h, w)
                total = sum(ms for _, ms in rows)
                top = ", ".join(f"{op} {ms:.0f} ({100 * ms / total:.0f}%)" for op, ms in rows[:8])
                print(f"{w}x{h} {k} profile, kernel ms per frame (total {total:.0f}): {top}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
