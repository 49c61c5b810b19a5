"""The second protocol of the fusion literature: retrain the detector per input (``lrcfuse detect-eval
--export-yolo DIR``). Writes one YOLO dataset per input, the same seeded 8:1:1 split for every input; training and
testing them needs ultralytics and a GPU."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..images.pairing import Pair, dataset_pairs
from ..images.preprocess import describe_error, read_image
from ..reporting import write_csv
from .inputs import ALL_INPUTS, find_fused_image, make_input, parse_inputs
from .labels import LabelledDataset, dataset_classes, read_yolo_labels, resolve_labelled_datasets
from .report import FAILURE_FIELDS

__all__ = ["export_yolo_datasets"]


def export_yolo_datasets(
    datasets: str | Iterable[str],
    inputs: str | Iterable[str],
    out: str | Path,
    *,
    labels: str = "fusion",
    weights: str | Path = "",
    device: str = "cpu",
    data_cfg: Mapping[str, Any] | None = None,
    fuser: Callable[..., np.ndarray] | None = None,
    seed: int = 0,
    limit: int = 0,
    progress: bool = True,
) -> list[Path]:
    """Write ``out/<input>/{images,labels}/{train,val,test}/`` (the same seeded 8:1:1 split for every input) and
    ``out/<input>/data.yaml`` for ultralytics; return the ``data.yaml`` paths. Labels are copied unchanged; a pair
    that fails (no label file, unreadable image, failed fusion) is left out of every input and listed in
    ``out/failures.csv``.
    Train one detector per input with ``yolo detect train data=out/<input>/data.yaml model=yolov8n.pt`` and compare
    ``yolo detect val ... split=test``: the second protocol of the fusion literature (needs ultralytics and a GPU)."""
    import shutil

    import yaml
    from tqdm import tqdm

    dataset_list = resolve_labelled_datasets(datasets, labels)
    input_list = parse_inputs(inputs)
    if any(i.kind == "ours" for i in input_list) and fuser is None:
        from ..inference.fuser import Fuser
        from ..nn.checkpoint import load_model

        fuser = Fuser(load_model(weights or None, device), data_cfg, device)
    pairs: list[tuple[LabelledDataset, Pair]] = []
    for d in dataset_list:
        found, _ = dataset_pairs(d.root)
        pairs += [(d, p) for p in (found[:limit] if limit > 0 else found)]
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_train, n_val = int(round(0.8 * len(pairs))), int(round(0.1 * len(pairs)))
    split = {
        int(i): ("train" if k < n_train else "val" if k < n_train + n_val else "test") for k, i in enumerate(order)
    }
    names = dataset_classes(dataset_list, [])
    if not names:  # no classes.txt: name the ids found in the labels
        ids = {
            int(float(line.split()[0]))
            for d, pair in pairs
            if (d.labels_dir / f"{pair.name}.txt").is_file()
            for line in (d.labels_dir / f"{pair.name}.txt").read_text(encoding="utf-8").splitlines()
            if line.strip()
        }
        names = {i: f"class{i}" for i in range(max(ids) + 1)} if ids else {0: "class0"}
    out = Path(out)
    written = []
    for inp in input_list:
        root = out / inp.name
        for sub in ("images", "labels"):
            for part in ("train", "val", "test"):
                (root / sub / part).mkdir(parents=True, exist_ok=True)
        yaml_path = root / "data.yaml"
        yaml_path.write_text(
            yaml.safe_dump(
                {
                    "path": str(root.resolve()),
                    "train": "images/train",
                    "val": "images/val",
                    "test": "images/test",
                    "names": {int(c): n for c, n in sorted(names.items())},
                },
                sort_keys=False,
            ),
            encoding="utf-8",
        )
        written.append(yaml_path)
    failures: list[dict[str, str]] = []
    for k, (d, pair) in enumerate(tqdm(pairs, desc="export", unit="pair", disable=not progress)):
        label = d.labels_dir / f"{pair.name}.txt"
        try:  # every input of a pair, or none of them: the per-input datasets hold the same images
            read_yolo_labels(label, 1, 1)
            ir, vi = read_image(pair.ir), read_image(pair.vi)
            images = {}
            for inp in input_list:
                folder_image = None
                if inp.kind == "folder":
                    folder = inp.method.folder_for(d.name, d.root.parent)  # type: ignore[union-attr]
                    folder_image = find_fused_image(folder, pair.name) if folder.is_dir() else None
                images[inp.name] = make_input(
                    inp,
                    ir,
                    vi,
                    fuser=fuser,
                    data_cfg=data_cfg,
                    names=(str(pair.ir), str(pair.vi)),
                    folder_image=folder_image,
                )
        except Exception as exc:  # recorded, and the other pairs are exported
            failures.append({"dataset": d.name, "input": ALL_INPUTS, "image": pair.name, "error": describe_error(exc)})
            tqdm.write(f"SKIPPED {d.name} {pair.name}: {failures[-1]['error']}", file=sys.stderr)
            continue
        stem = f"{d.name}_{pair.name}"
        for name, image in images.items():
            root = out / name
            Image.fromarray(image).save(root / "images" / split[k] / f"{stem}.png")
            shutil.copyfile(label, root / "labels" / split[k] / f"{stem}.txt")
    write_csv(out / "failures.csv", FAILURE_FIELDS, failures)
    return written
