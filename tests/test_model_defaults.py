"""A model's own sampling defaults (generation_config.json, where the default model's
frequency penalty lives) reach every path, and a request's own settings still win."""

from __future__ import annotations

import json
import shutil

import pytest

from ovchat import Engine, GenerationOptions

DEFAULTS = {"do_sample": True, "temperature": 0.2, "top_p": 0.9, "frequency_penalty": 0.5}


@pytest.fixture(scope="module")
def with_defaults(tiny_llama, tmp_path_factory):
    d = tmp_path_factory.mktemp("defaults") / "m"
    shutil.copytree(tiny_llama, d)
    gc = json.loads((d / "generation_config.json").read_text())
    (d / "generation_config.json").write_text(json.dumps({**gc, **DEFAULTS}))
    return d


# prompt lookup: genai's prompt-lookup pipelines start from a blank config (no sampling
# defaults, end token -1); the engine must still give them the model's own.
@pytest.mark.parametrize("lookup", [False, True], ids=["plain", "prompt-lookup"])
@pytest.mark.parametrize("backend", ["pipeline", "batching"])
def test_model_defaults_apply_and_options_override(with_defaults, backend, lookup):
    e = Engine(with_defaults, backend=backend, prompt_lookup=lookup)
    try:
        cfg = e._config(GenerationOptions(max_new_tokens=8))
        assert cfg.frequency_penalty == pytest.approx(0.5) and cfg.do_sample
        assert cfg.temperature == pytest.approx(0.2)
        assert cfg.eos_token_id == e.tokenizer.get_eos_token_id() >= 0
        mine = e._config(GenerationOptions(max_new_tokens=8, frequency_penalty=0.0,
                                           temperature=0.0, repetition_penalty=1.2))  # fmt: skip
        assert mine.frequency_penalty == 0.0 and not mine.do_sample
        assert mine.repetition_penalty == pytest.approx(1.2)
    finally:
        e.close()
