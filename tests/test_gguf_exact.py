"""The `gguf` weight format: a GGUF's own blocks kept in the IR (openvino-genai's route for this
llama file; gguf_exact's block helpers for the transformers route), checked
against gguf-py's dequantization (llama.cpp's own reference code) and, through the exported
model, logits against PyTorch on the dequantized GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ggufbuild import write_tiny_gguf

from ovchat.convert import gguf_exact
from ovchat.errors import OptionError

# Q4_0, Q4_1 and Q8_0 on some layer; the mixed file adds Q5_0 (which genai cannot read).
EXACT = {"attn_q": "Q4_1", "attn_k": "Q4_1", "attn_v": "Q4_0", "attn_output": "Q8_0",
         "ffn_gate": "Q4_1", "ffn_up": "Q4_1", "ffn_down": "Q4_0", "token_embd": "Q8_0",
         "output": "Q4_1"}  # fmt: skip
MIXED = {**EXACT, "ffn_up": "Q5_0"}


class _Tensor:  # what GGUFReader yields, enough for gguf_exact.blocks
    def __init__(self, kind: str, data: np.ndarray, shape: list[int]) -> None:
        import gguf

        self.tensor_type = gguf.GGMLQuantizationType[kind]
        self.data = data
        self.shape = shape
        self.name = "t"


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q8_0"])
def test_blocks_decode_as_llama_cpp_does(kind):
    import gguf

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (16, 96)).astype(np.float32)
    w[3, :32] = 0.25  # a block of equal weights: Q4_1's zero scale
    q = gguf.quants.quantize(w, gguf.GGMLQuantizationType[kind])
    want = gguf.quants.dequantize(q, gguf.GGMLQuantizationType[kind])
    b = gguf_exact.blocks(_Tensor(kind, q, [96, 16]))
    assert np.array_equal(gguf_exact.dequantize(b), want)
    # what the IR computes (f16 scale and zero point) is the same weights
    got = gguf_exact.ir_dequantize(b)
    assert np.abs(got - want).max() <= 1e-3 * np.abs(want).max()
    assert np.array_equal(got[3, :32], want[3, :32])


def test_unmapped_type_is_refused_by_blocks():
    import gguf

    q = gguf.quants.quantize(np.ones((2, 32), np.float32), gguf.GGMLQuantizationType.Q5_0)
    with pytest.raises(ValueError, match="no exact mapping"):
        gguf_exact.blocks(_Tensor("Q5_0", q, [32, 2]))


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama_hf, tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf-exact")
    return {k: write_tiny_gguf(tiny_llama_hf, root / f"{k}.gguf", t)
            for k, t in (("exact", EXACT), ("mixed", MIXED))}  # fmt: skip


@pytest.fixture(scope="module")
def exported(tiny_gguf, tmp_path_factory):
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    root = tmp_path_factory.mktemp("gguf-exact-ir")
    return {k: export(str(p), root / k, Recipe(weight_format="gguf"), progress=lambda s: None)
            for k, p in tiny_gguf.items()}  # fmt: skip


def _logits(exported_dir: Path, hf_dir: Path, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from optimum.intel.openvino import OVModelForCausalLM
    from transformers import AutoModelForCausalLM

    from ovchat.evals.fidelity import EXPORT_PROPERTIES

    x = torch.tensor([ids])
    ov = OVModelForCausalLM.from_pretrained(str(exported_dir), ov_config=dict(EXPORT_PROPERTIES))
    ref = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        a = ov(input_ids=x, attention_mask=torch.ones_like(x)).logits[0].numpy()
        b = ref(input_ids=x).logits[0].numpy()
    return a, b


def test_exact_export_gives_the_dequantized_models_logits(exported, tiny_gguf, tmp_path, capfd):
    from ovchat.convert.gguf import gguf_to_hf

    m = json.loads((exported["exact"] / "ovchat.json").read_text())
    applied = m["recipe"]["applied"]
    assert m["recipe"]["asked"]["weight_format"] == "gguf"
    g = applied["gguf"]
    assert m["source"]["route"] == "openvino-genai"
    kept = {**g["kept_as_openvino_genai_wrote"], **g["blocks_written_by_ovchat"]}
    assert kept == {"Q4_1": 9, "Q4_0": 4, "Q8_0": 3} and not g["dequantized_to_f16"]
    assert set(applied["share_by_type"]) <= {"u4", "u8", "f16", "f32"}  # no re-quantization
    capfd.readouterr()
    hf = gguf_to_hf(tiny_gguf["exact"], tmp_path / "ref")
    assert "GGUF tensors" not in capfd.readouterr().err  # transformers' own bar stays quiet
    ids = list(range(3, 60))
    got, want = _logits(exported["exact"], hf, ids)
    assert np.abs(got - want).max() < 2e-3 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_q5_0_is_kept_exactly_too(exported, tiny_gguf, tmp_path):
    """openvino-genai cannot read Q5_0: ovchat gives it F16 and writes the blocks as u8."""
    from ovchat.convert.gguf import gguf_to_hf

    g = json.loads((exported["mixed"] / "ovchat.json").read_text())["recipe"]["applied"]["gguf"]
    assert g["blocks_written_by_ovchat"]["Q5_0"] == 2 and not g["dequantized_to_f16"]
    hf = gguf_to_hf(tiny_gguf["mixed"], tmp_path / "ref")
    got, want = _logits(exported["mixed"], hf, list(range(3, 60)))
    assert np.abs(got - want).max() < 2e-3 * np.abs(want).max()
    assert (got.argmax(-1) == want.argmax(-1)).all()


def test_a_file_genai_refuses_takes_the_transformers_route(tiny_llama_hf, tmp_path):
    """No general.file_type: openvino-genai's reader fails; with the export extra installed
    the export goes on through transformers, and says so."""
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    src = write_tiny_gguf(tiny_llama_hf, tmp_path / "old.gguf", EXACT, file_type=False)
    said: list[str] = []
    out = export(str(src), tmp_path / "ir", Recipe(weight_format="gguf"), progress=said.append)
    m = json.loads((out / "ovchat.json").read_text())
    assert m["source"]["route"] == "transformers"
    assert any("taking the transformers route instead" in s for s in said), said
    assert m["recipe"]["applied"]["gguf"]["exact_tensors"] == {"Q4_1": 9, "Q4_0": 4, "Q8_0": 3}


def test_gguf_format_needs_a_gguf_source(tiny_llama_hf, tmp_path):
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    with pytest.raises(OptionError, match=r"not a \.gguf file") as e:
        export(str(tiny_llama_hf), tmp_path / "x", Recipe(weight_format="gguf"))
    assert e.value.param == "weight_format"
    assert not (tmp_path / "x").exists()


def test_cli_default_for_a_gguf_source_is_gguf():
    import argparse

    from ovchat.verbs.export import add_arguments, recipe_from_args

    p = argparse.ArgumentParser()
    add_arguments(p)

    def fmt(*argv: str) -> str:
        args = p.parse_args(["m.gguf", "out", *argv])
        return recipe_from_args(args, source=args.model).weight_format

    assert fmt() == "gguf"
    assert fmt("--weight-format", "int8") == "int8"
    assert fmt("--ratio", "1.0") == fmt("--asym") == "int4"  # int4 options: re-quantize
    args = p.parse_args(["org/model", "out"])
    # A hub id: optimum-intel's int4 recipe.
    assert recipe_from_args(args, source=args.model).weight_format == "int4"
