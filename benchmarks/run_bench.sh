#!/usr/bin/env bash
# Reproduce the README's speed and fidelity tables for the default model (SmolLM2-135M).
#   bash benchmarks/run_bench.sh            # full bench (~15-30 min on 2 cores) + eval --recipes
#   bash benchmarks/run_bench.sh --quick    # smoke run (bench only, ovchat + optimum + torch)
# llama.cpp is included when llama-cpp-python is installed (pip install 'ovchat[llamacpp]').
# On VMs that advertise AMX without allowing it, the native build dies with SIGILL; this works:
#   CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
#     -DGGML_BMI2=ON -DGGML_AVX_VNNI=ON -DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON \
#     -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF \
#     -DGGML_AMX_BF16=OFF -DLLAVA_BUILD=OFF" .venv/bin/pip install --no-deps llama-cpp-python==0.3.36 diskcache==5.6.3
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
