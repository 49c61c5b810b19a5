"""Speed of smaller LRCFuse configurations on ONNX Runtime (random weights: speed does not depend on them).

What a CPU-real-time configuration would cost: for each configuration, parameters, MACs per frame
and ONNX Runtime milliseconds per frame at the given sizes. Quality needs training each
configuration (`lrcfuse train --code-channels ...`) and `lrcfuse eval`; this script measures speed only.

    .venv/bin/python benchmarks/lite_configs.py --sizes 640x512 320x256 --runs 5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lrcfuse_model import LRCFuse, count_parameters
from lrcfuse_model.backends import OnnxRuntimeBackend
from lrcfuse_model.bench import count_macs, time_backend
from lrcfuse_model.export import export_onnx, parse_size

CONFIGS = {
    "default": {},
    "half": {"code_channels": 32, "feature_channels": 16, "decoder_channels": [32, 16]},
    "lite": {
        "code_channels": 16,
        "feature_channels": 8,
        "decoder_channels": [16, 8],
        "llrr_blocks": 3,
        "cfpm_stages": 2,
    },
    "tiny": {"code_channels": 8, "feature_channels": 8, "decoder_channels": [8, 8], "llrr_blocks": 2, "cfpm_stages": 2},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["640x512", "320x256"], help="WIDTHxHEIGHT")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes]
    print(f"{'config':<8} {'params':>8} " + " ".join(f"{f'{w}x{h} GMAC':>13} {'ms':>7} {'fps':>6}" for h, w in sizes))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            torch.manual_seed(0)
            model = LRCFuse(**CONFIGS[name]).eval()
            backend = OnnxRuntimeBackend(export_onnx(model, Path(tmp) / f"{name}.onnx"))
            cells = []
            for h, w in sizes:
                t = time_backend(backend, (h, w), args.runs, warmup=1)
                cells.append(f"{count_macs(model, (h, w)) / 1e9:>13.2f} {t['median_ms']:>7.0f} {t['fps']:>6.1f}")
            print(f"{name:<8} {count_parameters(model):>8,} " + " ".join(cells))


if __name__ == "__main__":
    main()
