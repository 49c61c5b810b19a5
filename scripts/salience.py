"""How bright hot targets come out: the salience of each method's fused image on chosen pairs.

    .venv/bin/python scripts/salience.py                                  # the four pairs of issue 11
    .venv/bin/python scripts/salience.py --models old=runs/old.pt,new=lrcfuse_model/weights/lrcfuse_default.pt

Salience of an image X for a pair: T = the pixels at or above the 98th percentile of the infrared
image, B = the rest; salience = mean(X[T]) - median(X[B]) on 0..255 grey. A fused image that keeps hot
targets as bright as the infrared shows them, without lifting the background (haze), scores near the
infrared's own value. Printed as a Markdown table: infrared, pixel max, then each model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from lrcfuse_model.images.preprocess import read_image
from lrcfuse_model.inference.fuser import Fuser
from lrcfuse_model.nn.checkpoint import load_model

PAIRS = ["tno42/01.png", "tno42/05.png", "msrs_test/00036N.png", "roadscene50_cddfuse/FLIR_04269.jpg"]


def grey(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L"), dtype=np.float64)


def salience(x: np.ndarray, ir: np.ndarray) -> float:
    """mean of x over the infrared's hottest 2 % minus the median of x elsewhere (0..255 grey)."""
    hot = ir >= np.percentile(ir, 98)
    return float(x[hot].mean() - np.median(x[~hot]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default="../shared/data")
    ap.add_argument("--pairs", default=",".join(PAIRS), help="DATASET/NAME, comma-separated")
    ap.add_argument("--models", default="default=default,rt=rt", help="LABEL=MODEL (a shipped name or a weights file)")
    args = ap.parse_args()
    models = dict(item.split("=", 1) for item in args.models.split(","))
    fusers = {label: Fuser(load_model(path)) for label, path in models.items()}
    print("| pair | IR | pixel max | " + " | ".join(fusers) + " |")
    print("|---" * (3 + len(fusers)) + "|")
    for pair in args.pairs.split(","):
        dataset, name = pair.split("/")
        root = Path(args.data_root) / dataset
        ir, vi = read_image(root / "ir" / name), read_image(root / "vi" / name)
        ir_grey, vi_grey = grey(ir), grey(vi)
        values = [salience(ir_grey, ir_grey), salience(np.maximum(ir_grey, vi_grey), ir_grey)]
        values += [salience(grey(fuser(ir, vi)), ir_grey) for fuser in fusers.values()]
        print(f"| {dataset}/{Path(name).stem} | " + " | ".join(f"{v:.1f}" for v in values) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
