"""``lrcfuse export``: write the ONNX model or TensorRT engine, then check it against PyTorch.

:func:`check_parity` compares an exported backend with PyTorch on real pairs at their native
sizes (through the one preprocessing path, :func:`lrcfuse_model.images.preprocess.prepare_pair`)
and on synthetic odd/even frames; :func:`cmd_export` is the command. It sits above both the
backends and :mod:`lrcfuse_model.inference.export`, which import nothing of it.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError
from ..images.pairing import find_pairs
from ..images.preprocess import prepare_pair, read_image
from ..nn.checkpoint import load_model
from .backends import OnnxRuntimeBackend, TensorRTBackend, TorchBackend
from .export import _check_profile, cached_engine, cached_onnx, export_onnx, onnx_operators, profile_shapes
from .runtimes import require_tensorrt


def check_parity(
    backend: Any,
    reference: Any,
    pairs_dir: str | Path | None = None,
    n_pairs: int = 3,
    data_cfg: Mapping[str, Any] | None = None,
    names: Sequence[str] | None = None,
    synthetic_sizes: Sequence[tuple[int, int]] = ((67, 91), (64, 96)),
) -> list[dict[str, Any]]:
    """Max |backend - reference| on real pairs at their native sizes and on synthetic odd/even frames.

    Both are :class:`lrcfuse_model.inference.backends.Backend`. Real pairs come from ``pairs_dir/{ir,vi}``:
    the pairs ``names``, or the first ``n_pairs`` by name with distinct sizes first. They go
    through ``prepare_pair``, so what is compared is exactly what the fuser feeds each backend.
    """
    def compare(label: str, ir: np.ndarray, vi_y: np.ndarray) -> None:
        diff = float(np.abs(backend.fuse(ir, vi_y) - reference.fuse(ir, vi_y)).max())
        rows.append({"pair": label, "height": ir.shape[0], "width": ir.shape[1], "max_abs": diff})

    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    for h, w in synthetic_sizes:
        compare(f"random {w}x{h}", rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32))
    if not pairs_dir or (n_pairs <= 0 and not names):
        return rows
    pairs, _ = find_pairs(Path(pairs_dir) / "ir", Path(pairs_dir) / "vi")
    if names:
        by_name = {p.name: p for p in pairs}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValueError(f"{pairs_dir}: no pairs named {missing}")
        pairs = [by_name[n] for n in names]
    else:  # distinct sizes first (read from the file headers), then the rest in name order
        from PIL import Image

        first_of_size: dict[tuple[int, int], Any] = {}
        for p in pairs:
            with Image.open(p.vi) as im:
                first_of_size.setdefault(im.size, p)
        firsts = list(first_of_size.values())
        pairs = (firsts + [p for p in pairs if p not in firsts])[:n_pairs]
    prepared = [(p, prepare_pair(read_image(p.ir), read_image(p.vi), data_cfg, (str(p.ir), str(p.vi)))) for p in pairs]
    for p, q in prepared:
        compare(f"{Path(pairs_dir).name}/{p.name}", q.ir, q.vi_y)
    return rows


# -- lrcfuse export --------------------------------------------------------------------------------


def _print_parity(rows: list[dict[str, Any]], label: str) -> float:
    print(f"parity {label} vs PyTorch (max |difference| on [0,1] images):")
    for r in rows:
        print(f"  {r['pair']:<28} {r['width']:>5}x{r['height']:<5} {r['max_abs']:.2e}")
    worst = max(r["max_abs"] for r in rows)
    print(f"  worst {worst:.2e}")
    return worst


def cmd_export(cfg: dict[str, Any]) -> int:
    """``lrcfuse export``: ONNX (checked against PyTorch) or a TensorRT engine (cached, copied to --out)."""
    e = cfg["export"]
    if e["format"] not in ("onnx", "engine"):
        raise ConfigError(f"export.format must be 'onnx' or 'engine', got {e['format']!r}")
    shapes = profile_shapes(e)
    _check_profile(shapes)
    weights = e["weights"] or e["model"] or None
    if weights and Path(weights).suffix.lower() == ".onnx":
        raise ConfigError("export.model must be LRCFuse PyTorch weights (.pt); the ONNX model is made from them")
    model = load_model(weights)
    stem = "lrcfuse_rt" if weights == "rt" else "lrcfuse"
    check_dir = Path(e["check_data"]) if e["check_data"] else None
    if check_dir and not (check_dir / "ir").is_dir():
        print(f"note: parity data {check_dir} not found; comparing on synthetic frames only", file=sys.stderr)
        check_dir = None
    reference = TorchBackend(model, "cpu")

    if e["format"] == "onnx":
        out = Path(e["out"] or f"runs/export/{stem}.onnx")
        started = time.perf_counter()
        export_onnx(model, out, e["opset"])
        ops = onnx_operators(out)
        print(
            f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, opset {e['opset']}, inputs ir/vi 1x1xHxW dynamic, "
            f"output fused) in {time.perf_counter() - started:.1f} s; onnx.checker: ok"
        )
        print("operators: " + ", ".join(f"{k} {v}" for k, v in ops.items()))
        rows = check_parity(OnnxRuntimeBackend(out, "cpu"), reference, check_dir, e["check_pairs"])
        worst = _print_parity(rows, "ONNX Runtime")
        if worst > e["tolerance"]:
            print(
                f"error: ONNX output differs from PyTorch by {worst:.2e} > tolerance {e['tolerance']}", file=sys.stderr
            )
            return 1
        return 0

    require_tensorrt()  # no GPU or no TensorRT: the CLI reports it as a usage error (exit 2)
    cache_dir = e["cache_dir"] or None
    onnx_path = cached_onnx(weights, cache_dir, e["opset"], log=print)
    engine = cached_engine(
        onnx_path, cache_dir, fp16=e["fp16"], shapes=shapes, device=e["device"], workspace_mib=e["workspace"], log=print
    )
    out = Path(e["out"] or f"runs/export/{stem}.engine")
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(engine, out)
    print(f"wrote {out} (a copy of the cached engine {engine})")
    rows = check_parity(TensorRTBackend(out, e["device"]), reference, check_dir, e["check_pairs"])
    worst = _print_parity(rows, f"TensorRT {'FP16' if e['fp16'] else 'FP32'}")
    if not e["fp16"] and worst > e["tolerance"]:
        print(f"error: FP32 engine differs from PyTorch by {worst:.2e} > tolerance {e['tolerance']}", file=sys.stderr)
        return 1
    return 0
