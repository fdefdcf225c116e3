#!/usr/bin/env bash
# Shared settings and helpers of the cluster scripts (Flink's bin/config.sh); sourced, not run.
#
# Environment (each optional):
#   PYFLOW_HOME        the pyflow installation (default: the folder above scripts/)
#   PYFLOW_CONF_DIR    folder of pyflow-conf.yaml, masters and workers (default: $PYFLOW_HOME/conf)
#   PYFLOW_LOG_DIR     folder of the daemons' .log and .out files (default: env.log.dir of the
#                      configuration if set, else $PYFLOW_HOME/log)
#   PYFLOW_PID_DIR     folder of the pid files (default: env.pid.dir if set, else /tmp)
#   PYFLOW_PYTHON      the Python interpreter that runs the daemons (default: python3)
#   PYFLOW_IDENT_STRING  the name in the pid files' names (default: $USER)
#   PYFLOW_SSH_OPTS    options for ssh to the hosts of masters and workers that are not this one
#   PYFLOW_STOP_TIMEOUT  seconds a stopping daemon gets after SIGTERM before SIGKILL (default: 10)
#   PYFLOW_START_TIMEOUT seconds to wait for a started daemon to report it listens (default: 60)

# the variables the user set, passed on to the same scripts on other hosts (ssh)
PYFLOW_FORWARDED_VARS=()
for _var in PYFLOW_HOME PYFLOW_CONF_DIR PYFLOW_LOG_DIR PYFLOW_PID_DIR PYFLOW_PYTHON PYFLOW_IDENT_STRING \
            PYFLOW_STOP_TIMEOUT PYFLOW_START_TIMEOUT; do
  if [[ -n "${!_var:-}" ]]; then
    PYFLOW_FORWARDED_VARS+=("$_var")
  fi
done
unset _var

PYFLOW_BIN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
PYFLOW_HOME="${PYFLOW_HOME:-$(dirname "$PYFLOW_BIN_DIR")}"
PYFLOW_CONF_DIR="${PYFLOW_CONF_DIR:-$PYFLOW_HOME/conf}"
PYFLOW_PYTHON="${PYFLOW_PYTHON:-python3}"
PYFLOW_IDENT_STRING="${PYFLOW_IDENT_STRING:-${USER:-$(id -un)}}"
PYFLOW_SSH_OPTS="${PYFLOW_SSH_OPTS:-}"
PYFLOW_STOP_TIMEOUT="${PYFLOW_STOP_TIMEOUT:-10}"
PYFLOW_START_TIMEOUT="${PYFLOW_START_TIMEOUT:-60}"
HOSTNAME="$(hostname)"

# the daemons import this very pyflow
export PYTHONPATH="$PYFLOW_HOME${PYTHONPATH:+:$PYTHONPATH}"
export PYFLOW_CONF_DIR

if [[ -z "${PYFLOW_PID_DIR:-}" || -z "${PYFLOW_LOG_DIR:-}" ]]; then
  # env.pid.dir and env.log.dir of the configuration (file, PYFLOW_CONF_* variables)
  _dirs="$("$PYFLOW_PYTHON" -c '
import sys
from pyflow.config import Configuration, options
conf = Configuration.load(sys.argv[1])
print(conf.get(options.PID_DIR))
print(conf.get(options.LOG_DIR))
' "$PYFLOW_CONF_DIR")" || {
    echo "Cannot read the configuration in $PYFLOW_CONF_DIR with $PYFLOW_PYTHON (see above); set PYFLOW_PYTHON to a Python that has pyflow's dependencies, or fix the file." >&2
    exit 1
  }
  _conf_pid_dir="$(sed -n 1p <<<"$_dirs")"
  _conf_log_dir="$(sed -n 2p <<<"$_dirs")"
  PYFLOW_PID_DIR="${PYFLOW_PID_DIR:-${_conf_pid_dir:-/tmp}}"
  PYFLOW_LOG_DIR="${PYFLOW_LOG_DIR:-${_conf_log_dir:-$PYFLOW_HOME/log}}"
  unset _dirs _conf_pid_dir _conf_log_dir
fi
# exported: the scripts this one runs on this host source config.sh again and need not start
# Python to read the same two folders (other hosts get only PYFLOW_FORWARDED_VARS, as above)
export PYFLOW_PID_DIR PYFLOW_LOG_DIR

# pyflow_is_local_host HOST: whether HOST names this machine (then no ssh is needed)
pyflow_is_local_host() {
  local host="$1"
  case "$host" in
    localhost | 127.0.0.1 | ::1 | localhost.localdomain) return 0 ;;
  esac
  [[ "$host" == "$HOSTNAME" || "$host" == "$(hostname -f 2>/dev/null || true)" \
     || "$host" == "$(hostname -s 2>/dev/null || true)" ]]
}

# pyflow_read_hosts FILE: the entries of a masters or workers file, one a line; comments (#) and
# blank lines are skipped, spaces trimmed
pyflow_read_hosts() {
  local file="$1" line
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%%#*}"
    line="${line#"${line%%[![:space:]]*}"}"
    line="${line%"${line##*[![:space:]]}"}"
    if [[ -n "$line" ]]; then
      echo "$line"
    fi
  done < "$file"
}

# pyflow_hosts_file NAME: the path of conf/masters or conf/workers, or an error if it is missing
pyflow_hosts_file() {
  local file="$PYFLOW_CONF_DIR/$1"
  if [[ ! -f "$file" ]]; then
    echo "No $1 file: $file does not exist. List the $1 in it, one a line (see docs/operations.md)." >&2
    exit 1
  fi
  echo "$file"
}

# pyflow_read_cluster_hosts: the arrays MASTERS and WORKERS, the entries of conf/masters and
# conf/workers
pyflow_read_cluster_hosts() {
  local masters_file workers_file
  masters_file="$(pyflow_hosts_file masters)" || exit 1
  workers_file="$(pyflow_hosts_file workers)" || exit 1
  mapfile -t MASTERS < <(pyflow_read_hosts "$masters_file")
  mapfile -t WORKERS < <(pyflow_read_hosts "$workers_file")
}

# pyflow_run_on HOST [VAR=VALUE]... SCRIPT ARG...: run a script of this installation on HOST, here
# if HOST is this machine, else over ssh at the same path (as Flink's config.sh), with the
# variables the user set
pyflow_run_on() {
  local host="$1"
  shift
  local assignments=()
  while [[ $# -gt 0 && "$1" == *=* && "$1" != /* ]]; do
    assignments+=("$1")
    shift
  done
  if pyflow_is_local_host "$host"; then
    env ${assignments[@]+"${assignments[@]}"} "$@"
  else
    local remote="" var
    for var in ${PYFLOW_FORWARDED_VARS[@]+"${PYFLOW_FORWARDED_VARS[@]}"}; do
      remote+="$var=$(printf '%q' "${!var}") "
    done
    for var in ${assignments[@]+"${assignments[@]}"}; do
      remote+="$(printf '%q' "$var") "
    done
    remote+="/bin/bash -l $(printf '%q ' "$@")"
    # shellcheck disable=SC2086 # PYFLOW_SSH_OPTS holds several words
    ssh -n $PYFLOW_SSH_OPTS "$host" -- "env $remote"
  fi
}
