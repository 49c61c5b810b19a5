"""The text report of ``lrcfuse bench`` (:func:`format_report`): the table, the ratios as sentences, model facts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _ms(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.2f}"


def _times(x: float) -> str:
    return f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def ratio_sentence(r: Mapping[str, Any]) -> str:
    """One ratio of :func:`lrcfuse_model.inference.bench.round_ratios` as a sentence."""
    if r["kind"] == "model":
        who, where = r["model"], f"on {r['backend']}"
    else:
        who, where = r["backend"], f"for {r['model']}"
    x = r["speedup"]
    how = f"{_times(x)} faster than" if x >= 1 else f"{_times(1 / x)} slower than"
    size = f"{r['width']}x{r['height']}"
    return f"{who} is {how} {r['baseline']} {where} at {size} (median of {r['rounds']} per-round ratios)"


def format_report(result: Mapping[str, Any]) -> str:
    """The bench result as readable text tables."""
    lines = []
    mw = max([5] + [len(str(r["model"])) for r in result["records"]])
    header = (
        f"{'model':<{mw}} {'backend':<12} {'size':>10} {'median ms':>10} {'p90 ms':>9} {'fps':>8} "
        f"{'peak MiB':>9} {'+frame MiB':>10} {'MiB/MP':>7} {'threads':>7}"
    )
    lines += [header, "-" * len(header)]
    for r in result["records"]:
        lines.append(
            f"{r['model']:<{mw}} {r['backend']:<12} {r['width']:>5}x{r['height']:<4} {r['median_ms']:>10.1f} "
            f"{r['p90_ms']:>9.1f} {r['fps']:>8.2f} {r['peak_rss_mb']:>9.0f} {r['frame_mem_mb']:>10.0f} "
            f"{r.get('mb_per_mpixel', 0.0):>7.0f} {r['threads']:>7}"
        )
    for s in result["skipped"]:
        lines.append(f"{s['model']:<{mw}} {s['backend']:<12} not run: {s['reason']}")
    tiled = sorted({r.get("tile", "off") for r in result["records"]} - {"off"})
    lines.append(
        "MiB/MP: peak memory a frame adds on top of the loaded backend, per megapixel"
        + (f" (tiled inference, tile {', '.join(tiled)})" if tiled else " (whole frames; --tile auto to tile)")
    )
    lines += [ratio_sentence(r) for r in result["ratios"]]
    for m in result["models"]:
        if "parameters" not in m:
            lines.append(f"model {m['model']}: {m['weights']} (a runtime file: no parameter or MAC count)")
            continue
        macs = ", ".join(f"{k} {v / 1e9:.3g} G" for k, v in m["macs_per_frame"].items())
        facts = f"{m['parameters']:,} parameters; MACs per frame: {macs}"
        lines.append(f"model {m['model']} ({m['architecture']}): {facts}")
    blocks = result["torch_blocks"]
    if blocks:
        lines.append("where the time goes on PyTorch (median ms, share of the forward pass):")
        for key in dict.fromkeys((b["model"], b["width"], b["height"]) for b in blocks):
            parts = [
                f"{b['block']} {_ms(b['median_ms'])} ({100 * b['share']:.0f}%)"
                for b in blocks
                if (b["model"], b["width"], b["height"]) == key
            ]
            lines.append(f"  {key[0]} {key[1]}x{key[2]}: " + ", ".join(parts))
    for row in result["malloc"]:
        lines.append(
            f"allocator, {row['model']} on {row['backend']} {row['width']}x{row['height']}: "
            f"glibc default {row['default_median_ms']:.1f} ms, tuned {row['tuned_median_ms']:.1f} ms "
            f"(default is {row['slowdown']:.2f}x slower, median of per-round ratios)"
        )
    mach = result["machine"]
    lines.append(
        f"machine: {mach['cpu_count']} CPUs ({mach['processor']}), torch {mach['torch']}, "
        f"onnxruntime {mach.get('onnxruntime', '-')}, openvino {mach.get('openvino', '-')}, "
        f"malloc tuned: {mach['malloc_tuned']}, "
        f"isolated processes: {mach['isolated_processes']}"
    )
    return "\n".join(lines)
