"""A stand-in for a thermal + RGB camera rig: publishes the pairs of a folder (``ir/`` + ``vi/``) as two image topics.

``sample_publisher --dir samples --rate 2 --count 20 --size 640x512`` publishes thermal (mono8, or
mono16 scaled x257) on ``thermal/image_raw`` and RGB (bgr8) on ``rgb/image_raw``, cycling through the
pairs. Each stream gets its own stamp, a little before the send time with independent jitter
(``--jitter-ms``), as two free-running cameras would. Fault options (a thermal encoding the node
rejects, a thermal size that differs, a thermal stream that stops) reproduce field problems.

The rate is kept steadily, as a camera's: the messages are built once per distinct frame (only the
header changes per send), and a send that comes late is not followed by a burst to catch up (the
schedule moves on; such sends are counted as ``late``).

At the end it prints (and with ``--summary FILE`` writes) a JSON summary with every published stamp.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from lrcfuse_model.config import parse_size as parse_frame_size
from lrcfuse_model.images.pairing import find_pairs
from lrcfuse_model.images.preprocess import read_image
from lrcfuse_model.streams.image_msg import fill_image_msg

from .ros_env import package_path

THERMAL_OUT_ENCODINGS = ("mono8", "mono16", "16UC1", "bgr8", "rgb8")  # the last two: the node must reject them
RGB_OUT_ENCODINGS = ("bgr8", "rgb8", "mono8")


def parse_size(text: str) -> tuple[int, int]:
    """``"640x512"`` -> (width, height), PIL's order (:func:`lrcfuse_model.config.parse_size` gives H, W)."""
    try:
        height, width = parse_frame_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return width, height


def _resize(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (img.shape[1], img.shape[0]) == size:
        return img
    if img.dtype == np.uint16:
        f = PILImage.fromarray(img.astype(np.float32), mode="F").resize(size, PILImage.BILINEAR)
        return np.clip(np.asarray(f) + 0.5, 0, 65535).astype(np.uint16)
    return np.asarray(PILImage.fromarray(img).resize(size, PILImage.BILINEAR))


def thermal_frame(ir: np.ndarray, encoding: str, size: tuple[int, int] | None) -> np.ndarray:
    """A thermal image as the array to publish in ``encoding`` (8-bit sources become 16-bit by x257)."""
    gray = ir if ir.ndim == 2 else ir[:, :, 0]  # TNO stores thermal as R=G=B
    gray = _resize(gray, size)
    if encoding in ("mono16", "16UC1"):
        return gray if gray.dtype == np.uint16 else gray.astype(np.uint16) * 257
    if gray.dtype == np.uint16:
        gray = (gray // 257).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2) if encoding in ("bgr8", "rgb8") else gray


def rgb_frame(vi: np.ndarray, encoding: str, size: tuple[int, int] | None) -> np.ndarray:
    """A visible image as the array to publish (RGB order for colour encodings; fill_image_msg swaps for bgr8)."""
    vi = _resize(vi, size)
    if vi.dtype == np.uint16:
        vi = (vi // 257).astype(np.uint8)
    if encoding == "mono8":
        return vi if vi.ndim == 2 else np.asarray(PILImage.fromarray(vi).convert("L"))
    return vi if vi.ndim == 3 else np.repeat(vi[:, :, None], 3, axis=2)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sample_publisher", description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=None, help="folder with ir/ and vi/ (default: the bundled samples)")
    p.add_argument("--rate", type=float, default=2.0, help="pairs per second [2.0]")
    p.add_argument("--count", type=int, default=0, help="pairs to publish, cycling through the folder; 0 = each once")
    p.add_argument("--loop", action="store_true", help="publish until Ctrl-C")
    p.add_argument("--limit", type=int, default=0, help="use only the first N pairs of the folder (0 = all)")
    p.add_argument("--size", type=parse_size, default=None, help="resize both images to WIDTHxHEIGHT (e.g. 640x512)")
    p.add_argument("--thermal-encoding", choices=THERMAL_OUT_ENCODINGS, default="mono8")
    p.add_argument("--rgb-encoding", choices=RGB_OUT_ENCODINGS, default="bgr8")
    p.add_argument("--jitter-ms", type=float, default=10.0, help="stamp jitter per stream (stamp = send - U(0, j))")
    p.add_argument("--reliability", choices=("best_effort", "reliable"), default="best_effort")
    p.add_argument("--thermal-topic", default="thermal/image_raw")
    p.add_argument("--rgb-topic", default="rgb/image_raw")
    p.add_argument("--thermal-frame-id", default="thermal_camera")
    p.add_argument("--rgb-frame-id", default="rgb_camera")
    p.add_argument("--wait-subscribers", type=float, default=10.0, help="seconds to wait for subscribers on both")
    p.add_argument("--seed", type=int, default=0, help="random seed of the jitter")
    p.add_argument("--summary", type=Path, default=None, help="also write the JSON summary to this file")
    faults = p.add_argument_group("faults (to see how the node copes)")
    faults.add_argument("--thermal-size", type=parse_size, default=None, help="resize only the thermal image")
    faults.add_argument("--thermal-stop-after", type=int, default=0, help="stop the thermal stream after N frames")
    return p


def load_frames(args: argparse.Namespace, n_needed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, thermal array, rgb array) for the first pairs of ``--dir``, converted once up front."""
    if args.dir is None:
        args.dir = package_path("samples")
    pairs, problems = find_pairs(args.dir / "ir", args.dir / "vi")
    for problem in problems:
        print(f"[sample_publisher] skipping: {problem}", file=sys.stderr)
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        raise SystemExit(f"sample_publisher: no image pairs in {args.dir}/ir and {args.dir}/vi")
    pairs = pairs[: max(1, n_needed)]
    thermal_size = args.thermal_size or args.size
    return [
        (
            p.name,
            thermal_frame(read_image(p.ir), args.thermal_encoding, thermal_size),
            rgb_frame(read_image(p.vi), args.rgb_encoding, args.size),
        )
        for p in pairs
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``sample_publisher`` (ROS arguments after ``--ros-args`` go to rclpy)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.utilities import remove_ros_args
    from sensor_msgs.msg import Image

    from .qos import image_qos

    raw = list(sys.argv if argv is None else [sys.argv[0], *argv])
    args = build_parser().parse_args(remove_ros_args(raw)[1:])
    n_distinct = args.count if args.count and not args.loop else 0
    frames = load_frames(args, n_distinct or 10**9)
    total = 0 if args.loop else (args.count or len(frames))

    rclpy.init(args=raw)
    node = Node("lrcfuse_sample_publisher")
    log = node.get_logger()
    qos = image_qos(args.reliability, 5)
    pub_t = node.create_publisher(Image, args.thermal_topic, qos)
    pub_r = node.create_publisher(Image, args.rgb_topic, qos)
    rng = random.Random(args.seed)
    summary: dict[str, Any] = {
        "published": 0,
        "thermal_published": 0,
        "rgb_stamps": [],
        "thermal_stamps": [],
        "names": [],
        "rgb_size": [],
        "thermal_encoding": args.thermal_encoding,
        "rgb_encoding": args.rgb_encoding,
        "rgb_frame_id": args.rgb_frame_id,
    }
    try:
        deadline = time.monotonic() + args.wait_subscribers

        def unmatched() -> bool:
            return pub_t.get_subscription_count() == 0 or pub_r.get_subscription_count() == 0

        while time.monotonic() < deadline and unmatched():
            time.sleep(0.05)
        time.sleep(0.5)  # the subscribers' side of the match completes a little later
        if unmatched():
            log.warning(f"no subscriber after {args.wait_subscribers:.0f} s on both topics; publishing anyway")
        h, w = frames[0][2].shape[:2]
        summary["rgb_size"] = [w, h]
        log.info(
            f"publishing {'forever' if args.loop else total} pairs of {args.dir} at {args.rate} Hz, {w}x{h}, "
            f"thermal {args.thermal_encoding}, rgb {args.rgb_encoding}, {args.reliability}"
        )
        # One message per distinct frame, built once: a send only sets the header stamp.
        messages = [
            (
                name,
                _image_msg(Image, ir, args.thermal_encoding, 0, args.thermal_frame_id),
                _image_msg(Image, vi, args.rgb_encoding, 0, args.rgb_frame_id),
            )
            for name, ir, vi in frames
        ]
        frames.clear()  # the messages hold the pixels now
        period = 1.0 / args.rate if args.rate > 0 else 0.0
        jitter = args.jitter_ms * 1e6
        next_time = started = time.monotonic()
        i = late = 0
        while args.loop or i < total:
            name, thermal_msg, rgb_msg = messages[i % len(messages)]
            now_ns = node.get_clock().now().nanoseconds
            t_stamp = now_ns - int(rng.uniform(0, jitter))
            r_stamp = now_ns - int(rng.uniform(0, jitter))
            if not args.thermal_stop_after or i < args.thermal_stop_after:
                _set_stamp(thermal_msg, t_stamp)
                pub_t.publish(thermal_msg)
                summary["thermal_stamps"].append(t_stamp * 1e-9)
                summary["thermal_published"] += 1
            _set_stamp(rgb_msg, r_stamp)
            pub_r.publish(rgb_msg)
            summary["rgb_stamps"].append(r_stamp * 1e-9)
            summary["names"].append(name)
            summary["published"] += 1
            i += 1
            next_time += period
            now = time.monotonic()
            if now - next_time > period:  # a whole period late: move on instead of sending a burst
                late += 1
                next_time = now
            time.sleep(max(0.0, next_time - now))
        seconds = time.monotonic() - started
        summary["seconds"] = round(seconds, 3)
        summary["rate_hz"] = round(i / seconds, 3) if seconds > 0 else None
        summary["late"] = late
        time.sleep(0.5)  # let the last samples leave before the participant goes away
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    text = json.dumps(summary)
    if args.summary:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(text)
    rate = f" at {summary['rate_hz']} Hz ({summary['late']} sends late)" if summary.get("rate_hz") else ""
    print(
        f"[sample_publisher] published {summary['published']} RGB and {summary['thermal_published']} thermal frames"
        + rate
        + (f"; summary in {args.summary}" if args.summary else "")
    )
    return 0


def _set_stamp(msg: Any, stamp_ns: int) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)


def _image_msg(image_type: type, array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    msg = image_type()
    _set_stamp(msg, stamp_ns)
    msg.header.frame_id = frame_id
    return fill_image_msg(msg, array, encoding)


if __name__ == "__main__":
    sys.exit(main())
