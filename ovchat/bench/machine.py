"""The machine a benchmark ran on: CPU, its flags, library versions, what is installed."""

from __future__ import annotations

import importlib.util
import platform
import subprocess
from pathlib import Path

from ..versions import versions as installed

VERSIONED = (
    "openvino", "openvino-genai", "optimum-intel", "transformers", "torch",
    "llama-cpp-python", "nncf",
)  # fmt: skip


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_bf16() -> bool:
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), **installed(VERSIONED)}


def llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None
