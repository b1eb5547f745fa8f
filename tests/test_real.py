"""The real default model (SmolLM2-135M-Instruct, its GGUF's own Q4_1 blocks): the
introduction question end to end, and optimum-intel's OVModelForCausalLM path on its export."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli

from ovchat import Engine, GenerationOptions

pytestmark = pytest.mark.real

INTRO_QUESTION = "can you introduce yourself?"


def test_default_model_keeps_the_ggufs_blocks(smollm2):
    from ovchat.library import DEFAULT_RECIPE

    m = json.loads((smollm2 / "ovchat.json").read_text())
    assert m["source"]["kind"] == "gguf"
    assert m["recipe"]["asked"]["weight_format"] == DEFAULT_RECIPE.weight_format == "gguf"
    gguf = m["recipe"]["applied"]["gguf"]
    assert m["source"]["route"] == "openvino-genai"  # the runtime alone prepares it
    kept = {**gguf["kept_as_openvino_genai_wrote"], **gguf["blocks_written_by_ovchat"]}
    assert kept == {"Q4_1": 210, "Q8_0": 1} and not gguf["dequantized_to_f16"]
    assert "ppl 1.000x" in m["recipe"]["why"]  # the manifest says why this recipe
    assert m["recipe"]["applied"]["int4_group_sizes"] == {"32": 106168320}  # Q4_1's blocks


def test_default_model_sampling_defaults(smollm2):
    from ovchat.library import DEFAULT_GENERATION

    gc = json.loads((smollm2 / "generation_config.json").read_text())
    assert {k: gc[k] for k in DEFAULT_GENERATION} == DEFAULT_GENERATION
    assert gc["eos_token_id"] == 2  # <|im_end|>, not transformers' <|im_start|>


def test_default_model_reused(smollm2):
    from ovchat.library import resolve

    before = (smollm2 / "ovchat.json").stat().st_mtime_ns
    assert resolve(None) == smollm2
    assert (smollm2 / "ovchat.json").stat().st_mtime_ns == before  # not prepared again


def test_introduction_question_via_cli(smollm2):
    r = run_cli("generate", INTRO_QUESTION, "--json", "-t", "0", "-n", "200")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    text = out["text"]
    assert len(text.split()) >= 5
    assert "Ġ" not in text and "Ċ" not in text and "<|im_end|>" not in text
    ascii_letters = sum(ch.isascii() and ch.isalpha() for ch in text)
    assert ascii_letters / max(1, sum(ch.isalpha() for ch in text)) > 0.95  # English
    assert re.search(r"\b(I|I'm|my|assistant|AI)\b", text)
    assert out["finish_reason"] == "stop" and out["generated_tokens"] < 200  # ends its turn


def test_system_message_rendered_and_answered(smollm2):
    e = Engine(smollm2)
    msgs = [{"role": "system", "content": "You are Zorblax, a pirate."},
            {"role": "user", "content": "Who are you?"}]  # fmt: skip
    rendered = e.render(msgs)
    assert rendered.startswith("<|im_start|>system\nYou are Zorblax, a pirate.<|im_end|>\n")
    assert "You are a helpful AI assistant named SmolLM" not in rendered
    assert rendered.endswith("<|im_start|>assistant\n")
    c = e.generate(msgs, GenerationOptions(max_new_tokens=60, temperature=0))
    assert c.text.strip() and c.finish_reason in ("stop", "length")


def test_optimum_intel_path_on_our_export(smollm2):
    """optimum-intel's OVModelForCausalLM + AutoTokenizer on an ovchat export."""
    from optimum.intel.openvino import OVModelForCausalLM
    from transformers import AutoConfig, AutoTokenizer

    ov_config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "CACHE_DIR": ""}
    model = OVModelForCausalLM.from_pretrained(
        smollm2, device="CPU", ov_config=ov_config,
        config=AutoConfig.from_pretrained(smollm2, trust_remote_code=True), trust_remote_code=True,
    )  # fmt: skip
    tok = AutoTokenizer.from_pretrained(smollm2, trust_remote_code=True)
    prompt = f"<|im_start|>user\n{INTRO_QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    inputs = tok(prompt, return_tensors="pt", add_special_tokens=False)
    answer = model.generate(**inputs, max_new_tokens=60, do_sample=False)
    text = tok.batch_decode(answer, skip_special_tokens=True)[0]
    assert text.startswith(f"user\n{INTRO_QUESTION}\nassistant\n")
    reply = text.split("assistant\n", 1)[1]
    assert len(reply.split()) >= 5 and "Ġ" not in reply
    # At f32 (no bf16, no u8 KV cache) optimum-intel and our engine say the same thing.
    exact = {
        "INFERENCE_PRECISION_HINT": "f32",
        "KV_CACHE_PRECISION": "f32",
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": "0",
        "CACHE_DIR": "",
    }
    optimum_f32 = OVModelForCausalLM.from_pretrained(smollm2, device="CPU", ov_config=exact)
    ref = tok.batch_decode(
        optimum_f32.generate(**inputs, max_new_tokens=30, do_sample=False), skip_special_tokens=True
    )[0].split("assistant\n", 1)[1]
    ours = Engine(smollm2, properties=exact).generate(
        prompt, GenerationOptions(max_new_tokens=30, temperature=0)
    )
    assert ours.text.split()[:12] == ref.split()[:12]
