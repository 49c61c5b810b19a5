"""LRCFuse against the pixel average on a paired dataset, all ten metrics (the model card's table).

    python scripts/compare_tno.py --data ../shared/data/tno42 [--weights runs/ship/weights.pt] [--out runs/tno42]

Fuses every pair with the given weights (default: the shipped ones), writes the fused images to
--out, and prints a Markdown table of the ten metrics (mean over the pairs, +- std for EN and SD)
and the time per pair. Nabf: lower is better; every other metric: higher is better.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lrcfuse_model.fusion import Fuser, load_model
from lrcfuse_model.metrics import compute_all
from lrcfuse_model.pairing import dataset_pairs
from lrcfuse_model.preprocess import read_image, to_single_channel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", default="")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    fuser = Fuser(load_model(args.weights or None))
    pairs, problems = dataset_pairs(args.data)
    for p in problems:
        print("skipped:", p)
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, float]]] = {"LRCFuse (ours)": [], "pixel average": []}
    times = []
    for pair in pairs:
        ir, vi = read_image(pair.ir), read_image(pair.vi)
        t0 = time.perf_counter()
        fused = fuser(ir, vi)
        times.append(time.perf_counter() - t0)
        gray = fused if fused.ndim == 2 else np.asarray(Image.fromarray(fused).convert("L"))
        ir_g = np.asarray(Image.fromarray(to_single_channel(ir)).convert("L"))
        vi_g = np.asarray(Image.fromarray(to_single_channel(vi)).convert("L"))
        avg = np.round((ir_g.astype(np.float64) + vi_g) / 2).astype(np.uint8)
        rows["LRCFuse (ours)"].append(compute_all(gray, ir_g, vi_g))
        rows["pixel average"].append(compute_all(avg, ir_g, vi_g))
        if out:
            Image.fromarray(fused).save(out / f"{pair.name}.png")
    print(f"\n{args.data}: {len(pairs)} pairs, {np.mean(times):.3f} s per pair (median {np.median(times):.3f} s)\n")
    keys = list(rows["pixel average"][0])
    print("| method | " + " | ".join(keys) + " |\n|" + " --- |" * (len(keys) + 1))
    for name, vals in rows.items():
        cells = []
        for k in keys:
            a = np.array([v[k] for v in vals])
            cells.append(f"{a.mean():.3f} ± {a.std():.3f}" if k in ("EN", "SD") else f"{a.mean():.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
