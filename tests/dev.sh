#!/usr/bin/env bash
# The developer entry point (README's two commands use it; .ci/run calls `tests/dev.sh test`).
#   tests/dev.sh demo     set up, bring up a local node-tier cluster, run podline and an example Pipeline
#   tests/dev.sh test     set up, lint, then run every test tier (unit, api, node); extra args go to pytest
#   tests/dev.sh setup    only set up: Python venv (.venv) + Debian packages + cluster binaries
#   tests/dev.sh lint     ruff check, ruff format --check and mypy strict (the venv only)
#   tests/dev.sh down     tear the demo cluster down
# PODLINE_TIERS=unit skips installing/building the cluster (the cluster tiers then skip, outside CI).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
t0=$(date +%s)
phase() { printf '\n[dev %s +%ss] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - t0 ))" "$*"; }

python_env() {
  local stamp=.venv/.podline-installed
  if [ ! -x .venv/bin/python ]; then
    phase "creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    phase "installing podline and its test dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[dev,bench]'
    touch "$stamp"
  fi
}

cluster_setup() {
  if [ "${PODLINE_TIERS:-node}" = unit ]; then
    phase "PODLINE_TIERS=unit: not setting up the test cluster"
    return
  fi
  phase "setting up the test cluster (${PODLINE_TIERS:-node} tier; the first build takes ~10-20 minutes)"
  tests/cluster/setup.sh "${PODLINE_TIERS:-node}"
}

lint() {
  phase "ruff check, ruff format --check, mypy (strict)"
  local failed=0
  .venv/bin/python -m ruff check . || failed=1
  .venv/bin/python -m ruff format --check . || failed=1
  .venv/bin/python -m mypy || failed=1
  return "$failed"
}

cmd=${1:-test}
shift || true
case "$cmd" in
  setup) python_env; cluster_setup ;;
  test)
    python_env
    linted=0
    lint || linted=$?
    cluster_setup
    phase "running the tests"
    tested=0
    .venv/bin/python -m pytest "$@" || tested=$?
    phase "tests done (pytest status $tested, lint status $linted)"
    [ "$tested" -eq 0 ] && [ "$linted" -eq 0 ]
    ;;
  demo)
    python_env
    PODLINE_TIERS=node cluster_setup
    phase "starting the demo"
    .venv/bin/python -m tests.cluster demo "$@"
    ;;
  lint) python_env; lint ;;
  down) .venv/bin/python -m tests.cluster down ;;
  *) echo "usage: tests/dev.sh {demo|test|setup|lint|down} [args]" >&2; exit 2 ;;
esac
