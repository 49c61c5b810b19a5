"""What ``lrcfuse detect-eval`` writes in ``--out``: ``table.md`` and ``table.csv`` (mAP@0.5 and mAP@0.5:0.95 in %
per class and overall, best per column bold), ``records.json`` (``[{input, class, map50, map50_95}]``, class ``all``
for the overall row; also to ``--json PATH``), ``pr_curves.png``, ``grid.jpg`` (rows = images, columns = inputs,
detections drawn) and ``failures.csv``. The file formats and figures come from :mod:`lrcfuse_model.reporting`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..reporting import markdown_table, percent, pr_curve_panels, write_csv, write_json
from .coco import RECALL_POINTS, ClassAP
from .detectors import Detections
from .drawing import draw_detections, label_font

__all__ = [
    "FAILURE_FIELDS",
    "TABLE_FIELDS",
    "make_detection_grid",
    "plot_pr_curves",
    "table_markdown",
    "write_report",
]

TABLE_FIELDS = ["input", "class", "images", "objects", "map50", "map50_95"]
FAILURE_FIELDS = ["dataset", "input", "image", "error"]


def _round(v: float) -> float | None:
    return round(float(v), 6) if v is not None and math.isfinite(v) else None


def table_markdown(
    results: Mapping[str, Sequence[ClassAP]],
    counts: Mapping[str, int],
    n_images: Mapping[str, int],
    title: str = "",
) -> str:
    """Markdown: one row per input, mAP@0.5 and mAP@0.5:0.95 (in %) per class and overall; best per column bold."""
    classes = [a.name for a in next(iter(results.values()), [])]
    lines = [f"### {title}", ""] if title else []
    if not classes:
        return "\n".join(lines + ["(no class with ground truth: nothing to score)", ""])
    heads = ["input", "images"] + [f"{c} {m}" for c in classes for m in ("mAP50", "mAP50-95")]
    best = {}
    for j, c in enumerate(classes):
        for m in ("map50", "map50_95"):
            vals = [getattr(r[j], m) for r in results.values() if len(r) > j and math.isfinite(getattr(r[j], m))]
            best[(c, m)] = max(vals) if vals else math.nan
    rows = []
    for name, aps in results.items():
        cells = [name, str(n_images.get(name, 0))]
        for a in aps:
            for m in ("map50", "map50_95"):
                v = getattr(a, m)
                cells.append(f"**{percent(v)}**" if v == best[(a.name, m)] and len(results) > 1 else percent(v))
        rows.append(cells)
    lines += markdown_table(heads, rows)
    objects = ", ".join(f"{c}: {counts.get(c, 0)}" for c in classes if c != "all")
    lines += [
        "",
        "AP in % from pycocotools COCOeval (bbox, all areas, 100 detections per image); "
        "`all` = mean over the classes. "
        f"Ground-truth objects: {objects}.",
        "",
    ]
    return "\n".join(lines)


def plot_pr_curves(results: Mapping[str, Sequence[ClassAP]], path: str | Path, title: str = "") -> Path:
    """PNG: one subplot per class (and ``all``), precision vs recall at IoU 0.5, one line per input."""
    return pr_curve_panels(results, RECALL_POINTS, path, title)


def make_detection_grid(
    rows: Sequence[Mapping[str, Any]], inputs: Sequence[str], path: str | Path, tile_width: int = 360
) -> Path | None:
    """JPEG grid: one row per entry (``name``, ``images``: ``{input: uint8 image}``, ``detections``:
    ``{input: Detections}``), one column per input, input names on top and pair names on the left. Boxes are drawn
    after the image is scaled to its tile, so labels stay readable. ``None`` without rows."""
    if not rows or not any(row["images"] for row in rows):
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    first = next(img for row in rows for img in row["images"].values())
    scale = tile_width / first.shape[1]
    tile_h = max(1, round(first.shape[0] * scale))
    font = label_font(15)
    head, side, gap = 24, 64, 4
    width = side + len(inputs) * (tile_width + gap)
    canvas = Image.new("RGB", (width, head + len(rows) * (tile_h + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(inputs):
        text_w = draw.textlength(name, font=font)
        draw.text((side + j * (tile_width + gap) + (tile_width - text_w) / 2, 4), name, fill=(0, 0, 0), font=font)
    for i, row in enumerate(rows):
        y = head + i * (tile_h + gap)
        draw.text((4, y + tile_h // 2 - 8), str(row["name"]), fill=(0, 0, 0), font=font)
        for j, name in enumerate(inputs):
            x = side + j * (tile_width + gap)
            img = row["images"].get(name)
            if img is None:
                draw.rectangle((x, y, x + tile_width - 1, y + tile_h - 1), fill=(235, 235, 235))
                draw.text((x + tile_width // 2 - 20, y + tile_h // 2 - 8), "failed", fill=(120, 120, 120), font=font)
                continue
            tile = np.asarray(Image.fromarray(img).resize((tile_width, tile_h), Image.LANCZOS))
            found = row["detections"][name]
            sx, sy = tile_width / img.shape[1], tile_h / img.shape[0]
            scaled = Detections(
                found.boxes * np.array([sx, sy, sx, sy], np.float32), found.scores, found.class_ids, found.names
            )
            canvas.paste(Image.fromarray(draw_detections(tile, scaled)), (x, y))
    canvas.save(path, quality=85)
    return path


def write_report(
    out: Path,
    results: Mapping[str, Sequence[ClassAP]],
    counts: Mapping[str, int],
    n_images: Mapping[str, int],
    failures: Sequence[Mapping[str, str]],
    grid_rows: Sequence[Mapping[str, Any]],
    inputs: Sequence[str],
    title: str,
    json_path: str | Path = "",
) -> tuple[list[dict[str, Any]], str, list[Path]]:
    """Write the tables, records, figures and failures of one experiment to ``out``; returns the records (one per
    input and class, ``all`` last), the Markdown table and the files written, in that order."""
    records = [
        {"input": name, "class": a.name, "map50": _round(a.map50), "map50_95": _round(a.map50_95)}
        for name, aps in results.items()
        for a in aps
    ]
    out.mkdir(parents=True, exist_ok=True)
    markdown = table_markdown(results, counts, n_images, title)
    files = [out / "table.md"]
    files[0].write_text(markdown, encoding="utf-8")
    table_rows = [
        {
            "input": name,
            "class": a.name,
            "images": n_images[name],
            "objects": counts.get(a.name, 0),
            "map50": _round(a.map50),
            "map50_95": _round(a.map50_95),
        }
        for name, aps in results.items()
        for a in aps
    ]
    files.append(write_csv(out / "table.csv", TABLE_FIELDS, table_rows))
    files.append(write_json(out / "records.json", records))
    if json_path:
        write_json(json_path, records)
        if Path(json_path).resolve() != files[-1].resolve():
            files.append(Path(json_path))
    if results:
        files.append(plot_pr_curves(results, out / "pr_curves.png", title))
    grid = make_detection_grid(grid_rows, inputs, out / "grid.jpg")
    if grid:
        files.append(grid)
    files.append(write_csv(out / "failures.csv", FAILURE_FIELDS, failures))
    return records, markdown, files
