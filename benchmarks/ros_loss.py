"""How many camera frames the fusion node receives from a publisher at Fast DDS defaults (issue 13 item 7).

    bash scripts/private_net.sh .venv/bin/python benchmarks/ros_loss.py --seconds 60 --rate 30 \
        --publisher-reliability reliable
    ... --publisher-reliability best_effort
    ... --node-args "-p reliability:=best_effort"      # the node's earlier default, for the 'before' figure
    ... --subscriber bare           # a bare rclpy subscriber instead of the node (no work per message)
    ... --publisher-depth 100       # the publisher keeps 100 samples instead of ROS's default 10
    ... --rgb-first                 # each RGB frame is published before its thermal frame

Two OS processes, as on a robot: a camera-like publisher (640x512 mono16 thermal + bgr8 RGB at
``--rate`` Hz, ROS's default QoS: reliable, keep last 10, or sensor-data best effort) and the fusion
node started as ``ros2 run`` starts it (``python -m lrcfuse_ros.fusion_node``, no parameters unless
``--node-args``). Both get Fast DDS's *default* transports (shared memory with its default 512 KiB
segment, UDPv4 with the system's socket buffers); the only change is the one the test environment
requires: UDP bound to 127.0.0.1 (plus localhost discovery and a domain of our own). The publisher
waits until both streams are matched, sends ``rate x seconds`` frames per stream and reports what it
sent; the node's received counts come from its log (``received thermal N / rgb M``). Prints one line
per stream: sent, received, percent. Run under ``scripts/private_net.sh``.

``--subscriber bare`` puts a subscriber that does nothing but count (reliable, keep last 10) in the
node's place: what any subscriber gets from this publisher. ``--publisher-depth`` changes the one
publisher setting that decides the loss here (README, "Frames lost from publishers at Fast DDS defaults").
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Fast DDS's default transports, with UDP limited to loopback (what the test environment requires).
DEFAULTS_ON_LOOPBACK = """<?xml version="1.0" encoding="UTF-8"?>
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor><transport_id>shm_default</transport_id><type>SHM</type></transport_descriptor>
      <transport_descriptor>
        <transport_id>udp_loopback</transport_id><type>UDPv4</type>
        <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="defaults_on_loopback" is_default_profile="true">
      <rtps>
        <useBuiltinTransports>false</useBuiltinTransports>
        <userTransports><transport_id>shm_default</transport_id><transport_id>udp_loopback</transport_id></userTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
"""


def on_loopback(profile: Path) -> str:
    """A Fast DDS profile's text with each UDPv4 transport bound to 127.0.0.1 (the test environment's one change)."""
    text = profile.read_text(encoding="utf-8")
    white = "<interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>"
    return re.sub(r"(<type>UDPv4</type>)", r"\1" + white, text)


def publish(args: argparse.Namespace) -> int:
    """The camera-like publisher (a child process): waits for a match, sends, prints ``sent T R``."""
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from lrcfuse_model.streams.image_msg import fill_image_msg

    rclpy.init()
    node = rclpy.create_node("camera_like_publisher")
    reliable = args.publisher_reliability == "reliable"
    qos = QoSProfile(depth=args.publisher_depth) if reliable else qos_profile_sensor_data
    pubs = {
        "thermal": node.create_publisher(Image, "thermal/image_raw", qos),
        "rgb": node.create_publisher(Image, "rgb/image_raw", qos),
    }
    width, height = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    frames = {
        "thermal": fill_image_msg(Image(), rng.integers(2000, 9000, (height, width)).astype(np.uint16), "mono16"),
        "rgb": fill_image_msg(Image(), rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "bgr8"),
    }
    end = time.monotonic() + 60
    while time.monotonic() < end and not all(p.get_subscription_count() for p in pubs.values()):
        rclpy.spin_once(node, timeout_sec=0.1)
    if not all(p.get_subscription_count() for p in pubs.values()):
        print("publisher: the node's subscriptions never matched within 60 s", flush=True)
        return 1
    time.sleep(1.0)  # let the match settle on both sides (the reader's side of discovery)
    n = int(round(args.rate * args.seconds))
    period = 1.0 / args.rate
    start = time.monotonic()
    for i in range(n):
        target = start + i * period
        delay = target - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        stamp = node.get_clock().now().to_msg()
        for name in args.order:
            pub = pubs[name]
            frames[name].header.stamp = stamp
            frames[name].header.frame_id = name
            pub.publish(frames[name])
    time.sleep(2.0)  # a reliable writer may still be repairing the last samples
    print(f"sent thermal {n} rgb {n} in {time.monotonic() - start:.1f} s", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def bare_subscriber() -> int:
    """A subscriber that only counts (a child process): reliable, keep last 10; prints the counts on SIGINT."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("bare_subscriber")
    counts = {"thermal": 0, "rgb": 0}

    def counter(name: str):  # noqa: ANN202 - a callback factory
        def on_message(_msg: Image) -> None:
            counts[name] += 1

        return on_message

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    subs = [node.create_subscription(Image, f"{name}/image_raw", counter(name), qos) for name in counts]
    stop: list[int] = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(f"received thermal {counts['thermal']} / rgb {counts['rgb']}", flush=True)
    del subs
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--size", default="640x512")
    p.add_argument("--publisher-reliability", choices=("reliable", "best_effort"), default="reliable")
    p.add_argument(
        "--rgb-first",
        dest="order",
        action="store_const",
        const=("rgb", "thermal"),
        default=("thermal", "rgb"),
        help="publish each RGB frame before its thermal frame (default: thermal first)",
    )
    p.add_argument("--publisher-depth", type=int, default=10, help="the reliable publisher's keep-last depth (ROS: 10)")
    p.add_argument(
        "--subscriber",
        choices=("node", "bare"),
        default="node",
        help="who receives: the fusion node, or a subscriber that only counts (the reference for what any gets)",
    )
    p.add_argument("--publisher-profile", default="", help="Fast DDS XML for the publisher instead of the defaults")
    p.add_argument(
        "--node-args", default="", help="extra node arguments after --ros-args, e.g. '-p reliability:=reliable'"
    )
    p.add_argument(
        "--node-profile",
        default="",
        help="FASTDDS_DEFAULT_PROFILES_FILE of the node ('' = the defaults; 'shipped' = config/fastdds_large_shm.xml, "
        "which fusion_node applies when none is set, on loopback)",
    )
    p.add_argument("--domain", type=int, default=40 + os.getpid() % 50)
    p.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "publisher":
        return publish(args)
    if args.role == "bare":
        return bare_subscriber()

    from lrcfuse_ros.ros_env import loopback_env

    with tempfile.TemporaryDirectory() as tmp:
        defaults = Path(tmp) / "fastdds_defaults_loopback.xml"
        defaults.write_text(DEFAULTS_ON_LOOPBACK, encoding="utf-8")
        base = loopback_env(args.domain)
        if args.node_profile == "shipped":  # the profile fusion_node applies, with UDP bound to loopback
            args.node_profile = str(Path(tmp) / "fastdds_large_shm_loopback.xml")
            Path(args.node_profile).write_text(on_loopback(REPO / "config" / "fastdds_large_shm.xml"), encoding="utf-8")
        node_env = dict(base, FASTDDS_DEFAULT_PROFILES_FILE=args.node_profile or str(defaults))
        pub_env = dict(base, FASTDDS_DEFAULT_PROFILES_FILE=args.publisher_profile or str(defaults))
        node_log = Path(tmp) / "node.log"
        node_cmd = [sys.executable, "-m", "lrcfuse_ros.fusion_node", "--ros-args", *shlex.split(args.node_args)]
        if args.subscriber == "bare":
            node_cmd = [sys.executable, __file__, "--role", "bare"]
        with open(node_log, "w") as log:
            node = subprocess.Popen(node_cmd, env=node_env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        pub_cmd = [
            sys.executable,
            __file__,
            "--role",
            "publisher",
            "--seconds",
            str(args.seconds),
            "--rate",
            str(args.rate),
            "--size",
            args.size,
            "--publisher-reliability",
            args.publisher_reliability,
            "--publisher-depth",
            str(args.publisher_depth),
            *(["--rgb-first"] if args.order[0] == "rgb" else []),
        ]
        pub = subprocess.run(pub_cmd, env=pub_env, cwd=REPO, capture_output=True, text=True)
        time.sleep(1.0)
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
        text = node_log.read_text(encoding="utf-8", errors="replace")
    sent = re.search(r"sent thermal (\d+) rgb (\d+)", pub.stdout)
    received = re.findall(r"received thermal (\d+) / rgb (\d+)", text)
    defaults = "Fast DDS defaults, UDP on loopback"
    print(
        f"publisher: {args.publisher_reliability}"
        + (f" keep last {args.publisher_depth}" if args.publisher_reliability == "reliable" else "")
        + f" ({args.publisher_profile or defaults}), {'then '.join(s + ' ' for s in args.order)}{args.size} at "
        f"{args.rate:g} Hz for {args.seconds:g} s; node ({args.node_profile or defaults}): {' '.join(node_cmd[1:])}"
    )
    if not sent or not received:
        print("could not read the counts; publisher said:\n" + pub.stdout + pub.stderr + "\nnode log:\n" + text[-3000:])
        return 1
    for line in re.findall(r"(?:\w+ inputs,|reliability auto: subscribed \w+ to '[^']+')", text):
        print(f"node: {line.rstrip(',')}")
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    for k, stream in enumerate(("thermal", "rgb")):
        n_sent, n_got = int(sent.group(k + 1)), int(received[-1][k])
        print(f"{stream:8s} sent {n_sent:5d} received {n_got:5d} = {100.0 * n_got / max(1, n_sent):6.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
