"""``lrcfuse fuse-bag``: fuse the thermal + RGB image topics of a recorded bag into a new bag.

Reads rosbag2 (sqlite3 or MCAP; a bag folder or a single ``.db3`` / ``.mcap`` file) and ROS 1
``.bag`` files with ``rosbags`` (no ROS install needed), pairs the two image topics by header stamp
with the same :class:`~lrcfuse_model.streams.stamp_sync.ApproximateTimeSync` the ROS node uses, converts
with :mod:`lrcfuse_model.streams.image_msg` (``sensor_msgs/msg/Image``, or ``sensor_msgs/msg/CompressedImage``
on image_transport's ``<topic>/compressed`` topics: give that topic name), fuses with a
:class:`~lrcfuse_model.inference.fuser.Fuser` and writes
``sensor_msgs/msg/Image`` on the fused topic: the RGB message's header (stamp, frame_id), ``bgr8``
for a colour camera and ``mono8`` for a mono one (per stream, see :mod:`.fused_encoding`), logged at
the RGB message's log time. The output bag keeps
the input's storage format (a ROS 1 input gives MCAP). A pair that cannot be fused (bad encoding,
size mismatch...) and a message that cannot be read are recorded in the report and the run goes
on; messages left without a partner are counted by reason.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..images.preprocess import describe_error
from ..inference.fuser import Fuser
from ..reporting import write_json
from .fused_encoding import fused_encoding
from .image_msg import RGB_ENCODINGS, THERMAL_ENCODINGS, fill_image_msg, image_msg_to_array, stamp_to_seconds
from .stamp_sync import ApproximateTimeSync

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INPUT_TYPES = (IMAGE_TYPE, COMPRESSED_TYPE)


def absolute_topic(topic: str) -> str:
    """Topic names as rosbag2 records them: with one leading ``/``."""
    return "/" + topic.strip().lstrip("/")


def input_storage(path: Path) -> str:
    """``'sqlite3'`` or ``'mcap'`` for a rosbag2 input, ``'rosbag1'`` for a ROS 1 ``.bag``."""
    if path.is_dir():
        meta = path / "metadata.yaml"
        if not meta.is_file():
            raise ValueError(f"{path}: not a rosbag2 folder (no metadata.yaml)")
        info = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        storage = str(info.get("rosbag2_bagfile_information", {}).get("storage_identifier", ""))
        if storage not in ("sqlite3", "mcap"):
            raise ValueError(f"{path}: storage {storage!r} is not supported; expected sqlite3 or mcap")
        return storage
    by_suffix = {".db3": "sqlite3", ".mcap": "mcap", ".bag": "rosbag1"}
    if path.suffix not in by_suffix:
        raise ValueError(f"{path}: expected a rosbag2 folder, a .db3, .mcap or ROS 1 .bag file")
    return by_suffix[path.suffix]


class _Sized:
    """An iterable with a length, so that a progress bar knows the total."""

    def __init__(self, iterable: Iterable[Any], length: int) -> None:
        self.iterable, self.length = iterable, length

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable)

    def __len__(self) -> int:
        return self.length


def _image_connections(reader: Any, topic: str, role: str) -> list[Any]:
    conns = [c for c in reader.connections if absolute_topic(c.topic) == topic]
    if not conns:
        available = sorted({c.topic for c in reader.connections})
        raise ValueError(f"{role} topic {topic} is not in the bag; its topics are {available}")
    wrong = sorted({c.msgtype for c in conns if c.msgtype not in INPUT_TYPES})
    if wrong:
        raise ValueError(f"{role} topic {topic} carries {wrong}; expected {IMAGE_TYPE} or {COMPRESSED_TYPE}")
    return conns


def fuse_bag(
    input: str | Path,
    output: str | Path,
    fuser: Fuser,
    thermal_topic: str = "thermal/image_raw",
    rgb_topic: str = "rgb/image_raw",
    fused_topic: str = "fused/image",
    slop: float = 0.05,
    queue_size: int = 10,
    min_interval: float = 0.0,
    progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
    copy_inputs: bool = False,
) -> dict[str, Any]:
    """Fuse the image pairs of the bag ``input`` into the new bag ``output``; returns a report.

    ``copy_inputs`` also copies every message of the input bag (rosbag2 inputs) unchanged.
    ``progress`` wraps the message iterable (e.g. ``tqdm``; it has a length). The report holds the
    counts (messages, pairs, fused, failed, dropped by reason), every failure with its reason, and
    timings.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    input, output = Path(input), Path(output)
    if not input.exists():
        raise FileNotFoundError(f"input bag {input} does not exist")
    if output.exists():
        raise ValueError(f"output bag {output} exists already; bags are never overwritten, choose a new path")
    storage = input_storage(input)
    if copy_inputs and storage == "rosbag1":
        raise ValueError(f"{input}: copy_inputs needs a rosbag2 input (ROS 1 messages are not CDR)")
    thermal_topic, rgb_topic, fused_topic = map(absolute_topic, (thermal_topic, rgb_topic, fused_topic))
    out_types = get_typestore(Stores.LATEST)
    image_cls = out_types.types[IMAGE_TYPE]
    header_cls = out_types.types["std_msgs/msg/Header"]
    time_cls = out_types.types["builtin_interfaces/msg/Time"]

    report: dict[str, Any] = {
        "input": str(input),
        "output": str(output),
        "storage": "mcap" if storage == "rosbag1" else storage,
        "topics": {"thermal": thermal_topic, "rgb": rgb_topic, "fused": fused_topic},
        "messages": {"thermal": 0, "rgb": 0, "copied": 0},
        "fused": 0,
        "failed": [],
    }
    sync = ApproximateTimeSync(slop, queue_size, min_interval=min_interval)
    fuse_seconds: list[float] = []
    started = time.perf_counter()

    reader = AnyReader([input], default_typestore=out_types)
    try:
        reader.open()
    except Exception as exc:  # rosbags' AnyReaderError, a decode error of a damaged ROS 1 header, sqlite errors...
        raise ValueError(f"{input}: {_unreadable(storage, exc)}") from None
    with closing(reader):  # opened above, so that a bag that cannot be opened is told apart
        thermal_conns = _image_connections(reader, thermal_topic, "thermal")
        rgb_conns = _image_connections(reader, rgb_topic, "rgb")
        if fused_topic in (thermal_topic, rgb_topic):
            raise ValueError(f"the fused topic {fused_topic} must differ from the input image topics")
        role = {c.id: "thermal" for c in thermal_conns} | {c.id: "rgb" for c in rgb_conns}
        if copy_inputs and any(absolute_topic(c.topic) == fused_topic for c in reader.connections):
            raise ValueError(f"the input bag already has the fused topic {fused_topic}; choose another --fused-topic")
        read_conns = list(reader.connections) if copy_inputs else thermal_conns + rgb_conns
        plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
        writer = Writer(output, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        with writer:
            copies = _copy_connections(writer, reader, read_conns) if copy_inputs else {}
            fused_conn = writer.add_connection(fused_topic, IMAGE_TYPE, typestore=out_types)

            def write_pairs(pairs: list[Any]) -> None:
                for pair in pairs:
                    (thermal_msg, _), (rgb_msg, rgb_log_time) = pair.thermal, pair.rgb
                    where = f"pair thermal {pair.thermal_stamp:.6f} s + rgb {pair.rgb_stamp:.6f} s"
                    try:
                        t0 = time.perf_counter()
                        ir = image_msg_to_array(thermal_msg, THERMAL_ENCODINGS, f"{thermal_topic} image")
                        vi = image_msg_to_array(rgb_msg, RGB_ENCODINGS, f"{rgb_topic} image")
                        fused = fuser(ir, vi, names=(thermal_topic, rgb_topic))
                        fuse_seconds.append(time.perf_counter() - t0)
                        rgb_stamp = rgb_msg.header.stamp
                        stamp = time_cls(sec=int(rgb_stamp.sec), nanosec=int(rgb_stamp.nanosec))
                        header = header_cls(stamp=stamp, frame_id=str(rgb_msg.header.frame_id))
                        msg = image_cls(header, 0, 0, "", 0, 0, np.zeros(0, np.uint8))  # fields set just below
                        fill_image_msg(msg, fused, fused_encoding(vi))  # per stream: no flicker on gray frames
                        writer.write(fused_conn, rgb_log_time, out_types.serialize_cdr(msg, IMAGE_TYPE))
                        report["fused"] += 1
                    except Exception as exc:  # a batch job records any failure of one pair and goes on
                        report["failed"].append(
                            {
                                "thermal_stamp": pair.thermal_stamp,
                                "rgb_stamp": pair.rgb_stamp,
                                "error": f"{where}: {describe_error(exc)}",
                            }
                        )

            messages = reader.messages(connections=read_conns)
            total = sum(c.msgcount for c in read_conns)
            messages = _until_unreadable(messages, report, input, storage)
            for conn, log_time, raw in progress(_Sized(messages, total)) if progress else messages:
                if conn.id in copies:
                    writer.write(copies[conn.id], log_time, raw)
                    report["messages"]["copied"] += 1
                stream = role.get(conn.id)
                if stream is None:
                    continue
                report["messages"][stream] += 1
                try:
                    msg = reader.deserialize(raw, conn.msgtype)
                    stamp = stamp_to_seconds(msg.header.stamp)
                except Exception as exc:  # an unreadable message is recorded, the rest of the bag goes on
                    report["failed"].append(
                        {"topic": conn.topic, "log_time_ns": log_time, "error": f"unreadable message: {exc}"}
                    )
                    continue
                push = sync.push_thermal if stream == "thermal" else sync.push_rgb
                write_pairs(push(stamp, (msg, log_time)))
            write_pairs(sync.flush())

    wall = time.perf_counter() - started
    stats = sync.stats()
    report.update(
        pairs=stats["paired"],
        n_failed=len(report["failed"]),
        dropped_thermal=stats["dropped_thermal"],
        dropped_rgb=stats["dropped_rgb"],
        drop_reasons=stats["drop_reasons"],
        seconds=round(wall, 3),
        fuse_ms_median=round(1000 * statistics.median(fuse_seconds), 2) if fuse_seconds else None,
    )
    return report


def _unreadable(storage: str, exc: BaseException) -> str:
    """Why a bag cannot be read, in one line: what it should be, and what the reader said."""
    kind = {"sqlite3": "rosbag2 sqlite3 (.db3)", "mcap": "rosbag2 MCAP", "rosbag1": "ROS 1"}[storage]
    reason = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"not a readable {kind} bag: empty, truncated or not a bag ({reason})"


def _until_unreadable(messages: Iterable[Any], report: dict[str, Any], input: Path, storage: str) -> Iterator[Any]:
    """The bag's messages until one cannot be read (a bag truncated or damaged part-way); that is recorded in the
    report's failures, and the pairs fused before it are kept."""
    read = 0
    iterator = iter(messages)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:  # the file's damage, whatever the storage library calls it
            why = _unreadable(storage, exc)
            report["failed"].append({"error": f"{input}: reading stopped after {read} messages: {why}"})
            return
        read += 1
        yield item


def _copy_connections(writer: Any, reader: Any, conns: list[Any]) -> dict[int, Any]:
    """Output connections for copying the input connections unchanged: ``input id -> output``."""
    copies: dict[int, Any] = {}
    made: dict[tuple[str, str, str], Any] = {}
    for conn in conns:
        ext = conn.ext
        key = (conn.topic, conn.msgtype, repr(ext))
        if key not in made:
            has_def = bool(conn.msgdef.data) and bool(conn.digest)
            made[key] = writer.add_connection(
                conn.topic,
                conn.msgtype,
                typestore=None if has_def else reader.typestore,
                msgdef=conn.msgdef.data if has_def else None,
                rihs01=conn.digest if has_def else None,
                serialization_format=ext.serialization_format,
                offered_qos_profiles=ext.offered_qos_profiles,
            )
        copies[conn.id] = made[key]
    return copies


def summary(report: dict[str, Any]) -> str:
    """A few human lines about a :func:`fuse_bag` report."""
    lines = [
        f"read {report['messages']['thermal']} thermal + {report['messages']['rgb']} rgb images from "
        f"{report['input']} ({report['storage']})",
        f"paired {report['pairs']}, fused {report['fused']} into {report['topics']['fused']} of {report['output']} "
        f"in {report['seconds']:.1f} s"
        + (f" ({report['fuse_ms_median']:.1f} ms per pair, median)" if report["fuse_ms_median"] is not None else ""),
        f"left without a partner: {report['dropped_thermal']} thermal, {report['dropped_rgb']} rgb"
        + (f" ({', '.join(f'{k} {v}' for k, v in report['drop_reasons'].items())})" if report["drop_reasons"] else ""),
    ]
    if report["messages"]["copied"]:
        lines.append(f"copied {report['messages']['copied']} input messages")
    return "\n".join(lines)


def cmd_fuse_bag(cfg: dict[str, Any]) -> int:
    """``lrcfuse fuse-bag``: the ``bag`` and ``data`` config sections -> a fused bag; 1 if pairs failed."""
    from tqdm import tqdm

    from ..config import ConfigError
    from ..inference.backends import create_backend

    b = cfg["bag"]
    for key in ("input", "output"):
        if not b[key]:
            raise ConfigError(f"lrcfuse fuse-bag needs --{key} (bag.{key})")
    backend = create_backend(
        b["backend"],
        b["weights"] or b["model"],
        b["device"],
        threads=b["threads"],
        tile=b["tile"],  # a 4K camera's frames go through in tiles instead of running out of memory
        max_memory=b["max_memory"],
    )
    fuser = Fuser(backend=backend, data_cfg=cfg["data"])
    report = fuse_bag(
        b["input"],
        b["output"],
        fuser,
        thermal_topic=b["thermal_topic"],
        rgb_topic=b["rgb_topic"],
        fused_topic=b["fused_topic"],
        slop=b["slop"],
        queue_size=b["queue_size"],
        min_interval=b["min_interval"],
        progress=lambda it: tqdm(it, desc="fuse-bag", unit="msg"),
        copy_inputs=b["copy_inputs"],
    )
    print(summary(report))
    report_error = ""
    if b["report"]:
        try:
            write_json(b["report"], report)
            print(f"report: {b['report']}")
        except OSError as exc:  # the failures are still printed below, all of them
            report_error = f"the report {b['report']} could not be written ({exc})"
            print(f"error: {report_error}", file=sys.stderr)
    if report["failed"]:
        print(f"{len(report['failed'])} FAILED:", file=sys.stderr)
        shown = report["failed"] if report_error else report["failed"][:30]
        for row in shown:
            print(f"  {row['error']}", file=sys.stderr)
        if len(report["failed"]) > len(shown):
            print(f"  ... and {len(report['failed']) - len(shown)} more (all in the report)", file=sys.stderr)
    return 1 if report["failed"] or report_error else 0
