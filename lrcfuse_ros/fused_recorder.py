"""Records the fusion node's output: fused frames as PNG files plus a JSON summary of what arrived.

``fused_recorder --out runs/fused --count 20 --timeout 60`` subscribes to ``fused/image`` (and the
node's ``diagnostics``), writes ``<sec>_<nanosec>.png`` per frame (every Nth with ``--save-every N``;
PNG encoding costs more CPU than fusing with LRCFuse-RT, so it runs in a thread of its own at a low
compression level: a frame being written never delays the receive time, and so the latency, of the
next ones) and, when it stops (count reached,
``--timeout``, ``--idle`` seconds without a frame after the first, Ctrl-C or SIGTERM), prints and
writes ``summary.json``: count, sizes, encodings, frame ids, stamps, receive rate, latency (receive
time - header stamp; per frame too) and the node's last diagnostics values.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from lrcfuse_model.streams.image_msg import image_msg_to_array, stamp_to_seconds


def _ms_stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.asarray(values) * 1000.0
    return {
        "mean": round(float(arr.mean()), 1),
        "p50": round(float(np.median(arr)), 1),
        "p90": round(float(np.percentile(arr, 90)), 1),
        "max": round(float(arr.max()), 1),
    }


class FusedLog:
    """What arrived on the fused topic (thread-safe; filled by the subscription callback)."""

    def __init__(self, out: Path | None, save_every: int = 1) -> None:
        self.out = out
        self.save_every = max(1, save_every)
        self.lock = threading.Lock()
        self.frames: list[dict[str, Any]] = []
        self.receive_times: list[float] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.diagnostics: dict[str, str] = {}
        # the node's diagnostics over time (the last 600 messages), with seconds since the first frame
        self.diagnostics_log: deque[dict[str, str]] = deque(maxlen=600)
        self.first_receive: float | None = None
        self.last_receive: float | None = None
        # PNG writing: one thread, a bounded queue (a full one makes add wait, as writing in place did)
        self._to_save: queue.Queue[tuple[np.ndarray, Path, float]] = queue.Queue(maxsize=16)
        self._saver: threading.Thread | None = None

    def _save_loop(self) -> None:
        while True:
            pixels, path, stamp = self._to_save.get()
            try:
                PILImage.fromarray(pixels).save(path, compress_level=1)
            except Exception as exc:  # record and go on, as for a frame that cannot be converted
                with self.lock:
                    self.errors.append(f"stamp {stamp:.6f}: {exc}")
            finally:
                self._to_save.task_done()

    def _save(self, pixels: np.ndarray, path: Path, stamp: float) -> None:
        if self._saver is None:
            self._saver = threading.Thread(target=self._save_loop, name="png-writer", daemon=True)
            self._saver.start()
        self._to_save.put((pixels, path, stamp))

    def flush(self) -> None:
        """Wait until every frame handed to the PNG writer is written."""
        if self._saver is not None:
            self._to_save.join()

    def add(self, msg: Any, now_ros: float) -> None:
        received = time.monotonic()
        stamp = stamp_to_seconds(msg.header.stamp)
        record = {
            "stamp": stamp,
            "frame_id": msg.header.frame_id,
            "width": int(msg.width),
            "height": int(msg.height),
            "encoding": msg.encoding,
        }
        if self.out is not None and len(self.frames) % self.save_every == 0:
            try:
                pixels = image_msg_to_array(msg, ("mono8", "bgr8", "rgb8"), name="fused image")
                name = f"{msg.header.stamp.sec}_{msg.header.stamp.nanosec:09d}.png"
                self._save(pixels, self.out / name, stamp)
                record["file"] = name
            except Exception as exc:  # record and go on: a bad frame is part of what the summary reports
                with self.lock:
                    self.errors.append(f"stamp {stamp:.6f}: {exc}")
        with self.lock:
            self.frames.append(record)
            self.latencies.append(now_ros - stamp)
            self.receive_times.append(received)
            self.first_receive = self.first_receive or received
            self.last_receive = received

    def summary(self) -> dict[str, Any]:
        """What arrived (after the PNG writer has written every frame handed to it)."""
        self.flush()
        with self.lock:
            n = len(self.frames)
            span = (self.receive_times[-1] - self.receive_times[0]) if n > 1 else 0.0
            first = self.receive_times[0] if n else 0.0
            return {
                "count": n,
                "sizes": sorted({f"{f['width']}x{f['height']}" for f in self.frames}),
                "encodings": sorted({f["encoding"] for f in self.frames}),
                "frame_ids": sorted({f["frame_id"] for f in self.frames}),
                "stamps": [f["stamp"] for f in self.frames],
                "rate_hz": round((n - 1) / span, 3) if span > 0 else None,
                "latency_ms": _ms_stats(self.latencies),
                # per frame, in the order received: seconds since the first frame, and stamp -> receive
                "receive_s": [round(t - first, 6) for t in self.receive_times],
                "latencies_ms": [round(v * 1000.0, 3) for v in self.latencies],
                "errors": list(self.errors),
                "node_diagnostics": dict(self.diagnostics),
                "node_diagnostics_log": list(self.diagnostics_log),
                "out": str(self.out) if self.out else None,
            }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fused_recorder", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/fused"), help="folder for the PNG files and summary.json")
    p.add_argument("--no-images", action="store_true", help="only the summary, no PNG files")
    p.add_argument("--save-every", type=int, default=1, help="write every Nth frame as PNG [1 = all]")
    p.add_argument("--topic", default="fused/image")
    p.add_argument("--diagnostics-topic", default="diagnostics")
    p.add_argument("--count", type=int, default=0, help="stop after N frames (0 = no limit)")
    p.add_argument("--timeout", type=float, default=0.0, help="stop after this many seconds (0 = no limit)")
    p.add_argument("--idle", type=float, default=0.0, help="stop when no frame came for this long after the first")
    p.add_argument("--reliability", choices=("best_effort", "reliable"), default="reliable")
    p.add_argument("--summary", type=Path, default=None, help="summary file (default: OUT/summary.json)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``fused_recorder``; exit status 1 when no frame arrived."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.utilities import remove_ros_args
    from sensor_msgs.msg import Image

    from .qos import image_qos

    raw = list(sys.argv if argv is None else [sys.argv[0], *argv])
    args = build_parser().parse_args(remove_ros_args(raw)[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    log_ = FusedLog(None if args.no_images else args.out, args.save_every)

    rclpy.init(args=raw)
    node = Node("lrcfuse_fused_recorder")

    def on_fused(msg: Image) -> None:
        log_.add(msg, node.get_clock().now().nanoseconds * 1e-9)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": fusion"):
                log_.diagnostics = {kv.key: kv.value for kv in status.values}
                since = time.monotonic() - log_.first_receive if log_.first_receive is not None else None
                log_.diagnostics_log.append(log_.diagnostics | {"_receive_s": "" if since is None else f"{since:.3f}"})

    node.create_subscription(Image, args.topic, on_fused, image_qos(args.reliability, 10))
    node.create_subscription(DiagnosticArray, args.diagnostics_topic, on_diagnostics, 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    started = time.monotonic()
    node.get_logger().info(f"recording '{node.resolve_topic_name(args.topic)}' into {args.out}")
    try:
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
            now = time.monotonic()
            if args.count and len(log_.frames) >= args.count:
                break
            if args.timeout and now - started >= args.timeout:
                break
            if args.idle and log_.last_receive is not None and now - log_.last_receive >= args.idle:
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # one more short spin picks up a diagnostics message that is already on its way
        end = time.monotonic() + 0.2
        while rclpy.ok() and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    summary = log_.summary()
    path = args.summary or args.out / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
    lat = summary["latency_ms"] or {}
    print(
        f"[fused_recorder] {summary['count']} fused frames {summary['sizes']} {summary['encodings']}, "
        f"{summary['rate_hz']} Hz received, latency stamp->receive ms mean {lat.get('mean')} p50 {lat.get('p50')} "
        f"max {lat.get('max')}; summary: {path}"
    )
    return 0 if summary["count"] else 1


if __name__ == "__main__":
    sys.exit(main())
