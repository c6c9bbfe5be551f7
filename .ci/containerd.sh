#!/usr/bin/env bash
# Start a private containerd for Flotilla's OCI runtime tests (idempotent).
#
# It never touches the system containerd service: it runs its own daemon
# with a project config, its own root/state directories and its own socket,
# in the background, and prints the socket path on stdout when it answers.
# Tests find it through FLOTILLA_CONTAINERD_SOCK (default below).
#
# Overridable: FLOTILLA_CONTAINERD_ROOT, FLOTILLA_CONTAINERD_STATE,
# FLOTILLA_CONTAINERD_SOCK, FLOTILLA_CONTAINERD_SNAPSHOTTER (overlayfs|native).
set -euo pipefail

ROOT="${FLOTILLA_CONTAINERD_ROOT:-/var/lib/flotilla-containerd}"
STATE="${FLOTILLA_CONTAINERD_STATE:-/run/flotilla-containerd}"
SOCK="${FLOTILLA_CONTAINERD_SOCK:-$STATE/containerd.sock}"
CONF_DIR="$ROOT/etc"
CONF="$CONF_DIR/config.toml"
LOG="$ROOT/containerd.log"
PIDFILE="$STATE/containerd.pid"

log() { echo "containerd.sh: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  log "must run as root"
  exit 1
fi

# Install the daemon and runc if missing (Debian packages).
if ! command -v containerd >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1 \
  || ! command -v ctr >/dev/null 2>&1; then
  log "installing containerd and runc"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq containerd runc >&2
fi

answers() { ctr --address "$SOCK" version >/dev/null 2>&1; }

# Already running? Nothing to do.
if [ -S "$SOCK" ] && answers; then
  echo "$SOCK"
  exit 0
fi

mkdir -p "$ROOT" "$STATE" "$CONF_DIR" "$(dirname "$SOCK")"

# A stale pid file from a dead daemon: forget it (only kill the pid we
# started, and only if it is still a containerd with our config).
if [ -f "$PIDFILE" ]; then
  old="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [ -n "$old" ] && [ -r "/proc/$old/cmdline" ] \
    && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q -- "$CONF"; then
    log "daemon $old is not answering; stopping it"
    kill "$old" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$old" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
fi
rm -f "$SOCK"

# Pick the snapshotter: overlayfs if an overlay mount works under ROOT.
overlay_works() {
  local d
  d="$(mktemp -d "$ROOT/.ovl-probe.XXXXXX")" || return 1
  mkdir -p "$d/l" "$d/u" "$d/w" "$d/m"
  local ok=1
  if mount -t overlay overlay -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m" 2>/dev/null; then
    ok=0
    umount "$d/m" 2>/dev/null || true
  fi
  rm -rf "$d"
  return $ok
}
SNAP="${FLOTILLA_CONTAINERD_SNAPSHOTTER:-}"
if [ -z "$SNAP" ]; then
  modprobe overlay 2>/dev/null || true
  if overlay_works; then SNAP=overlayfs; else SNAP=native; fi
fi
log "snapshotter: $SNAP"

# Config format version 2 is understood by containerd 1.6/1.7 and still
# accepted (migrated) by 2.x. The CRI plugin is not needed: Flotilla talks
# to containerd through its Go client, and CRI would want CNI.
cat >"$CONF" <<EOF
version = 2
root = "$ROOT"
state = "$STATE"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  level = "info"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$ROOT/opt"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$SNAP"
EOF
echo "$SNAP" >"$CONF_DIR/snapshotter"

log "starting containerd (config $CONF, log $LOG)"
nohup setsid containerd --config "$CONF" >>"$LOG" 2>&1 </dev/null &
echo $! >"$PIDFILE"

# Record the snapshotter as the default of Flotilla's namespaces (the Go
# runtime reads the containerd.io/defaults/snapshotter label).
label_namespaces() {
  local ns
  for ns in ${FLOTILLA_CONTAINERD_NAMESPACES:-flotilla flotilla-test}; do
    ctr --address "$SOCK" namespaces create "$ns" >/dev/null 2>&1 || true
    ctr --address "$SOCK" namespaces label "$ns" "containerd.io/defaults/snapshotter=$SNAP" >&2
  done
}

for _ in $(seq 1 150); do
  if [ -S "$SOCK" ] && answers; then
    label_namespaces
    echo "$SOCK"
    exit 0
  fi
  if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "containerd exited; last log lines:"
    tail -n 30 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.2
done
log "containerd did not answer on $SOCK within 30s; last log lines:"
tail -n 30 "$LOG" >&2 || true
exit 1
