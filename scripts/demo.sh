#!/usr/bin/env bash
# The main job on a fresh machine: set up (idempotent), then run the ROS 2 pipeline for real as three
# processes talking through DDS — a stand-in camera rig publishing the three bundled RoadScene pairs
# at 640x512 (sample_publisher), the fusion node with the default backend (fusion_node), and a recorder
# writing the fused frames to runs/demo/fused/ (fused_recorder) — then print rates and latency.
#
# Nothing leaves this machine: the processes run inside a private network namespace with only
# loopback up (scripts/private_net.sh, when root), with localhost-only discovery, their own
# ROS_DOMAIN_ID and the Fast DDS profile that binds UDP to 127.0.0.1.
#
#   bash scripts/demo.sh                    # 20 s of camera frames at 5 Hz
#   LRCFUSE_DEMO_SECONDS=60 LRCFUSE_DEMO_RATE=10 bash scripts/demo.sh -p backend:=torch
# Arguments are passed to the node as ROS arguments (after --ros-args).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--inside" ]; then
  bash scripts/setup.sh
  exec bash scripts/private_net.sh bash "$0" --inside "$@"
fi
shift

OUT=${LRCFUSE_DEMO_OUT:-runs/demo}
RUN_SECONDS=${LRCFUSE_DEMO_SECONDS:-20}
RATE=${LRCFUSE_DEMO_RATE:-5}
SIZE=${LRCFUSE_DEMO_SIZE:-640x512}
COUNT=$(python3 -c "print(max(1, round($RATE * $RUN_SECONDS)))")

export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((50 + RANDOM % 50))}
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export RMW_IMPLEMENTATION=rmw_fastrtps_cpp
export FASTDDS_DEFAULT_PROFILES_FILE="$PWD/config/fastdds_loopback.xml"
unset ROS_STATIC_PEERS ROS_LOCALHOST_ONLY
if [ "${LRCFUSE_IN_PRIVATE_NET:-}" = 1 ]; then
  echo "[demo] private network namespace: only loopback is up"
else
  echo "[demo] no private network namespace (needs root): relying on the loopback-only Fast DDS profile"
fi

rm -rf "$OUT"
mkdir -p "$OUT"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

echo "[demo] starting fusion_node (default backend), fused_recorder and sample_publisher (domain $ROS_DOMAIN_ID)"
.venv/bin/fusion_node --ros-args -p summary_period_s:=5.0 "$@" >"$OUT/node.log" 2>&1 &
node_pid=$!
pids+=("$node_pid")
.venv/bin/fused_recorder --out "$OUT/fused" --idle 15 --timeout $((RUN_SECONDS + 300)) >"$OUT/recorder.log" 2>&1 &
recorder_pid=$!
pids+=("$recorder_pid")

# The publisher waits until the node subscribes (after its backend is ready), then runs RUN_SECONDS.
.venv/bin/sample_publisher --limit 3 --rate "$RATE" --count "$COUNT" --size "$SIZE" --jitter-ms 10 \
  --wait-subscribers 300 --summary "$OUT/published.json" 2>&1 | tee "$OUT/publisher.log"

# The last pair is still being fused: the recorder stops 15 s after the last frame it got.
wait "$recorder_pid" || true
kill -TERM "$node_pid" 2>/dev/null || true
wait "$node_pid" || true
pids=()

echo
echo "[demo] fusion node (full log: $OUT/node.log):"
grep -E "backend auto|cannot start|ERROR|stopped; whole run" "$OUT/node.log" | tail -n 6 || true
echo
.venv/bin/python - "$OUT" "$RATE" "$SIZE" <<'EOF'
import json, sys
from pathlib import Path

out, rate, size = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
pub = json.loads((out / "published.json").read_text())
rec = json.loads((out / "fused" / "summary.json").read_text())
diag = rec.get("node_diagnostics", {})
lat = rec.get("latency_ms") or {}
print(f"[demo] cameras:  {pub['published']} thermal+RGB pairs published at {rate} Hz, {size}")
print(f"[demo] fused:    {rec['count']} frames {rec['sizes']} {rec['encodings']} received at {rec['rate_hz']} Hz"
      f" (backend {diag.get('backend', '?')})")
print(f"[demo] latency:  header stamp -> received fused frame: mean {lat.get('mean')} ms, p50 {lat.get('p50')} ms,"
      f" p90 {lat.get('p90')} ms, max {lat.get('max')} ms")
if diag:
    print(f"[demo] node:     fused {diag.get('fused_total')}, pairs dropped while busy {diag.get('pairs_dropped_busy')}"
          f" (only the newest pair is fused when inference is slower than the cameras), unpaired thermal/rgb"
          f" {diag.get('unpaired_thermal')}/{diag.get('unpaired_rgb')}, failed {diag.get('failed_pairs')}")
print(f"[demo] fused frames: {out / 'fused'}/*.png  (summary: {out / 'fused' / 'summary.json'})")
sys.exit(0 if rec["count"] else 1)
EOF
