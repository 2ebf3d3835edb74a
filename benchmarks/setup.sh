#!/usr/bin/env bash
# Create benchmarks/.venv with oxanus_sync (editable) and the job systems it is compared with.
#
#     bash benchmarks/setup.sh            # then: benchmarks/.venv/bin/python -m benchmarks
#
# PYTHON selects the interpreter (default: python3). Running it again upgrades the
# environment in place to the versions in benchmarks/requirements.txt.
set -euo pipefail

benchmarks_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository_root="$(dirname "$benchmarks_dir")"
venv="$benchmarks_dir/.venv"

"${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$repository_root" -r "$benchmarks_dir/requirements.txt"
"$venv/bin/python" -m pip freeze --exclude-editable > "$venv/installed.txt"
echo "installed into $venv:"
grep -i -E '^(rq|dramatiq|huey|celery|kombu|redis|hiredis)==' "$venv/installed.txt"
