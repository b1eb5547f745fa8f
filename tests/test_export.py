"""Export: manifest, atomic write, --force, fidelity of each weight format against PyTorch."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ovchat.convert.export import export
from ovchat.convert.recipe import Recipe
from ovchat.errors import ExportError, ModelNotFoundError, OptionError
from ovchat.modeldir import MANIFEST

PROMPT = "The class statement creates a new object, and the function returns a value."


def torch_logits(hf_dir, ids):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def ov_logits(ir_dir, ids):
    from optimum.intel import OVModelForCausalLM

    model = OVModelForCausalLM.from_pretrained(
        ir_dir, ov_config={"INFERENCE_PRECISION_HINT": "f32", "CACHE_DIR": ""}, compile=True
    )
    import torch

    out = model(
        input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)
    )
    return out.logits[0].detach().numpy()


def ids_for(hf_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hf_dir).encode(PROMPT, add_special_tokens=False)


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("kind", ["llama", "phi3"])
def test_fp32_matches_pytorch(kind, tiny_llama_hf, tiny_phi3_hf, tiny_export):
    hf = tiny_llama_hf if kind == "llama" else tiny_phi3_hf
    ids = ids_for(hf)
    ref = torch_logits(hf, ids)
    got = ov_logits(tiny_export(hf, "fp32"), ids)
    assert got.shape == ref.shape
    assert rel_err(got, ref) < 1e-4


@pytest.mark.parametrize("fmt,bound", [("fp16", 5e-3), ("int8", 5e-2)])
def test_fp16_int8_close(fmt, bound, tiny_llama_hf, tiny_export):
    ids = ids_for(tiny_llama_hf)
    ref = torch_logits(tiny_llama_hf, ids)
    got = ov_logits(tiny_export(tiny_llama_hf, fmt), ids)
    assert rel_err(got, ref) < bound
    assert (got.argmax(-1) == ref.argmax(-1)).mean() >= 0.9


@pytest.mark.parametrize("kind", ["llama", "phi3"])
def test_int4_agrees_on_most_top1(kind, tiny_llama_hf, tiny_phi3_hf, tiny_export):
    hf = tiny_llama_hf if kind == "llama" else tiny_phi3_hf
    ids = ids_for(hf)
    ref = torch_logits(hf, ids)
    got = ov_logits(tiny_export(hf, "int4"), ids)
    agree = float((got.argmax(-1) == ref.argmax(-1)).mean())
    assert agree >= 0.6, agree
    assert rel_err(got, ref) > 1e-4  # it really is compressed


def test_manifest_and_self_contained(tiny_llama):
    names = {p.name for p in tiny_llama.iterdir()}
    for f in ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml",
              "openvino_detokenizer.xml", "config.json", "tokenizer.json", MANIFEST):  # fmt: skip
        assert f in names
    m = json.loads((tiny_llama / MANIFEST).read_text())
    assert m["recipe"]["asked"]["weight_format"] == "int4"
    assert m["recipe"]["asked"]["group_size"] == 16
    applied = m["recipe"]["applied"]
    assert set(applied["int4_group_sizes"]) == {"16"}
    assert "i4" in applied["weights_by_type"]
    assert any("bitwidth" in ln for ln in m["nncf_log"])
    for lib in ("openvino", "nncf", "optimum-intel", "transformers"):
        assert m["versions"][lib]
    assert m["created"].startswith("20")


def test_existing_output_refused_without_force(tiny_llama_hf, tiny_llama, tmp_path):
    with pytest.raises(OptionError, match="force=True") as e:
        export(str(tiny_llama_hf), tiny_llama)
    assert e.value.param == "force"  # the CLI turns it into "--force"


def test_failed_export_leaves_nothing(tiny_llama_hf, tmp_path):
    out = tmp_path / "out"
    # group size 48 divides no tiny width: nncf refuses, and nothing may be left behind
    with pytest.raises(ExportError, match="group_size_fallback") as e:
        export(str(tiny_llama_hf), out, Recipe(group_size=48, ratio=1.0), progress=lambda s: None)
    assert e.value.param == "group_size_fallback"
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_atomically(tiny_llama_hf, tmp_path):
    out = tmp_path / "m"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    (out / MANIFEST).write_text("{}")  # an earlier export: --force may replace it
    export(
        str(tiny_llama_hf), out, Recipe(weight_format="fp16"), force=True, progress=lambda s: None
    )
    assert not (out / "stale.txt").exists()
    assert (out / MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_group_size_fallback_recorded(tiny_llama_hf, tmp_path):
    out = export(
        str(tiny_llama_hf), tmp_path / "fb", Recipe(group_size=128, ratio=1.0,
        group_size_fallback="adjust"), progress=lambda s: None,
    )  # fmt: skip
    m = json.loads((out / MANIFEST).read_text())
    assert m["recipe"]["asked"]["group_size_fallback"] == "adjust"
    sizes = {int(k) for k in m["recipe"]["applied"]["int4_group_sizes"]}
    # width-64 layers could not take groups of 128: nncf adjusted them; 128-wide ones kept 128
    assert 64 in sizes and sizes <= {64, 128}


def test_all_layers_flag_reaches_nncf():
    import argparse

    from ovchat.verbs.export import add_recipe_arguments, recipe_from_args

    p = argparse.ArgumentParser()
    add_recipe_arguments(p)
    plain = recipe_from_args(p.parse_args(["--ratio", "1.0"]), source="m.gguf")
    assert "all_layers" not in (plain.quantization_config() or {})
    fast = recipe_from_args(p.parse_args(["--ratio", "1.0", "--all-layers"]), source="m.gguf")
    # int4 asked, so a GGUF source is re-quantized rather than kept as its own blocks
    assert fast.weight_format == "int4"
    assert (fast.quantization_config() or {})["all_layers"] is True


def test_bad_recipe_values():
    with pytest.raises(OptionError):
        Recipe(ratio=1.5).validate()
    with pytest.raises(OptionError):
        Recipe(group_size=0).validate()
    with pytest.raises(OptionError):
        Recipe(weight_format="int3").validate()


def test_missing_source(tmp_path):
    with pytest.raises(ModelNotFoundError):
        export(str(tmp_path / "nope.gguf"), tmp_path / "o")
    with pytest.raises(ModelNotFoundError):
        export("./does/not/exist", tmp_path / "o")


def test_force_never_replaces_foreign_dirs_or_the_source(tiny_llama_hf, tmp_path):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(OptionError, match="not an ovchat export"):
        export(str(tiny_llama_hf), mine, force=True, progress=lambda s: None)
    assert (mine / "notes.txt").read_text() == "precious"
    with pytest.raises(OptionError, match="overwrite the source"):
        export(str(tiny_llama_hf), tiny_llama_hf, force=True, progress=lambda s: None)
    with pytest.raises(OptionError, match="overwrite the source"):
        export(str(tiny_llama_hf), tiny_llama_hf.parent, force=True, progress=lambda s: None)
    assert (tiny_llama_hf / "config.json").is_file()
