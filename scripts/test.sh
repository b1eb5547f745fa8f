#!/usr/bin/env bash
# Set everything up from scratch (idempotent), then lint, type-check and run the test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not real" -x
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
PY=.venv/bin/python
"$PY" -m ruff check .
"$PY" -m ruff format --check .
"$PY" -m mypy ovchat
# The documentation site: a broken link or anchor, or a nav entry without its page, fails.
SITE=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict --site-dir "$SITE"
rm -rf "$SITE"
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
