"""The one pairing policy for image folders: a thermal and a visible file with the same stem.

``ir/FLIR_00211.jpg`` pairs with ``vi/FLIR_00211.jpg`` (or ``vi/FLIR_00211.png``: extensions may
differ). A file without a partner is reported, never silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


class Unpaired(str):
    """A file without a partner: the problem message (a ``str``) with the pair ``name`` it lacks."""

    name: str

    def __new__(cls, message: str, name: str) -> Unpaired:
        obj = super().__new__(cls, message)
        obj.name = name
        return obj


@dataclass(frozen=True)
class Pair:
    name: str  # the shared stem
    ir: Path
    vi: Path


def _images(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            if p.stem in found:
                raise ValueError(f"{folder}: two images share the name {p.stem!r} ({found[p.stem].name}, {p.name})")
            found[p.stem] = p
    return found


def find_pairs(ir_dir: str | Path, vi_dir: str | Path) -> tuple[list[Pair], list[Unpaired]]:
    """Pairs present in both folders (sorted by name), and one problem line per unpaired file."""
    ir_dir, vi_dir = Path(ir_dir), Path(vi_dir)
    for d, what in ((ir_dir, "thermal (--ir)"), (vi_dir, "visible (--vi)")):
        if not d.is_dir():
            raise FileNotFoundError(f"{what} folder {d} does not exist")
    irs, vis = _images(ir_dir), _images(vi_dir)
    pairs = [Pair(n, irs[n], vis[n]) for n in sorted(set(irs) & set(vis))]
    problems = [
        Unpaired(f"{irs[n]}: no visible partner named {n}.* in {vi_dir}", n) for n in sorted(set(irs) - set(vis))
    ]
    problems += [
        Unpaired(f"{vis[n]}: no thermal partner named {n}.* in {ir_dir}", n) for n in sorted(set(vis) - set(irs))
    ]
    return pairs, problems


def dataset_pairs(root: str | Path) -> tuple[list[Pair], list[Unpaired]]:
    """Pairs of a dataset folder in the ``root/ir`` + ``root/vi`` layout."""
    root = Path(root)
    return find_pairs(root / "ir", root / "vi")
