#!/usr/bin/env bash
# Set everything up (idempotent) and run the whole test suite: ruff, mypy, pytest.
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
export PATH="$ROOT/.venv/bin:$PATH"
echo "== ruff"; ruff check . && ruff format --check .
echo "== mypy"; mypy
# the docs site: every page in the nav, every link and anchor resolves, the CLI reference renders
echo "== docs"; docs_out=$(mktemp -d); NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$docs_out"; rm -rf "$docs_out"
# the wheel installed outside the checkout (SKIP_WHEEL_CHECK=1 skips it locally, never under CI)
if [ -n "${CI:-}" ] || [ "${SKIP_WHEEL_CHECK:-0}" != 1 ]; then
    echo "== wheel"; bash scripts/check-wheel.sh
fi
echo "== pytest"
set +e
pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure of the suite, not a pass.
if [ "$rc" = 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit "$rc"
