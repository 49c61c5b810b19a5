"""ROS 2 node fusing a thermal camera and an RGB camera with LRCFuse.

Topics (relative, so namespaces and remaps apply):

* in:  ``thermal/image_raw``, ``rgb/image_raw`` (encodings: ``THERMAL_ENCODINGS``, ``RGB_ENCODINGS`` of
  lrcfuse_model.streams.image_msg), or their ``/compressed`` topics (``*_transport: compressed``),
  ``rgb/camera_info`` (optional); QoS per ``reliability`` (auto: as the publishers offer, see inputs.py)
* out: ``fused/image`` (bgr8 for a colour camera with ``colour: true``, else mono8; the RGB image's
  header), ``fused/camera_info`` (the RGB camera's, with the fused frame's header), ``fused/image/compressed``
  (with ``fused_compressed``), ``/diagnostics`` (diagnostic_msgs/DiagnosticArray), and with ``detector.enabled``:
  ``detections/image`` (bgr8, boxes drawn) and ``detections`` (vision_msgs/Detection2DArray, or
  ``detections/json`` as std_msgs/String where vision_msgs is not installed).

Threading: the subscription callbacks only read the header stamp and hand the message to the
approximate-time pairing; a complete pair goes into a one-slot buffer (a newer pair replaces a
waiting one, counted as dropped, unless an idle inference thread is there to take it: pairs completed
together are all fused), and ``workers`` inference threads (2 by default) take pairs from it,
convert, fuse and publish them in the order they were taken. The network runs one pair at a time
(the backend's own threads do its work), so while one pair is in the network the other thread
converts and pre/post-processes the next: on a CPU, with ONNX Runtime running LRCFuse-RT on one core,
that keeps the second core busy. Memory is bounded and callbacks never block, however slow inference
is. A pair that cannot be fused (wrong encoding, size mismatch, corrupt data) is logged (throttled per
kind), counted and dropped.

Model: the ``model`` parameter (``auto``: LRCFuse-RT when inference runs on the CPU, the default LRCFuse
on CUDA / TensorRT), or ``weights``; see :mod:`lrcfuse_ros.model_choice`.

Parameters: :data:`lrcfuse_ros.params.PARAMETERS` (also in config/fusion.yaml and the README).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from lrcfuse_model.images.preprocess import InputError, describe_error, load_homography
from lrcfuse_model.streams.compressed_msg import fill_compressed_msg
from lrcfuse_model.streams.fused_encoding import fused_encoding
from lrcfuse_model.streams.image_msg import (
    RGB_ENCODINGS,
    THERMAL_ENCODINGS,
    fill_image_msg,
    image_msg_to_array,
    stamp_to_seconds,
)
from lrcfuse_model.streams.stamp_sync import ApproximateTimeSync, StampedPair

from .camera_info import CameraInfoRelay
from .dds_profile import apply_default_profile
from .detection_output import VISION_MSGS_AVAILABLE, detection2d_array, detections_json
from .diagnostics import diagnostic_values, fusion_status, summary_line
from .diagnostics_publisher import DiagnosticsPublisher, default_hardware_id
from .inputs import CameraInput
from .latest_slot import InOrder, LatestSlot
from .model_choice import choose_model, explain, needs_rebuild, planned_on_gpu
from .node_params import declare_parameters
from .params import ParameterError, check_values, data_config
from .qos import image_qos, silent_topic_hint
from .shutdown import GRACE_S, run_node
from .stats import PipelineStats, StreamWatch
from .throttle import KeyedThrottle

NODE_NAME = "lrcfuse_fusion"
THERMAL_TOPIC = "thermal/image_raw"
RGB_TOPIC = "rgb/image_raw"
FUSED_TOPIC = "fused/image"
DETECTIONS_IMAGE_TOPIC = "detections/image"
DETECTIONS_TOPIC = "detections"
DETECTIONS_JSON_TOPIC = "detections/json"

class FusionNode(Node):
    """Subscribes to the two cameras, pairs them by stamp, fuses in one worker thread, publishes."""

    def __init__(self, node_name: str = NODE_NAME, **node_kwargs: Any) -> None:
        super().__init__(node_name, **node_kwargs)
        self._stop = threading.Event()
        self._slot = LatestSlot()
        self._order = InOrder()  # fused images go out in the order their pairs were taken
        self._take_lock = threading.Lock()  # taking a pair and numbering it is one step
        self._taken = 0
        self._workers: list[threading.Thread] = []
        self._unfinished = 0
        try:
            self._setup()
        except BaseException:
            self.stop(grace_s=0.0)  # inference threads already started end with it
            super().destroy_node()  # a node that cannot start leaves nothing behind in the context
            raise

    def _setup(self) -> None:
        self.values = declare_parameters(self)  # read-only: `ros2 param set` is refused, use_sim_time is not
        check_values(self.values)
        v = self.values
        self._throttle = KeyedThrottle(float(v["log_throttle_s"]))
        self._stats = PipelineStats(
            time.monotonic(), windows=("summary", "run"), recent_s=float(v["diagnostics_window_s"])
        )
        self._sync = ApproximateTimeSync(
            slop=float(v["slop"]),
            queue_size=int(v["queue_size"]),
            min_interval=float(v["min_interval"]),
            on_jump=self._on_time_jump,
        )
        self._sync_lock = threading.Lock()  # callbacks may run in parallel under a multi-threaded executor

        self.fuser = self._make_fuser()
        self.detector = self._make_detector()

        # Reliable output matches both reliable and best-effort subscribers (rviz, recorders, detectors).
        out_qos = image_qos("reliable", int(v["qos_depth"]))
        self._pub_fused = self.create_publisher(Image, FUSED_TOPIC, out_qos)
        self._pub_fused_compressed = None
        if v["fused_compressed"]:
            self._pub_fused_compressed = self.create_publisher(CompressedImage, FUSED_TOPIC + "/compressed", out_qos)
        self._pub_det_image = self._pub_det = None
        if self.detector is not None:
            self._pub_det_image = self.create_publisher(Image, DETECTIONS_IMAGE_TOPIC, out_qos)
            if VISION_MSGS_AVAILABLE:
                self._pub_det = self.create_publisher(_detection_array_type(), DETECTIONS_TOPIC, out_qos)
            else:
                self._pub_det = self.create_publisher(String, DETECTIONS_JSON_TOPIC, out_qos)
                self.get_logger().warning(
                    "vision_msgs is not installed: detections go out as JSON (std_msgs/String) on "
                    f"'{self.resolve_topic_name(DETECTIONS_JSON_TOPIC)}' instead of vision_msgs/Detection2DArray "
                    f"on '{self.resolve_topic_name(DETECTIONS_TOPIC)}' (install ros-<distro>-vision-msgs for that); "
                    f"the annotated image is on '{self.resolve_topic_name(DETECTIONS_IMAGE_TOPIC)}'"
                )

        depth = int(v["qos_depth"])
        self._inputs = [
            CameraInput(self, THERMAL_TOPIC, self._on_thermal, v["thermal_transport"], v["reliability"], depth),
            CameraInput(self, RGB_TOPIC, self._on_rgb, v["rgb_transport"], v["reliability"], depth),
        ]
        self.thermal_topic, self.rgb_topic = (i.topic_name for i in self._inputs)
        self._camera_info = CameraInfoRelay(self, v["reliability"], depth)
        self._watch = StreamWatch([self.thermal_topic, self.rgb_topic], time.monotonic())

        self._diagnostics = DiagnosticsPublisher(
            self,
            float(v["diagnostics_period_s"]),
            v["hardware_id"] or default_hardware_id(self.device),
            self._diagnostic_status,
        )
        if float(v["summary_period_s"]):
            self._summary_timer = self.create_timer(float(v["summary_period_s"]), self._log_summary)
        watch_period = min(1.0, max(0.1, float(v["no_data_warning_s"]) / 2)) if v["no_data_warning_s"] else 1.0
        self._watch_timer = self.create_timer(watch_period, self._check_silent_streams)

        for k in range(int(v["workers"])):
            worker = threading.Thread(target=self._work, name=f"lrcfuse-inference-{k}", daemon=True)
            self._workers.append(worker)
            worker.start()
        self.get_logger().info(
            f"fusing '{self.thermal_topic}' + '{self.rgb_topic}' -> '{self._pub_fused.topic_name}' "
            f"(model {self.model_label}, backend {self.backend_name} on {self.device}, {v['workers']} inference "
            f"threads, {v['reliability']} inputs, slop {v['slop']} s, min_interval {v['min_interval']} s)"
        )

    # -- set-up ------------------------------------------------------------------------------------

    def _make_fuser(self) -> Any:
        from lrcfuse_model.inference.backends import create_backend
        from lrcfuse_model.inference.fuser import Fuser

        v = self.values
        data_cfg = data_config(v)
        homography = load_homography(data_cfg)  # a bad matrix or file fails here, not on every frame

        def build(weights: str) -> Any:
            return create_backend(
                v["backend"],
                weights,
                v["device"],
                cache_dir=v["cache_dir"] or None,
                fp16=bool(v["fp16"]),
                threads=int(v["threads"]),
                log=self.get_logger().info,
                tile=str(v["tile"]),  # frames too large for max_memory go through in tiles (tiling.py)
                max_memory=str(v["max_memory"]),
            )

        first = v["backend"]
        if v["backend"] == "auto" and v["model"] == "auto" and not v["weights"]:
            from lrcfuse_model.inference.backends import auto_order

            first = auto_order()[0][0]
        choice = choose_model(v["model"], v["weights"], planned_on_gpu(v["backend"], v["device"], first))
        backend = build(choice.weights)
        if needs_rebuild(choice, backend.name, backend.device):  # auto fell back to a backend elsewhere
            choice = choose_model(v["model"], "", not planned_on_gpu(v["backend"], v["device"], first))
            self.get_logger().info(f"backend {backend.name} runs on {backend.device}: model auto takes {choice.label}")
            backend = build(choice.weights)
        message = explain(choice, v["model"], backend.name, backend.device)
        log = self.get_logger().warning if v["weights"] and v["model"] != "auto" else self.get_logger().info
        log(message)
        self.model_label, self.backend_name, self.device = choice.label, backend.name, backend.device
        self.backend_threads = int(getattr(backend, "threads", 0) or v["threads"])  # 0: the backend's default
        if homography is not None:
            self.get_logger().info(f"warping thermal onto the RGB frame with the homography {homography.tolist()}")
        timed = _TimedBackend(backend, lambda seconds: self._stats.sample("network", seconds))
        return Fuser(data_cfg=data_cfg, backend=timed, colour=bool(v["colour"]))

    def _make_detector(self) -> Any:
        v = self.values
        if not v["detector.enabled"]:
            return None
        from lrcfuse_model.detection.detectors import load_detector

        detector = load_detector(
            v["detector.weights"],
            confidence=float(v["detector.confidence"]),
            iou=float(v["detector.iou"]),
            classes=list(v["detector.classes"]) or None,
            device=v["device"],
            image_size=int(v["detector.image_size"]),
        )
        self.get_logger().info(f"detector {detector.name} from {v['detector.weights']} ({len(detector.names)} classes)")
        return detector

    # -- callbacks (cheap: stamp + pairing only) ------------------------------------------------------

    def _on_thermal(self, msg: Image) -> None:
        self._on_image(msg, "thermal", self.thermal_topic)

    def _on_rgb(self, msg: Image) -> None:
        self._on_image(msg, "rgb", self.rgb_topic)

    def _on_image(self, msg: Image, stream: str, topic: str) -> None:
        silent_for = self._watch.seen(topic, time.monotonic())
        if silent_for is not None:
            self.get_logger().info(f"data on '{topic}' again after {silent_for:.1f} s of silence")
        self._stats.count(stream)
        stamp = stamp_to_seconds(msg.header.stamp)
        with self._sync_lock:
            push = self._sync.push_thermal if stream == "thermal" else self._sync.push_rgb
            pairs = push(stamp, msg)
            self._stats.set_total("unpaired_thermal", int(self._sync.dropped_thermal))
            self._stats.set_total("unpaired_rgb", int(self._sync.dropped_rgb))
        if pairs:
            self._stats.count("paired", len(pairs))
            now, completed = self._now(), time.perf_counter()
            dropped = 0
            for pair in pairs:  # oldest first; an idle inference thread takes each, else only the newest waits
                self._stats.sample("pairing", now - pair.rgb_stamp)
                dropped += int(self._slot.put((pair, completed)))
            if dropped:
                self._stats.count("pairs_dropped_busy", dropped)

    # -- inference thread ---------------------------------------------------------------------------

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._take_lock:
                item = self._slot.take(timeout=0.2)
                if item is None:
                    continue
                turn, self._taken = self._taken, self._taken + 1
            pair, completed = item
            self._stats.count("taken")
            self._stats.sample("queue", time.perf_counter() - completed)
            try:
                self.process_pair(pair, turn)
            except Exception as exc:  # whatever goes wrong with one pair, the inference thread carries on
                self._reject(("unexpected", type(exc).__name__), exc, pair)
            finally:
                self._order.done(turn)
                self._stats.count("finished")

    def process_pair(self, pair: StampedPair, turn: int | None = None) -> Image | None:
        """Convert, fuse and publish one pair (after the pairs taken before ``turn``, when given).

        A pair that cannot be fused is logged, counted and dropped.
        """
        t0 = time.perf_counter()
        try:
            ir = image_msg_to_array(pair.thermal, THERMAL_ENCODINGS, name=f"thermal image on '{self.thermal_topic}'")
        except InputError as exc:
            return self._reject(("convert", self.thermal_topic), exc, pair)
        try:
            vi = image_msg_to_array(pair.rgb, RGB_ENCODINGS, name=f"RGB image on '{self.rgb_topic}'")
        except InputError as exc:
            return self._reject(("convert", self.rgb_topic), exc, pair)
        try:
            names = (f"thermal image on '{self.thermal_topic}'", f"RGB image on '{self.rgb_topic}'")
            fused = self.fuser(ir, vi, names=names)
        except InputError as exc:
            return self._reject(("fuse", "input"), exc, pair)
        except Exception as exc:  # a failing backend must not kill the node: log, count, go on
            return self._reject(("fuse", type(exc).__name__), exc, pair)
        t1 = time.perf_counter()
        self._stats.sample("inference", t1 - t0)

        out = Image()
        out.header = pair.rgb.header
        fill_image_msg(out, fused, fused_encoding(vi, bool(self.values["colour"])))  # per stream, not per frame
        if turn is not None and not self._order.wait(turn):
            return None  # shutting down
        self._pub_fused.publish(out)
        self._publish_with_fused(fused, out)
        self._stats.sample("publish", time.perf_counter() - t1)
        self._stats.count("fused")
        self._stats.sample("latency", self._now() - pair.rgb_stamp)
        if self.detector is not None:
            self._detect(fused, out.header)
        return out

    def _publish_with_fused(self, fused: np.ndarray, out: Image) -> None:
        """What goes out with each fused frame: fused/camera_info, fused/image/compressed (when asked)."""
        problem = self._camera_info.publish(out.header, int(out.width), int(out.height))
        if problem:
            self._throttle.log(("camera_info", "size"), self.get_logger().warning, problem)
        if self._pub_fused_compressed is not None:
            compressed = CompressedImage()
            compressed.header = out.header
            self._pub_fused_compressed.publish(fill_compressed_msg(compressed, fused, self.values["fused_compressed"]))

    def _detect(self, fused: np.ndarray, header: Any) -> None:
        from lrcfuse_model.detection.drawing import draw_detections

        t0 = time.perf_counter()
        try:
            detections = self.detector.detect(fused)
        except Exception as exc:  # same policy as fusion failures
            self._stats.count("failed_detections")
            self._throttle.log(("detect", type(exc).__name__), self.get_logger().warning, f"detection failed: {exc}")
            return
        self._stats.sample("detection", time.perf_counter() - t0)
        self._stats.count("detections", len(detections))
        annotated = Image()
        annotated.header = header
        fill_image_msg(annotated, draw_detections(fused, detections), "bgr8")
        self._pub_det_image.publish(annotated)
        if VISION_MSGS_AVAILABLE:
            self._pub_det.publish(detection2d_array(header, detections))
        else:
            self._pub_det.publish(String(data=detections_json(header, detections)))

    def _on_time_jump(self, stream: str, previous: float, stamp: float, dropped: int) -> None:
        """A stream's stamps went back (camera restart, looping bag): the pairing restarted that stream."""
        self._stats.count("time_jumps")
        topic = self.thermal_topic if stream == "thermal" else self.rgb_topic
        self.get_logger().warning(
            f"stamps on '{topic}' went back {previous - stamp:.3f} s (from {previous:.3f} to {stamp:.3f}: camera "
            f"restart, looping bag or clock reset): pairing restarted on that stream ({dropped} waiting dropped)"
        )

    def _reject(self, kind: tuple[str, str], exc: BaseException, pair: StampedPair) -> None:
        self._stats.count("failed_pairs")
        self._throttle.log(
            kind,
            self.get_logger().warning,
            f"dropped the pair (thermal stamp {pair.thermal_stamp:.3f}, RGB stamp {pair.rgb_stamp:.3f}): "
            f"{describe_error(exc)}",
        )
        return None

    # -- timers -------------------------------------------------------------------------------------

    def _check_silent_streams(self) -> None:
        threshold = float(self.values["no_data_warning_s"])
        for topic, seconds in self._watch.silent(time.monotonic(), threshold).items():
            self._throttle.log(
                ("silent", topic),
                self.get_logger().warning,
                f"no message on '{topic}' for {seconds:.1f} s: "
                + silent_topic_hint(self, topic, {i.topic_name: i.reliability for i in self._inputs}.get(topic, "")),
            )

    def _diagnostic_status(self) -> tuple[bytes, str, dict[str, str]]:
        """(level, message, values) over the recent window, for the DiagnosticsPublisher."""
        now = time.monotonic()
        snapshot = self._stats.recent(now)
        silent = self._watch.silent(now, float(self.values["no_data_warning_s"]))
        totals = snapshot["totals"]
        info = {
            "model": self.model_label,
            "backend": self.backend_name,
            "device": self.device,
            "threads": str(self.backend_threads),
            "workers": str(len(self._workers)),
            "pairs_in_flight": str(totals.get("taken", 0) - totals.get("finished", 0)),
            "time_jumps": str(totals.get("time_jumps", 0)),
            "silent_topics": ",".join(sorted(silent)),
            # what reliability auto settled on ("waiting" before a publisher appears): the first thing to
            # look at when frames go missing (README, "QoS and Fast DDS")
            "thermal_reliability": self._inputs[0].reliability,
            "rgb_reliability": self._inputs[1].reliability,
        }
        level, message = fusion_status(snapshot, silent)
        return level, message, diagnostic_values(snapshot, info)

    def _log_summary(self) -> None:
        self.get_logger().info(summary_line(self._stats.period(time.monotonic(), "summary")))

    # -- shutdown -----------------------------------------------------------------------------------

    def stop(self, grace_s: float = GRACE_S) -> int:
        """Stop the inference threads and log the whole run's summary once; returns the pairs left unfinished.

        Pairs already in the network get ``grace_s`` seconds to finish and be published; a backend call cannot
        be interrupted, so a longer one is left running (its result is never published) and counted: the
        caller then ends the process without waiting for it (:mod:`lrcfuse_ros.shutdown`).
        """
        if self._stop.is_set():
            return self._unfinished
        self._stop.set()
        self._slot.close()
        if not self._workers:  # never started
            return 0
        end = time.monotonic() + grace_s
        for worker in self._workers:
            if worker.is_alive() and worker is not threading.current_thread():
                worker.join(timeout=max(0.0, end - time.monotonic()))
        self._order.close()  # a pair finishing later is not published
        self._unfinished = sum(w.is_alive() and w is not threading.current_thread() for w in self._workers)
        line = "stopped; whole run: " + summary_line(self._stats.period(time.monotonic(), "run"))
        if self._unfinished:
            line += f" | left {self._unfinished} pair(s) in the network unfinished (grace {grace_s} s)"
        self.get_logger().info(line)
        return self._unfinished

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()

    @property
    def totals(self) -> dict[str, int]:
        """Running totals: fused, failed_pairs, pairs_dropped_busy, unpaired_thermal/rgb, thermal, rgb ..."""
        return dict(self._stats.totals)


class _TimedBackend:
    """The backend with each ``fuse`` timed (``network`` in the diagnostics) and run one at a time.

    One at a time: a TensorRT execution context is not re-entrant, and the CPU backends already use the
    threads they were given; what runs in parallel is the conversion and pre/post-processing around it.
    """

    def __init__(self, backend: Any, record: Any) -> None:
        self._backend = backend
        self._record = record
        self._lock = threading.Lock()

    def fuse(self, ir: np.ndarray, vi_y: np.ndarray) -> np.ndarray:
        with self._lock:
            t0 = time.perf_counter()
            out = self._backend.fuse(ir, vi_y)
            self._record(time.perf_counter() - t0)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _detection_array_type() -> type:
    from vision_msgs.msg import Detection2DArray

    return Detection2DArray


def main(argv: Sequence[str] | None = None) -> int:
    """``ros2 run lrcfuse_ros fusion_node [--ros-args ...]``: run the node until Ctrl-C / SIGTERM."""
    if argv is None:
        from lrcfuse_model.malloc_tuning import _reexec_with_fast_malloc

        _reexec_with_fast_malloc(sys.argv[1:], module="lrcfuse_ros.fusion_node")
    args = list(sys.argv if argv is None else [sys.argv[0], *argv])
    profile = apply_default_profile()  # before rclpy.init loads Fast DDS; a user's own profile is kept

    def make_node() -> FusionNode:
        node = FusionNode()
        if profile:
            node.get_logger().info(f"Fast DDS profile {profile} (FASTDDS_DEFAULT_PROFILES_FILE was not set)")
        return node

    # Ctrl-C and SIGTERM end the node within launch's 5 s with status 0, however long the frame in the network
    # takes; start-up errors (bad parameter, missing weights, unavailable backend) are one line, status 2.
    startup_errors = (ParameterError, FileNotFoundError, ValueError, ImportError, RuntimeError)
    return run_node(make_node, NODE_NAME, args, startup_errors)


if __name__ == "__main__":
    sys.exit(main())
