"""Which simple images does a loss recipe rank best? (docs/training.md)

Scores the visible image, the infrared image, their pixel average, their pixel max and the shipped
models' outputs under each loss config, on the same batches of training patches. A loss whose best
simple image is the average trains towards haze; one whose best is the max keeps hot targets bright.

    python scripts/loss_ranking.py --batches 6 [--configs default rt] [--feature-weights FILE]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lrcfuse_model.config import resolve
from lrcfuse_model.nn.checkpoint import load_pretrained
from lrcfuse_model.nn.loss import FusionLoss
from lrcfuse_model.training.data import PatchSampler, collect_pairs

CONFIGS = {"default": None, "rt": "lrcfuse_model/cfg/rt.yaml", "paper-vgg16": "lrcfuse_model/cfg/loss_vgg16_paper.yaml"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["../shared/data/roadscene221", "../shared/data/msrs_train"])
    parser.add_argument("--exclude", nargs="*", default=["../shared/data/roadscene50_cddfuse", "runs/val22"])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--configs", nargs="+", default=["default", "rt"], choices=sorted(CONFIGS))
    parser.add_argument("--feature-weights", default="../shared/data/weights/yolov5n_coco_state_dict.pt")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs, _ = collect_pairs(args.data, [e for e in args.exclude if Path(e).is_dir()])
    sampler = PatchSampler(pairs, resolve()["data"], 128)
    batches = [sampler.batch(10_000 + i, 8, seed=123) for i in range(args.batches)]
    models = {"shipped default": load_pretrained("default"), "shipped rt": load_pretrained("rt")}
    print(f"{len(batches)} batches of 8 training patches (128x128); mean weighted loss, lower is better\n")
    print("| image | " + " | ".join(args.configs) + " |")
    print("|---|" + "---|" * len(args.configs))
    losses = {}
    for name in args.configs:
        cfg = resolve(CONFIGS[name])["loss"]
        if cfg["feature_net"] != "none" and not cfg["feature_weights"]:
            cfg["feature_weights"] = args.feature_weights
        losses[name] = FusionLoss(cfg)
    rows: dict[str, list[float]] = {}
    with torch.no_grad():
        for ir, vi in batches:
            images = {"visible": vi, "infrared": ir, "pixel average": (ir + vi) / 2, "pixel max": torch.maximum(ir, vi)}
            images.update({k: m(ir, vi).clamp(0, 1) for k, m in models.items()})
            for key, img in images.items():
                rows.setdefault(key, [0.0] * len(args.configs))
                for j, name in enumerate(args.configs):
                    rows[key][j] += float(losses[name](img, ir, vi)[0]) / len(batches)
    for key, values in rows.items():
        print(f"| {key} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
