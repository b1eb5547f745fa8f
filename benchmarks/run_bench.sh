#!/usr/bin/env bash
# Reproduce the README's speed and fidelity tables for the default model (SmolLM2-135M).
#   bash benchmarks/run_bench.sh            # full bench (~15-30 min on 2 cores) + eval --recipes
#   bash benchmarks/run_bench.sh --quick    # smoke run (bench only, ovchat + seed + torch)
# llama.cpp is included when llama-cpp-python is installed (pip install 'ovchat[llamacpp]').
set -euo pipefail
cd "$(dirname "$0")/.."
OVCHAT=${OVCHAT:-.venv/bin/ovchat}
OUT=benchmarks/results
mkdir -p "$OUT"
if [[ "${1:-}" == "--quick" ]]; then
  exec "$OVCHAT" bench --quick --json "$OUT/bench-quick.json"
fi
"$OVCHAT" bench --json "$OUT/bench-smollm2.json" --chart "$OUT/bench-smollm2.png" --markdown
"$OVCHAT" eval --recipes --json "$OUT/eval-smollm2.json" --markdown
