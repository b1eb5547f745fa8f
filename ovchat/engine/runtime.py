"""OpenVINO runtime properties an Engine loads with: ovchat's defaults, the ones the export's
recorded recipe calls for, then the caller's (which always win).

Measured on this project's CPU (README "Speed"): a decode step of an int4 model is ~90 %
the int4 matmul kernel, and the kernel quantizes activations dynamically in groups (32 by
default on this CPU). Groups as wide as the weights' int4 groups make it ~25 % cheaper
(CPU time per token, 1 thread): qwen2.5-0.5b shape 23.8 → 18.2 ms, llama-3.2-1b shape
54.8 → 37.8 ms. So an int4 export with one group size gets that size as
DYNAMIC_QUANTIZATION_GROUP_SIZE, on CPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ..paths import compiled_cache_dir

# Latency first, one stream (the ov_config of optimum-intel's OVModelForCausalLM path that
# ovchat is measured against); a model cache is added where it helps (see runtime_properties).
DEFAULT_PROPERTIES: dict[str, str] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1"}
# LLMPipeline: genai's default paged-attention backend recompiles and rewrites its 100 MB
# cache blob on every load; the SDPA backend is served from CACHE_DIR (second load ~3x faster)
# and gives the same tokens. The batching backend needs paged attention, so it gets no
# default CACHE_DIR (it would only rewrite the blob on every start).
PIPELINE_PROPERTIES: dict[str, str] = {"ATTENTION_BACKEND": "SDPA"}
DQ_GROUP = "DYNAMIC_QUANTIZATION_GROUP_SIZE"
# Only where it was measured to win: weight groups of 128 and wider (smaller groups, e.g. the
# tests' tiny g16 exports, keep the plugin's default and their tokens).
MIN_DQ_GROUP = 128
# Prompt-lookup decoding (genai's prompt_lookup): up to K tokens copied from the prompt where
# its last N tokens occurred before, verified in one step. K=3, N=3 beat K=5 on edit, copy and
# summarise prompts (benchmarks/prompt_lookup_bench.py). It runs on genai's paged-attention
# (continuous batching) path only.
PROMPT_LOOKUP_TOKENS = 3
PROMPT_LOOKUP_NGRAM = 3
PROMPT_LOOKUP_PROPERTIES: dict[str, str] = {"ATTENTION_BACKEND": "PA"}

Backend = Literal["pipeline", "batching"]


def recipe_properties(manifest: Mapping[str, Any], device: str) -> dict[str, str]:
    """What the export's recipe calls for at run time: DQ groups = the int4 group size, where
    the export applied exactly one group size of at least MIN_DQ_GROUP (mixed sizes keep the
    plugin's default)."""
    if not device.upper().startswith("CPU"):
        return {}
    recipe = manifest.get("recipe") or {}
    asked = recipe.get("asked") or {}
    applied = (recipe.get("applied") or {}).get("int4_group_sizes") or {}
    if asked.get("weight_format") != "int4":
        return {}
    sizes = {int(k) for k in applied} or {int(asked.get("group_size") or 0)}
    if len(sizes) != 1 or min(sizes) < MIN_DQ_GROUP:
        return {}
    return {DQ_GROUP: str(sizes.pop())}


def runtime_properties(
    backend: Backend,
    caller: Mapping[str, Any] | None,
    manifest: Mapping[str, Any] | None = None,
    device: str = "CPU",
    prompt_lookup: bool = False,
) -> dict[str, Any]:
    """ovchat's defaults, the recipe's, then the caller's; a compiled-model cache only where
    it is read."""
    props: dict[str, Any] = dict(DEFAULT_PROPERTIES)
    if backend == "pipeline":
        props.update(PIPELINE_PROPERTIES)
    if prompt_lookup and backend == "pipeline":  # batching is paged attention already
        props.update(PROMPT_LOOKUP_PROPERTIES)
    props.update(recipe_properties(manifest or {}, device))
    props.update(caller or {})
    if "CACHE_DIR" not in props and str(props.get("ATTENTION_BACKEND")).upper() == "SDPA":
        props["CACHE_DIR"] = str(compiled_cache_dir())  # only SDPA is served from it
    if props.get("CACHE_DIR") in ("", None):
        props.pop("CACHE_DIR", None)  # CACHE_DIR="" means no cache, as in optimum-intel
    else:
        Path(props["CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    return props


def pipeline_properties(
    defaults: Mapping[str, Any], properties: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A non-chat pipeline's properties (embedder, reranker, transcriber): `defaults`, the
    compiled-model cache, then the caller's (CACHE_DIR="" turns the cache off). The cache
    dir is made here, so loading needs no more."""
    props = {**defaults, "CACHE_DIR": str(compiled_cache_dir()), **(properties or {})}
    if props.get("CACHE_DIR") in ("", None):
        props.pop("CACHE_DIR", None)
    else:
        Path(props["CACHE_DIR"]).mkdir(parents=True, exist_ok=True)
    return props
