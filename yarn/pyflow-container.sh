#!/usr/bin/env bash
# Entry point of every pyflow container on YARN: the ApplicationMaster (which runs the
# JobManager) and each TaskManager. skein runs it in the container's working directory, where
# YARN has localized what the client shipped (pyflow/deploy/yarn/shipping.py):
#   pyflow-lib/        pyflow itself, first on PYTHONPATH: the containers run the client's pyflow
#   pyflow-job/        the job file and the local modules it imports (also on PYTHONPATH)
#   environment/       a packed Python environment, when yarn.python-environment is set
#   pyflow-conf.yaml   the client's configuration (PYFLOW_CONF_DIR)
# Usage: bash pyflow-container.sh jobmanager|taskmanager [arguments of the Python entry point]
set -euo pipefail

role="${1:-}"
shift || true
case "$role" in
  jobmanager) module=pyflow.deploy.yarn.application_master ;;
  taskmanager) module=pyflow.deploy.yarn.taskmanager ;;
  *) echo "pyflow-container.sh: unknown role '$role'; use jobmanager or taskmanager" >&2; exit 2 ;;
esac

if [ -d environment ]; then
  # venv-pack and conda-pack archives both carry an activate script that fixes PATH
  if [ -f environment/bin/activate ]; then
    set +u
    # shellcheck disable=SC1091
    source environment/bin/activate
    set -u
  fi
  python="$PWD/environment/bin/python"
else
  python="${PYFLOW_PYTHON:-python3}"
fi
if ! command -v "$python" >/dev/null 2>&1; then
  echo "pyflow: the Python interpreter '$python' does not exist on $(hostname); set python.executable" \
       "to the cluster's Python, or ship one with yarn.python-environment" >&2
  exit 127
fi

export PYTHONPATH="$PWD/pyflow-lib:$PWD/pyflow-job${PYTHONPATH:+:$PYTHONPATH}"
export PYFLOW_CONF_DIR="$PWD"
if [ -n "${LOG_DIRS:-}" ]; then
  # YARN collects the container's log folder (yarn logs -applicationId ...)
  export PYFLOW_LOG_DIR="${LOG_DIRS%%,*}"
fi
exec "$python" -m "$module" "$@"
