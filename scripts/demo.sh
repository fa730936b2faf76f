#!/usr/bin/env bash
# Set everything up (idempotent) and run the main job: the whole chain on generated videos.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
exec "$ROOT/.venv/bin/emotions-data" demo --out "${1:-$ROOT/demo-out}"
