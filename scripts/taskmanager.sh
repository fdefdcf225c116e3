#!/usr/bin/env bash
# Start or stop a TaskManager of a standalone session cluster on this host (Flink's taskmanager.sh).
#
#   taskmanager.sh (start|start-foreground) [-D key=value]...
#   taskmanager.sh (stop|stop-all)
#
# The TaskManager registers at jobmanager.rpc.address:jobmanager.rpc.port of the configuration in
# $PYFLOW_CONF_DIR, and keeps trying for taskmanager.registration.timeout (the JobManager may start
# later). Each `start` starts one more TaskManager on this host; `stop` stops the one started
# last. See pyflow-daemon.sh for files.
set -euo pipefail

USAGE="Usage: taskmanager.sh ((start|start-foreground) [-D key=value]...)|stop|stop-all"
if [[ $# -lt 1 ]]; then
  echo "$USAGE" >&2
  exit 1
fi
STARTSTOP="$1"
shift
bin="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

exec "$bin/pyflow-daemon.sh" "$STARTSTOP" taskexecutor "$@"
