#!/usr/bin/env bash
# Start or stop the JobManager of a standalone session cluster on this host (Flink's jobmanager.sh).
#
#   jobmanager.sh (start|start-foreground) [host] [webui-port] [-D key=value]...
#   jobmanager.sh (stop|stop-all)
#
# host sets jobmanager.rpc.address, webui-port sets rest.port; without them the
# configuration in $PYFLOW_CONF_DIR decides. `start` prints where the REST API and Web UI are, and
# says so instead when a JobManager already runs on this host. See pyflow-daemon.sh for files.
set -euo pipefail

USAGE="Usage: jobmanager.sh ((start|start-foreground) [host] [webui-port] [-D key=value]...)|stop|stop-all"
if [[ $# -lt 1 ]]; then
  echo "$USAGE" >&2
  exit 1
fi
STARTSTOP="$1"
shift
bin="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

args=()
if [[ "$STARTSTOP" == start || "$STARTSTOP" == start-foreground ]]; then
  if [[ $# -gt 0 && "$1" != -* ]]; then
    if [[ -n "$1" ]]; then
      args+=(--host "$1")
    fi
    shift
    if [[ $# -gt 0 && "$1" != -* ]]; then
      if [[ -n "$1" ]]; then
        args+=(--webui-port "$1")
      fi
      shift
    fi
  fi
  args+=("$@")
  # one JobManager per host: a second `start` says it is running (start-cluster.sh sets the index)
  export PYFLOW_INSTANCE="${PYFLOW_INSTANCE:-0}"
fi

exec "$bin/pyflow-daemon.sh" "$STARTSTOP" standalonesession ${args[@]+"${args[@]}"}
