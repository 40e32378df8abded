#!/usr/bin/env bash
# Command 2 of the quick start (and what CI runs): set up .venv with test extras and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
workers="${RLX_TEST_WORKERS:-2}"
exec .venv/bin/python -m pytest -q -n "$workers" --durations=15 "$@"
