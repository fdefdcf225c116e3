#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#   scripts/run-tests.sh [pytest arguments...]
# - Debian's zookeeper package: the real ZooKeeper server the high-availability tests start on
#   127.0.0.1 (installed with apt-get when missing; needs root or sudo).
# - pyflow itself (editable) with its test extras.
# .ci/run runs exactly this script, so CI and README.md use the same command.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

if [ ! -e /usr/share/zookeeper/bin/zkServer.sh ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "Installing Debian's zookeeper package (the real ZooKeeper server for the tests)..."
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends zookeeper > /dev/null
fi

"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | { grep -v "^WARNING: \(Running pip as\|Location\)" || true; }

exec "$PYTHON" -m pytest "$@"
