"""llama.cpp's own HF → GGUF conversion and quantization, for `ovchat bench --shape`.

llama.cpp's converter (convert_hf_to_gguf.py, its `conversion` package and its gguf-py) is not
in any wheel: it ships in llama-cpp-python's source distribution on PyPI. The installed
llama-cpp-python's own sdist is fetched once with pip (PyPI only, no Hugging Face) and just the
converter's files are kept in ovchat's cache. $OVCHAT_LLAMA_CPP_DIR points to a llama.cpp
checkout instead. Quantization is llama.cpp's, through llama-cpp-python's
`llama_model_quantize` (the same code as the `llama-quantize` tool).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from ..errors import ExportError, require
from ..paths import file_lock, home

ENV_LLAMA_CPP_DIR = "OVCHAT_LLAMA_CPP_DIR"
DIST = "llama-cpp-python"
# What the converter needs from the source tree (about 2 MB of the 77 MB sdist).
CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
# llama_ftype values (llama.h) of the types the bench compares and the GGUF tests make.
QUANT_TYPES = {"Q4_0": 2, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18, "Q8_0": 7, "F16": 1}
PIP_TIMEOUT_S = 900


def converter_dir() -> Path:
    """A llama.cpp source tree holding convert_hf_to_gguf.py: $OVCHAT_LLAMA_CPP_DIR, else the
    installed llama-cpp-python's own sources, fetched from PyPI once into the cache."""
    env = os.environ.get(ENV_LLAMA_CPP_DIR)
    if env:
        path = Path(env).expanduser()
        if not (path / "convert_hf_to_gguf.py").is_file():
            raise ExportError(f"{path} has no convert_hf_to_gguf.py", "point to a llama.cpp tree")
        return path
    require("llama_cpp", "llamacpp", "converting to GGUF")
    version = metadata.version(DIST)
    dest = home() / "tools" / f"llama.cpp-{version}"
    with file_lock(dest.with_name(dest.name + ".lock")):
        if not (dest / "convert_hf_to_gguf.py").is_file():
            _fetch_converter(version, dest)
    return dest


def _fetch_converter(version: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ovchat-sdist-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        cmd += ["-q", "-d", tmp, f"{DIST}=={version}"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        archives = list(Path(tmp).glob("*.tar.gz"))
        if r.returncode != 0 or not archives:
            raise ExportError(
                f"could not fetch the {DIST} {version} sources from PyPI: "
                f"{(r.stderr.strip().splitlines() or ['no archive'])[-1]}",
                f"set {ENV_LLAMA_CPP_DIR} to a llama.cpp source tree",
            )
        work = dest.with_name(dest.name + ".partial")
        shutil.rmtree(work, ignore_errors=True)
        with tarfile.open(archives[0]) as tar:
            for m in tar.getmembers():
                _, _, rest = m.name.partition("/vendor/llama.cpp/")
                if rest and rest.startswith(CONVERTER_FILES) and (m.isfile() or m.isdir()):
                    m.name = rest
                    tar.extract(m, work, filter="data")
        work.rename(dest)


def hf_to_gguf(hf_dir: Path, out: Path, outtype: str = "f16") -> Path:
    """llama.cpp's converter as a subprocess (its own gguf-py first on the path: the PyPI
    `gguf` may lag the converter)."""
    src = converter_dir()
    path = (str(src / "gguf-py"), str(src), os.environ.get("PYTHONPATH", ""))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    env.pop("NO_LOCAL_GGUF", None)
    tmp = out.with_name(out.name + ".partial")
    cmd = [sys.executable, str(src / "convert_hf_to_gguf.py"), str(hf_dir), "--outtype", outtype,
           "--outfile", str(tmp)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        last = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        raise ExportError(f"llama.cpp's converter failed: {last}")
    tmp.rename(out)
    return out


def quantize_gguf(
    src: Path, out: Path, qtype: str, threads: int | None = None, requantize: bool = False
) -> Path:
    """llama.cpp's quantizer with its default rules (as `llama-quantize`: a tied embedding
    becomes Q6_K, or Q8_0 where its width is no multiple of 256). `requantize`: `src` may be
    quantized already (as `llama-quantize --allow-requantize`)."""
    import llama_cpp
    import llama_cpp.llama  # installs llama-cpp-python's log callback

    # The quantizer logs every tensor at INFO (hundreds of lines): only errors reach stderr.
    log = logging.getLogger("llama-cpp-python")
    level = log.level
    log.setLevel(logging.ERROR)
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = QUANT_TYPES[qtype]
    p.nthread = threads or os.cpu_count() or 1
    p.allow_requantize = requantize
    tmp = out.with_name(out.name + ".partial")
    try:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), p)
    finally:
        log.setLevel(level)
    if rc != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise ExportError(f"llama.cpp could not quantize to {qtype} (code {rc})")
    tmp.rename(out)
    return out
