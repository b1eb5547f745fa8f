"""GGUF files made by llama.cpp's own quantizer (`llama_model_quantize`, as `llama-quantize
--allow-requantize`) from the shipped SmolLM2 GGUF: Q4_K_M, Q5_K_M, Q6_K and Q8_0, exported
with the runtime alone. The manifest names every type the file holds, each quantized tensor
is kept in its own blocks (none dequantized), and every weight matrix the OpenVINO model
computes is the file's, tensor by tensor (gguf-py's dequantization as the reference).

llama-cpp-python is not part of the default install: without it the module is skipped."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from ggufcheck import rel_diffs
from test_gguf_genai import blocked_cli

pytest.importorskip("llama_cpp", reason="llama-cpp-python (the llamacpp extra) not installed")
pytestmark = pytest.mark.gguf

# What llama.cpp makes of SmolLM2 (576-wide rows take no K-quant: they fall back to Q5_0,
# Q5_1 or Q8_0), as its quantizer reports it.
MIXES = {
    "Q4_K_M": {"Q5_0", "Q4_K", "Q6_K", "Q8_0"},
    "Q5_K_M": {"Q5_1", "Q5_K", "Q6_K", "Q8_0"},
    "Q6_K": {"Q6_K", "Q8_0"},
    "Q8_0": {"Q8_0"},
}


@pytest.fixture(scope="module")
def made(smollm2_gguf, tmp_path_factory) -> dict[str, Path]:
    from ovchat.bench.gguf_tools import quantize_gguf

    d = tmp_path_factory.mktemp("llamacpp")
    return {q: quantize_gguf(smollm2_gguf, d / f"{q}.gguf", q, requantize=True) for q in MIXES}


@pytest.mark.parametrize("qtype", list(MIXES))
def test_llama_cpp_file_is_kept_exactly(made, qtype, tmp_path):
    import gguf

    src = made[qtype]
    kinds = Counter(t.tensor_type.name for t in gguf.GGUFReader(str(src)).tensors)
    assert set(kinds) - {"F32"} == MIXES[qtype], kinds  # the mix this test is about
    out = tmp_path / "ov"
    r = blocked_cli("export", str(src), str(out), home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY:", r.stdout  # the runtime alone
    m = json.loads((out / "ovchat.json").read_text())
    assert m["source"]["route"] == "openvino-genai"
    g = m["recipe"]["applied"]["gguf"]
    assert g["tensor_types"] == dict(kinds)
    kept = Counter({**g["kept_as_openvino_genai_wrote"], **g["blocks_written_by_ovchat"]})
    assert kept == Counter({k: n for k, n in kinds.items() if k != "F32"}), g
    assert not g["dequantized_to_f16"]
    diffs = rel_diffs(out / "openvino_model.xml", src)
    assert Counter(kind for kind, _ in diffs.values()) == kept
    bad = {k: v for k, v in diffs.items() if v[1] > 2**-9}
    assert not bad, bad


def test_bench_runs_both_engines_on_the_same_file(made, tmp_path):
    """`ovchat bench --gguf FILE`: llama.cpp on FILE, ovchat on its own import of FILE, in
    alternating rounds, every figure for both; the import is made once and reused."""
    from conftest import run_cli

    src = made["Q4_K_M"]
    env = {"OVCHAT_HOME": str(tmp_path / "home")}
    args = ("bench", "--gguf", str(src), "--engines", "ovchat,llamacpp", "--quick",
            "--rounds", "2", "--json")  # fmt: skip
    r = run_cli(*args, env=env, timeout=1800)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["settings"]["same_gguf"] is True
    assert data["settings"]["gguf"].endswith(f"/{src.name}")  # the JSON shortens temp paths
    (imported,) = (tmp_path / "home" / "bench" / "gguf").glob(f"{src.stem}-*/")
    assert data["model"].endswith(imported.name)
    manifest = json.loads((imported / "ovchat.json").read_text())
    assert Path(manifest["source"]["model"]) == src.resolve()
    assert manifest["recipe"]["asked"]["weight_format"] == "gguf"
    assert [e["engine"] for e in data["engines"]] == ["ovchat", "llamacpp"]
    for e in data["engines"]:
        assert e["ok"], e["error"]
        for key in ("decode_tps", "prefill_tps", "ttft_short_ms", "peak_rss_mb", "size_mb"):
            assert all(v > 0 for v in e["metrics"][key]["values"]), (e["engine"], key)
    # llama.cpp's size is the file's; the engines alternated (round 2 starts with llamacpp)
    llama = data["engines"][1]["metrics"]["size_mb"]["median"]
    assert llama == pytest.approx(src.stat().st_size / 2**20)
    assert "round 2/2, 1/2] llamacpp" in r.stderr
    assert "importing" in r.stderr
    again = run_cli("bench", "-m", str(src), "--engines", "ovchat", "--quick", "--json",
                    env=env, timeout=1800)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "importing" not in again.stderr
    assert json.loads(again.stdout)["model"] == data["model"]
