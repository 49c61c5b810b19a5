#!/usr/bin/env bash
# Run a command inside a private network namespace whose only interface is loopback (brought up),
# so that nothing ROS/DDS sends can leave this machine. Needs root (CI runs as root); without it,
# the command runs as is and only the loopback-bound Fast DDS profile keeps traffic local.
#   usage: scripts/private_net.sh COMMAND [ARGS...]
set -euo pipefail
if [ "${LRCFUSE_IN_PRIVATE_NET:-}" = 1 ]; then
  exec "$@"
fi
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
  if ! command -v ip >/dev/null 2>&1; then
    echo "[private_net] installing iproute2 (to bring up loopback in the namespace)" >&2
    (apt-get update -qq && apt-get install -y -qq iproute2) >/dev/null 2>&1 || true
  fi
  if command -v ip >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
    export LRCFUSE_IN_PRIVATE_NET=1
    exec unshare -n bash -c 'ip link set lo up && exec "$@"' private_net "$@"
  fi
fi
echo "[private_net] cannot create a private network namespace here (needs root and unshare):" \
     "running with the loopback-only Fast DDS profile alone" >&2
exec "$@"
