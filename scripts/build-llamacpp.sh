#!/usr/bin/env bash
# Build and install llama-cpp-python (the engine `ovchat bench` compares against) for THIS
# CPU: llama.cpp's native ISA (-march=native through GGML_NATIVE=ON), with AMX turned off.
#
#   scripts/build-llamacpp.sh                 # into the Python that runs ovchat
#   PY=/path/to/python VERSION=0.3.36 scripts/build-llamacpp.sh
#
# Why the flags: on VMs whose CPUID advertises AMX but whose kernel does not grant it (no
# ARCH_REQ_XCOMP_PERM), -march=native emits AMX instructions and the default build dies with
# SIGILL. gcc lets an explicit -mno-X win over -march=native whatever the order, and all three
# are needed (-mno-amx-tile alone leaves __AMX_INT8__/__AMX_BF16__ defined). AVX2/AVX-512,
# VNNI and BF16 stay on where the CPU has them: nothing is hard-coded, so the same command
# works on AVX2-only machines. Takes ~15 min on 2 cores (140 compile steps); needs cmake and a
# C++ compiler (pip fetches cmake/ninja into the build's isolated environment).
set -euo pipefail
PY=${PY:-python}
VERSION=${VERSION:-0.3.36}
WHEELS=${WHEELS:-${TMPDIR:-/tmp}/ovchat-llamacpp-wheels}
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
mkdir -p "$WHEELS"
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
CMAKE_ARGS="-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF ${CMAKE_ARGS:-}" CFLAGS="$NOAMX" CXXFLAGS="$NOAMX" \
  "$PY" -m pip wheel --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$WHEELS"
"$PY" -m pip install --no-deps --force-reinstall "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl
"$PY" -m pip install "$WHEELS"/llama_cpp_python-"$VERSION"-*.whl  # its dependencies (diskcache, ...)
"$PY" -c "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
