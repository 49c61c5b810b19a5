"""A side-by-side grid (infrared | visible | pixel average | one column per model) of a few pairs, as a PNG.

    python scripts/sample_grid.py --out docs/sample_grid.png [--models default,rt] PAIR_ROOT:NAME ...

``--models``: shipped model names (``default``, ``rt``) or weights files, comma-separated.
Each PAIR_ROOT:NAME names ``PAIR_ROOT/ir/NAME`` and ``PAIR_ROOT/vi/NAME``; with none given, the
bundled samples are used.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lrcfuse_model.images.preprocess import read_image
from lrcfuse_model.inference.fuser import Fuser
from lrcfuse_model.nn.checkpoint import load_model

TILE = (400, 300)


def tile(img: np.ndarray, label: str) -> np.ndarray:
    im = Image.fromarray(img).convert("RGB").resize(TILE, Image.BILINEAR)
    draw = ImageDraw.Draw(im)
    draw.rectangle([0, 0, 8 + 7 * len(label), 16], fill=(0, 0, 0))
    draw.text((4, 2), label, fill=(255, 255, 0))
    return np.asarray(im)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="*")
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default="default,rt")
    args = ap.parse_args()
    pairs = args.pairs or [f"samples:{p.name}" for p in sorted(Path("samples/ir").iterdir())]
    labels = {"default": "LRCFuse", "rt": "LRCFuse-RT"}
    fusers = {labels.get(m, Path(m).stem): Fuser(load_model(m)) for m in args.models.split(",") if m}
    rows = []
    for spec in pairs:
        root, name = spec.split(":", 1)
        ir, vi = read_image(Path(root) / "ir" / name), read_image(Path(root) / "vi" / name)
        ir_rgb = np.asarray(Image.fromarray(ir).convert("RGB"), np.float32)
        vi_rgb = np.asarray(Image.fromarray(vi).convert("RGB"), np.float32)
        avg = np.round((ir_rgb + vi_rgb) / 2).astype(np.uint8)
        tiles = [tile(ir, f"infrared {name}"), tile(vi, "visible"), tile(avg, "average")]
        tiles += [tile(fuser(ir, vi), label) for label, fuser in fusers.items()]
        rows.append(np.concatenate(tiles, 1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
