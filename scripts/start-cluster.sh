#!/usr/bin/env bash
# Start a standalone session cluster (Flink's start-cluster.sh): a JobManager on every host of
# conf/masters (`host[:webui-port]` lines), then a TaskManager for every line of conf/workers (one
# host a line; a host listed twice gets two). Hosts that are this machine (localhost, 127.0.0.1,
# `hostname`, `hostname -f`) are started here, others over ssh running this script's siblings at
# the same path. Running it again starts only what is missing: running daemons say so.
set -euo pipefail

bin="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=config.sh
. "$bin/config.sh"

pyflow_read_cluster_hosts
if [[ ${#MASTERS[@]} -eq 0 ]]; then
  echo "No JobManager to start: $PYFLOW_CONF_DIR/masters lists no host. Add a line such as 'localhost:8081'." >&2
  exit 1
fi

echo "Starting cluster."
declare -A seen=()
for master in "${MASTERS[@]}"; do
  host="${master%%:*}"
  port=""
  if [[ "$master" == *:* ]]; then
    port="${master#*:}"
  fi
  instance="${seen[$host]:-0}"
  seen[$host]=$((instance + 1))
  pyflow_run_on "$host" "PYFLOW_INSTANCE=$instance" "$bin/jobmanager.sh" start "$host" "$port"
done

seen=()
for worker in ${WORKERS[@]+"${WORKERS[@]}"}; do
  instance="${seen[$worker]:-0}"
  seen[$worker]=$((instance + 1))
  pyflow_run_on "$worker" "PYFLOW_INSTANCE=$instance" "$bin/taskmanager.sh" start
done
