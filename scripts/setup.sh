#!/usr/bin/env bash
# Set up ovchat in ./.venv from scratch: CPU PyTorch, the locked dependencies, ovchat itself.
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--browser]
#   --browser  also install Debian's chromium for the web-page tests (needs root + apt).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${OVCHAT_VENV:-.venv}
TORCH_VERSION=2.13.0

if [ ! -x "$VENV/bin/python" ]; then
  echo "ovchat setup: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.ovchat-lock"
if ! cmp -s requirements.lock "$STAMP" 2>/dev/null; then
  echo "ovchat setup: installing torch $TORCH_VERSION (CPU) and the locked dependencies" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$TORCH_VERSION"
  # --no-deps: the lock is complete, and it deliberately leaves out torchvision (see lock header).
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements.lock
  cp requirements.lock "$STAMP"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .

if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  echo "ovchat setup: installing Debian chromium for the browser tests" >&2
  if command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2 \
      || echo "ovchat setup: chromium not installed; browser tests will be skipped" >&2
  fi
fi
