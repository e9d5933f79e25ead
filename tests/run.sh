#!/usr/bin/env bash
# Install everything the test suite needs, then run all of it (unit, server, browser,
# notebooks). Used as-is by CI (.ci/run). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# The browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  else
    echo "tests/run.sh: /usr/bin/chromium is missing; install it with: sudo apt-get install chromium" >&2
    exit 1
  fi
fi

# The load tests (tests/ui/test_load.py) hit the REST API with Debian's wrk.
if [ ! -x /usr/bin/wrk ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
  else
    echo "tests/run.sh: /usr/bin/wrk is missing; install it with: sudo apt-get install wrk" >&2
    exit 1
  fi
fi

# The Prometheus source tests run Debian's Prometheus and node exporter (never a mock).
if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/prometheus-node-exporter ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q prometheus prometheus-node-exporter
  else
    echo "tests/run.sh: /usr/bin/prometheus is missing; install it with: sudo apt-get install prometheus prometheus-node-exporter" >&2
    exit 1
  fi
fi
# The store tests run a throwaway cluster of Debian's PostgreSQL (tests/postgres.py).
if [ ! -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
  else
    echo "tests/run.sh: PostgreSQL is missing; install it with: sudo apt-get install postgresql" >&2
    exit 1
  fi
fi
if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  export PG_BIN
fi

exec .venv/bin/python -m pytest "$@"
