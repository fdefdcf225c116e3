#!/usr/bin/env bash
# Start and stop pyflow daemons on this host (Flink's flink-daemon.sh).
#
#   pyflow-daemon.sh (start|start-foreground|stop|stop-all) (standalonesession|taskexecutor) [args]
#
# start             starts one more daemon in the background; its pid is appended to
#                   $PYFLOW_PID_DIR/pyflow-$PYFLOW_IDENT_STRING-<daemon>.pid, it logs to
#                   $PYFLOW_LOG_DIR/pyflow-<daemon>-<id>.log and its stdout and stderr go to the .out
#                   file beside it (<id>: the pid for the JobManager, tm-<pid> for a TaskManager),
#                   and the script waits until it reports that it listens (prints that line) or fails.
#                   With PYFLOW_INSTANCE=<k> (start-cluster.sh sets it), a daemon is started only if
#                   fewer than k+1 of its kind run here; otherwise the script says it is running.
# start-foreground  runs the daemon in this terminal (its pid is recorded too)
# stop              stops the daemon started last: SIGTERM, then SIGKILL after $PYFLOW_STOP_TIMEOUT s
# stop-all          stops every daemon of that kind on this host
#
# Processes are found through the pid file only, and a pid is signalled only while it is a live
# process running that daemon's module (a stale pid that the system gave to another program
# since is left alone).
set -euo pipefail

USAGE="Usage: pyflow-daemon.sh (start|start-foreground|stop|stop-all) (standalonesession|taskexecutor) [args]"
if [[ $# -lt 2 ]]; then
  echo "$USAGE" >&2
  exit 1
fi
STARTSTOP="$1"
DAEMON="$2"
shift 2
ARGS=("$@")

bin="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=config.sh
. "$bin/config.sh"

case "$DAEMON" in
  standalonesession)
    MODULE="pyflow.runtime.jobmanager"
    READY="^JobManager started"
    OUT_PREFIX="pyflow-standalonesession-"  # + pid: the name of its log file, .out for .log
    ;;
  taskexecutor)
    MODULE="pyflow.runtime.taskmanager"
    READY="^TaskManager .* started"
    OUT_PREFIX="pyflow-taskexecutor-tm-"  # + pid: its resource id is tm-<pid>
    ;;
  *)
    echo "Unknown daemon '$DAEMON'. $USAGE" >&2
    exit 1
    ;;
esac

PID_FILE="$PYFLOW_PID_DIR/pyflow-$PYFLOW_IDENT_STRING-$DAEMON.pid"

# is_running PID: PID is a live (not zombie) process of this daemon's module
is_running() {
  local pid="$1" stat args
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  stat="$(ps -o stat= -p "$pid" 2>/dev/null)" || return 1
  [[ "$stat" != *Z* ]] || return 1
  args="$(ps -o args= -p "$pid" 2>/dev/null)" || return 1
  [[ "$args" == *"$MODULE"* ]]
}

# live_pids: the pids of the pid file that still run, in the file's order
live_pids() {
  local pid
  if [[ -f "$PID_FILE" ]]; then
    while IFS= read -r pid || [[ -n "$pid" ]]; do
      if is_running "$pid"; then
        echo "$pid"
      fi
    done < "$PID_FILE"
  fi
}

# write_pids PID...: the pid file holds exactly these pids (no file when there are none)
write_pids() {
  if [[ $# -eq 0 ]]; then
    rm -f "$PID_FILE"
  else
    printf '%s\n' "$@" > "$PID_FILE.tmp"
    mv "$PID_FILE.tmp" "$PID_FILE"
  fi
}

# the pid file is changed under an exclusive lock on the pid folder (fd 200), as Flink does;
# daemons do not inherit it
lock() {
  mkdir -p "$PYFLOW_PID_DIR"
  exec 200<"$PYFLOW_PID_DIR"
  if command -v flock >/dev/null 2>&1; then
    flock 200
  fi
}

unlock() {
  exec 200>&-
}

# stop_pids PID...: SIGTERM each, wait up to PYFLOW_STOP_TIMEOUT s, then SIGKILL what is left
stop_pids() {
  local pid waited=0 left
  for pid in "$@"; do
    echo "Stopping $DAEMON daemon (pid: $pid) on host $HOSTNAME."
    kill -TERM "$pid" 2>/dev/null || true
  done
  while true; do
    left=()
    for pid in "$@"; do
      if is_running "$pid"; then
        left+=("$pid")
      fi
    done
    if [[ ${#left[@]} -eq 0 ]]; then
      return 0
    fi
    if (( waited >= PYFLOW_STOP_TIMEOUT * 10 )); then
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  for pid in "${left[@]}"; do
    echo "$DAEMON daemon (pid: $pid) did not stop within $PYFLOW_STOP_TIMEOUT s after SIGTERM; killing it."
    kill -KILL "$pid" 2>/dev/null || true
  done
}

command_line() {
  COMMAND=("$PYFLOW_PYTHON" -m "$MODULE" --conf-dir "$PYFLOW_CONF_DIR" -D "env.log.dir=$PYFLOW_LOG_DIR"
           ${ARGS[@]+"${ARGS[@]}"})
}

start() {
  local active pid out mypid waited=0
  mkdir -p "$PYFLOW_LOG_DIR"
  lock
  mapfile -t active < <(live_pids)
  write_pids ${active[@]+"${active[@]}"}
  if [[ -n "${PYFLOW_INSTANCE:-}" && ! "$PYFLOW_INSTANCE" =~ ^[0-9]+$ ]]; then
    echo "PYFLOW_INSTANCE must be a number (the index of the daemon on this host), not '$PYFLOW_INSTANCE'." >&2
    unlock
    exit 1
  fi
  if [[ -n "${PYFLOW_INSTANCE:-}" && ${#active[@]} -gt $PYFLOW_INSTANCE ]]; then
    echo "$DAEMON daemon (pid: ${active[$PYFLOW_INSTANCE]}) is already running on host $HOSTNAME."
    unlock
    return 0
  fi
  if [[ ${#active[@]} -gt 0 ]]; then
    echo "[INFO] ${#active[@]} instance(s) of $DAEMON are already running on $HOSTNAME."
  fi
  command_line
  echo "Starting $DAEMON daemon on host $HOSTNAME."
  # a shell that names the .out file after its own pid, then becomes the daemon (same pid)
  nohup bash -c 'exec > "$0$$.out" 2>&1 < /dev/null; exec "$@"' "$PYFLOW_LOG_DIR/$OUT_PREFIX" \
    "${COMMAND[@]}" > /dev/null 2>&1 < /dev/null 200>&- &
  mypid=$!
  out="$PYFLOW_LOG_DIR/$OUT_PREFIX$mypid.out"
  echo "$mypid" >> "$PID_FILE"
  unlock
  # wait until it reports that it listens, or ends
  while (( waited < PYFLOW_START_TIMEOUT * 10 )); do
    if grep -q -m 1 -E "$READY" "$out" 2>/dev/null; then
      grep -m 1 -E "$READY" "$out"
      return 0
    fi
    if ! is_running "$mypid"; then
      sleep 0.2  # its last words
      echo "Error: the $DAEMON daemon (pid: $mypid) on host $HOSTNAME exited during start; its output ($out):" >&2
      tail -n 20 "$out" >&2 || true
      lock
      mapfile -t active < <(live_pids)
      write_pids ${active[@]+"${active[@]}"}
      unlock
      exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "Error: the $DAEMON daemon (pid: $mypid) on host $HOSTNAME did not report that it started within" \
       "$PYFLOW_START_TIMEOUT s (PYFLOW_START_TIMEOUT); it keeps running. Its output: $out" >&2
  exit 1
}

start_foreground() {
  local active
  lock
  mapfile -t active < <(live_pids)
  write_pids ${active[@]+"${active[@]}"} $$
  unlock
  command_line
  exec "${COMMAND[@]}"
}

stop() {
  local active last
  lock
  mapfile -t active < <(live_pids)
  if [[ ${#active[@]} -eq 0 ]]; then
    write_pids
    unlock
    echo "No $DAEMON daemon to stop on host $HOSTNAME."
    return 0
  fi
  last="${active[${#active[@]} - 1]}"
  unset 'active[${#active[@]}-1]'
  write_pids ${active[@]+"${active[@]}"}
  unlock
  stop_pids "$last"
}

stop_all() {
  local active
  lock
  mapfile -t active < <(live_pids)
  write_pids
  unlock
  if [[ ${#active[@]} -eq 0 ]]; then
    echo "No $DAEMON daemon to stop on host $HOSTNAME."
    return 0
  fi
  stop_pids "${active[@]}"
}

case "$STARTSTOP" in
  start) start ;;
  start-foreground) start_foreground ;;
  stop) stop ;;
  stop-all) stop_all ;;
  *)
    echo "Unknown command '$STARTSTOP'. $USAGE" >&2
    exit 1
    ;;
esac
