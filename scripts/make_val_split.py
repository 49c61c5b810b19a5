"""Make the validation split the training recipes are chosen on: runs/val22/{ir,vi} (symlinks).

22 pairs carved from the TRAINING data, never from a test set: every 8th of the 171 RoadScene
training pairs (roadscene221 minus roadscene50_cddfuse), the first 20 of them by name, plus two
MSRS training pairs (one night, one day). Training runs pass ``--exclude runs/val22`` so these pairs
stay unseen; ``lrcfuse eval --datasets runs/val22`` scores a recipe on them.

    python scripts/make_val_split.py [--data-root ../shared/data] [--out runs/val22]
"""

from __future__ import annotations

import argparse
from pathlib import Path

MSRS_VAL = ("00010N", "00556D")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data")
    parser.add_argument("--out", default="runs/val22")
    args = parser.parse_args()
    root, out = Path(args.data_root).resolve(), Path(args.out)
    test_names = {p.stem for p in (root / "roadscene50_cddfuse" / "ir").iterdir()}
    train = sorted(p for p in (root / "roadscene221" / "ir").iterdir() if p.stem not in test_names)
    chosen = [p.name for p in train[::8][:20]]
    sources = [("roadscene221", name) for name in chosen]
    sources += [("msrs_train", f"{stem}.png") for stem in MSRS_VAL]
    for side in ("ir", "vi"):
        (out / side).mkdir(parents=True, exist_ok=True)
        for dataset, name in sources:
            link = out / side / name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(root / dataset / side / name)
    print(f"{len(sources)} validation pairs in {out}: {', '.join(Path(n).stem for _, n in sources)}")


if __name__ == "__main__":
    main()
