#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#   scripts/run-tests.sh [pytest arguments...]
# - Debian's zookeeper package: the real ZooKeeper server the high-availability tests start on
#   127.0.0.1 (installed with apt-get when missing; needs root or sudo).
# - Debian's chromium and chromium-driver packages: the headless browser (driven by selenium) of
#   the Web UI tests (installed with apt-get when missing; needs root or sudo).
# - pyflow itself (editable) with its test extras.
# .ci/run runs exactly this script, so CI and README.md use the same command.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}

# the Debian packages the tests need, installed when missing (one apt-get run for all of them)
PACKAGES=()
[ -e /usr/share/zookeeper/bin/zkServer.sh ] || PACKAGES+=(zookeeper)
[ -x /usr/bin/chromium ] || PACKAGES+=(chromium)
[ -x /usr/bin/chromedriver ] || PACKAGES+=(chromium-driver)
if [ ${#PACKAGES[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  echo "Installing Debian packages for the tests: ${PACKAGES[*]}..."
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" > /dev/null
fi

"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | { grep -v "^WARNING: \(Running pip as\|Location\)" || true; }

exec "$PYTHON" -m pytest "$@"
