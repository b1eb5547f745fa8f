"""GGUF files through openvino-genai's reader with the runtime install alone (torch,
transformers, optimum and nncf hidden), every common tensor type kept in its own blocks, and
the result checked tensor by tensor against gguf-py's dequantization (llama.cpp's reference
code) and, through the model, against the dequantized (F16) file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ggufcheck import rel_diffs
from ggufquant import requantize

pytestmark = pytest.mark.gguf

EXPORT_STACK = ("torch", "transformers", "optimum", "nncf", "accelerate")
BLOCKED_CLI = (
    "import sys, importlib.abc\n"
    "class Block(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    f"        if name.split('.')[0] in {EXPORT_STACK!r}:\n"
    "            raise ModuleNotFoundError(name)\n"
    "sys.meta_path.insert(0, Block())\n"
    "from ovchat.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    f"heavy = {{m.split('.')[0] for m in sys.modules}} & {set(EXPORT_STACK)!r}\n"
    "print('HEAVY:' + ','.join(sorted(heavy)))\n"
    "sys.exit(rc)\n"
)
# Every common type on some layer of SmolLM2 (its 576-wide rows take no K-quant: ffn_down,
# 1536 wide, carries the three K types, ten layers each).
MIXED = {"attn_q": "Q5_0", "attn_k": "Q5_1", "attn_v": "Q8_0", "attn_output": "Q4_0",
         "ffn_gate": "Q4_1", "ffn_up": "Q5_0",
         **{f"{i}.ffn_down": ("Q4_K", "Q5_K", "Q6_K")[i // 10] for i in range(30)}}  # fmt: skip
TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K")
TEXT = (
    "The history of the city begins with a small settlement on the river. Over the centuries "
    "it grew into a market town, then a centre of trade and learning. Its bridges, churches "
    "and libraries drew visitors from far away, and many of them stayed. Today the old town "
    "is a place of narrow streets and busy squares, where people meet to talk, eat and "
    "listen to music in the evening."
)


def blocked_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OVCHAT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_CLI, *args],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def files(smollm2_gguf, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gguf-types")
    mixed = requantize(smollm2_gguf, d / "mixed.gguf", MIXED)
    every = {k: "F16" for k in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
                                "ffn_up", "ffn_down", "token_embd")}  # fmt: skip
    return {"mixed": mixed, "f16": requantize(mixed, d / "f16.gguf", every)}


@pytest.fixture(scope="module")
def pulled(files, tmp_path_factory) -> dict[str, object]:
    """`ovchat pull mixed.gguf` with the export stack hidden, and the F16 reference exported."""
    home = tmp_path_factory.mktemp("home")
    r = blocked_cli("pull", str(files["mixed"]), "mixed", home=home)
    ref = tmp_path_factory.mktemp("ref") / "f16"
    r2 = blocked_cli("export", str(files["f16"]), str(ref), home=home)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.strip().splitlines()[-1] == "HEAVY:", r2.stdout  # export: runtime alone too
    return {"run": r, "home": home, "ref": ref}


def _export_dir(pulled) -> Path:
    r = blocked_cli("show", "mixed", "--json", home=pulled["home"])
    assert r.returncode == 0, r.stderr
    return Path(json.loads("\n".join(r.stdout.strip().splitlines()[:-1]))["path"])


def test_pull_needs_no_export_stack(pulled):
    r = pulled["run"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY:", r.stdout
    assert "route: openvino-genai" in r.stderr


def test_every_type_is_kept_in_its_own_blocks(pulled):
    d = _export_dir(pulled)
    m = json.loads((d / "ovchat.json").read_text())
    assert m["source"]["route"] == "openvino-genai"
    g = m["recipe"]["applied"]["gguf"]
    kept = {**g["kept_as_openvino_genai_wrote"], **g["blocks_written_by_ovchat"]}
    assert set(TYPES) <= set(kept), g
    assert not g["dequantized_to_f16"]
    assert g["max_rel_diff_vs_gguf"] <= 2**-9
    # 4-bit types stay u4; the 5-bit ones need u8 (OpenVINO has no u5); no f16 matrices left.
    import openvino as ov

    model = ov.Core().read_model(str(d / "openvino_model.xml"))
    big = [op.get_element_type().get_type_name() for op in model.get_ops()
           if op.get_type_name() == "Constant" and len(op.get_shape()) >= 2
           and op.get_shape()[-1] > 1 and np.prod(list(op.get_shape())) >= 576 * 192]  # fmt: skip
    assert set(big) <= {"u4", "u8", "i64", "i32"}, set(big)
    # u4: Q4_0 attn_output, Q4_1 ffn_gate (30 each), Q4_K ffn_down (10); u8: Q5_0 attn_q and
    # ffn_up, Q5_1 attn_k, Q8_0 attn_v (30 each), Q5_K and Q6_K ffn_down (10 each), token_embd
    assert (big.count("u4"), big.count("u8")) == (70, 141)


def test_genai_alone_rounds_q4_1_and_q4_k(pulled):
    """Why ovchat writes those blocks itself: genai's own weights for them differ from the
    GGUF's by far more than f16 rounding (its zero points are rounded to integers), while
    its Q4_0 and Q8_0 are exact and kept."""
    g = json.loads((_export_dir(pulled) / "ovchat.json").read_text())["recipe"]["applied"]["gguf"]
    diff = g["openvino_genai_max_rel_diff"]
    assert diff["Q4_1"] > 10 * 2**-9 and diff["Q4_K"] > 10 * 2**-9
    assert diff["Q4_0"] == 0 and diff["Q8_0"] == 0
    assert {"Q4_0", "Q8_0"} <= set(g["kept_as_openvino_genai_wrote"])


def test_weights_match_the_gguf_tensor_by_tensor(pulled, files):
    diffs = rel_diffs(_export_dir(pulled) / "openvino_model.xml", files["mixed"])
    bad = {k: v for k, v in diffs.items() if v[1] > 2**-9}
    assert not bad, bad
    assert set(TYPES) <= {kind for kind, _ in diffs.values()}, diffs


def _run(ir: Path, ids: list[int]) -> np.ndarray:
    import openvino as ov

    # f32 arithmetic and no dynamic quantization of activations: the weights are compared,
    # not the CPU plugin's int8 activations (with them top-1 drops to about 0.94 here).
    config = {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0"}
    model = ov.Core().compile_model(str(ir / "openvino_model.xml"), "CPU", config)
    n = len(ids)
    out = model.create_infer_request().infer({
        "input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, n), np.int64),
        "position_ids": np.arange(n, dtype=np.int64)[None], "beam_idx": np.zeros(1, np.int32),
    })  # fmt: skip
    return np.array(out["logits"])[0]


def test_model_gives_the_dequantized_files_numbers(pulled):
    import openvino as ov
    import openvino_tokenizers  # noqa: F401 - registers the tokenizer ops

    d = _export_dir(pulled)
    tok = ov.Core().compile_model(str(d / "openvino_tokenizer.xml"), "CPU")
    ids = [int(i) for i in np.array(tok([TEXT])["input_ids"])[0]]
    got, want = _run(d, ids), _run(pulled["ref"], ids)

    def nll(logits: np.ndarray) -> float:
        x = logits[:-1] - logits[:-1].max(-1, keepdims=True)
        logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
        return float(-logp[np.arange(len(ids) - 1), ids[1:]].mean())

    ratio = float(np.exp(nll(got) - nll(want)))
    top1 = float((got.argmax(-1) == want.argmax(-1)).mean())
    assert abs(ratio - 1) <= 0.01, ratio
    assert top1 >= 0.98, top1
