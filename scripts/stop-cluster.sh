#!/usr/bin/env bash
# Stop a standalone session cluster (Flink's stop-cluster.sh): a TaskManager for every line of
# conf/workers, then every JobManager on the hosts of conf/masters; this machine's directly,
# others over ssh. Processes are stopped by the pids in the pid files (SIGTERM, then SIGKILL after
# PYFLOW_STOP_TIMEOUT seconds), never by name.
set -euo pipefail

bin="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=config.sh
. "$bin/config.sh"

pyflow_read_cluster_hosts

for worker in ${WORKERS[@]+"${WORKERS[@]}"}; do
  pyflow_run_on "$worker" "$bin/taskmanager.sh" stop
done

declare -A done_hosts=()
for master in ${MASTERS[@]+"${MASTERS[@]}"}; do
  host="${master%%:*}"
  if [[ -z "${done_hosts[$host]:-}" ]]; then
    done_hosts[$host]=1
    pyflow_run_on "$host" "$bin/jobmanager.sh" stop-all
  fi
done
