"""Speed features: `ovchat bench --shape` end to end on a tiny custom shape, the runtime
properties an export's recipe calls for, and prompt-lookup decoding (CLI, Python, server).

No timing is asserted anywhere: speed lives in `ovchat bench` and benchmarks/.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli, run_main
from test_serve import ServerThread

from ovchat import Engine, GenerationOptions
from ovchat.bench.lookalikes import SHAPES, ModelShape, get_shape, prepare, shapes_dir
from ovchat.engine.runtime import DQ_GROUP, recipe_properties, runtime_properties
from ovchat.serve import ServerSettings, create_app

# A Llama two layers deep, 256 wide (Q4_K needs widths of 256), SmolLM2's vocab padded to 49408.
TINY_SHAPE = {
    "name": "tiny-test-llama",
    "real": "a test shape",
    "config": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_act": "silu",
        "vocab_size": 49408, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 512, "tie_word_embeddings": True, "hidden_size": 256,
        "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
}  # fmt: skip
# Without llama-cpp-python (a fresh clone: PyPI has only its source) the shape is built and
# measured with the OpenVINO engines, and the llama.cpp ones are reported as skipped.
HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
SHAPE_ENGINES = ["ovchat", "ovchat-optimum-recipe"] + (
    ["llamacpp-q4_0", "llamacpp-q4_k_m"] if HAVE_LLAMA else []
)
# Text an answer can copy from its prompt: prompt lookup finds n-grams to draft from.
REPEAT = "Copy this list exactly: alpha beta gamma delta, alpha beta gamma delta, alpha beta"


@pytest.fixture(scope="module")
def shape_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("shape")
    (d / "tiny.json").write_text(json.dumps(TINY_SHAPE))
    shutil.rmtree(shapes_dir() / TINY_SHAPE["name"], ignore_errors=True)  # built by this run
    args = ("bench", "--shape", str(d / "tiny.json"), "--quick", "--rounds", "2", "--json")
    r = run_cli(*args, "--chart", str(d / "chart.png"))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout), r.stderr, d


def test_shape_is_built_once_and_every_engine_measured(shape_run):
    data, stderr, d = shape_run
    assert [e["engine"] for e in data["engines"]] == SHAPE_ENGINES
    shape = data["shape"]
    assert shape["name"] == TINY_SHAPE["name"]
    steps = {"hf", "ov-optimum", "ov-fast"}
    if HAVE_LLAMA:
        steps |= {"gguf-f16", "gguf-Q4_0", "gguf-Q4_K_M"}
    built = shape["build_seconds"]
    assert set(built) == steps and all(v > 0 for v in built.values())
    assert "writing random weights" in stderr
    assert ("quantizing to Q4_K_M" in stderr) == HAVE_LLAMA
    said: list[str] = []
    again = prepare(get_shape(str(d / "tiny.json")), progress=said.append, gguf=HAVE_LLAMA)
    assert said == [] and again.build_seconds == built  # cached: nothing is built twice
    rounds, reps = data["settings"]["rounds"], data["settings"]["reps"]
    assert rounds == 2
    for e in data["engines"]:
        assert e["ok"], e["error"]
        for key in ("decode_tps", "prefill_tps", "decode_cpu_ms", "load_cold_s"):
            vals = e["metrics"][key]["values"]
            assert len(vals) == (rounds if key.startswith("load") else rounds * reps), key
            assert all(math.isfinite(v) and v > 0 for v in vals), (e["engine"], key)
        assert e["metrics"]["peak_rss_mb"]["median"] > 50
        # EOS ignored: every engine decoded the full budget every time.
        assert e["info"]["generated_tokens"] == [data["settings"]["new_tokens"]] * rounds * reps
    sizes = {e["engine"]: e["metrics"]["size_mb"]["median"] for e in data["engines"]}
    assert sizes["ovchat"] < sizes["ovchat-optimum-recipe"]  # every matmul in int4, not int8
    assert len(data["machine"]["load_average_rounds"]) == rounds
    against = {t["against"] for t in data["targets"]}
    if HAVE_LLAMA:
        assert {"llamacpp-q4_0", "llamacpp-q4_k_m"} <= against
    else:
        assert set(data["skipped"]) == {"llamacpp-q4_0", "llamacpp-q4_k_m"}
    assert (d / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_shape_exports_record_their_recipe_and_get_its_runtime_property(shape_run):
    data, _, _ = shape_run
    ov = next(e for e in data["engines"] if e["engine"] == "ovchat")
    assert ov["info"]["properties"][DQ_GROUP] == "128"  # the fast recipe's int4 group size
    assert data["model"].startswith("$OVCHAT_HOME/")  # the report names no machine's paths
    fast = Path(os.path.expandvars(data["model"]))
    manifest = json.loads((fast / "ovchat.json").read_text())
    assert manifest["recipe"]["asked"]["all_layers"] is True
    assert set(manifest["recipe"]["applied"]["weights_by_type"]) <= {"i4", "u4", "f16", "f32"}
    # The random weights have the real parameter count of the shape.
    hf = fast.parent / "hf"
    from safetensors import safe_open

    with safe_open(str(hf / "model.safetensors"), "pt") as f:
        n = sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118
    assert n == _shape_params()


def _shape_params() -> int:
    return ModelShape(TINY_SHAPE["name"], "", TINY_SHAPE["config"]).params


def test_known_shapes_have_their_real_sizes():
    # Parameter counts of the real models (their model cards), from the configs alone.
    assert round(SHAPES["qwen2.5-0.5b"].params / 1e6) == 494
    assert round(SHAPES["llama-3.2-1b"].params / 1e6) == 1236
    assert round(SHAPES["qwen2.5-1.5b"].params / 1e6) == 1544


def test_unknown_shape_is_one_line(capsys):
    r = run_main(capsys, "bench", "--shape", "gpt-9")
    assert r.returncode == 2
    assert "unknown shape 'gpt-9'" in r.stderr and "qwen2.5-0.5b" in r.stderr


# -- runtime properties ----------------------------------------------------------------------
def _manifest(fmt: str = "int4", groups: dict | None = None) -> dict:
    return {"recipe": {"asked": {"weight_format": fmt, "group_size": 128},
                       "applied": {"int4_group_sizes": groups or {}}}}  # fmt: skip


def test_dq_group_follows_the_applied_int4_group_size():
    assert recipe_properties(_manifest(groups={"128": 10}), "CPU") == {DQ_GROUP: "128"}
    assert recipe_properties(_manifest(groups={"256": 10}), "CPU") == {DQ_GROUP: "256"}
    # Mixed group sizes (nncf adjusted some layers), groups narrower than measured, int8,
    # another device: the plugin's default.
    assert recipe_properties(_manifest(groups={"128": 1, "64": 1}), "CPU") == {}
    assert recipe_properties(_manifest(groups={"64": 10}), "CPU") == {}
    assert recipe_properties(_manifest("int8"), "CPU") == {}
    assert recipe_properties(_manifest(groups={"128": 10}), "GPU") == {}
    assert recipe_properties({}, "CPU") == {}
    props = runtime_properties("pipeline", {DQ_GROUP: "32"}, _manifest(groups={"128": 1}))
    assert props[DQ_GROUP] == "32"  # the caller's value wins


def test_engine_loads_with_its_recipe_properties(tiny_llama):
    e = Engine(tiny_llama)  # the tests' tiny export: int4 groups of 16
    assert DQ_GROUP not in e.properties and e.properties["ATTENTION_BACKEND"] == "SDPA"
    e.close()


# -- prompt lookup ---------------------------------------------------------------------------
GREEDY = GenerationOptions(max_new_tokens=24, temperature=0, ignore_eos=True)
CODE_EDIT = (
    "Repeat this code exactly, renaming the variable total to acc:\n"
    "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total"
)


@pytest.mark.real
def test_prompt_lookup_gives_the_same_greedy_answer(smollm2):
    # Against the same attention path (paged attention) without lookup, in exact arithmetic
    # (f32, no dynamic quantization of activations): in bf16, or with activations quantized,
    # a K+1-token verification step rounds differently from single-token steps, and greedy
    # answers part at the first near-tie (docs/generate-chat.md, "Prompt-lookup decoding").
    args = ("generate", "-m", str(smollm2), "-t", "0", "-n", "48", "--json", CODE_EDIT)
    args += ("-p", "INFERENCE_PRECISION_HINT=f32", "-p", "DYNAMIC_QUANTIZATION_GROUP_SIZE=0")
    plain = run_cli(*args, "-p", "ATTENTION_BACKEND=PA")
    lookup = run_cli(*args, "--prompt-lookup")
    assert plain.returncode == lookup.returncode == 0, lookup.stderr
    got, want = json.loads(lookup.stdout), json.loads(plain.stdout)
    assert got["text"] == want["text"] and got["generated_tokens"] == want["generated_tokens"]
    assert "def f(xs)" in got["text"]  # the answer does copy from its prompt


def test_engine_with_prompt_lookup_streams_whole_answers(tiny_llama):
    e = Engine(tiny_llama, prompt_lookup=True)
    assert e.properties["ATTENTION_BACKEND"] == "PA"  # genai runs it on paged attention only
    whole = e.generate(REPEAT, GREEDY)
    assert whole.generated_tokens == 24 and whole.finish_reason == "length"
    chunks = list(e.stream(REPEAT, GREEDY))  # several tokens may arrive per step
    assert "".join(c.text for c in chunks) == whole.text
    e.close()


def test_generate_and_chat_take_prompt_lookup(tiny_llama):
    args = ("generate", "-m", str(tiny_llama), "-t", "0", "-n", "16", "--raw", "--json", REPEAT)
    r = run_cli(*args, "--prompt-lookup")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["generated_tokens"] == 16
    r = run_cli("chat", "-m", str(tiny_llama), "-t", "0", "-n", "8", "--prompt-lookup",
                input=REPEAT + "\n/quit\n")  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_server_with_prompt_lookup_answers_openai_clients(tiny_llama):
    settings = ServerSettings(model_dir=tiny_llama, max_running=4, prompt_lookup=True)
    messages = [{"role": "user", "content": REPEAT}]
    with ServerThread(create_app(settings)) as s:
        client = s.client()
        kw = {"model": tiny_llama.name, "messages": messages, "max_tokens": 24,
              "temperature": 0, "extra_body": {"ignore_eos": True}}  # fmt: skip
        r = client.chat.completions.create(**kw)
        assert r.usage.completion_tokens == 24
        stream = client.chat.completions.create(**kw, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == r.choices[0].message.content
