"""GenerationOptions → openvino-genai's GenerationConfig (a fresh copy of the model's own
generation_config, with what the request asks on top)."""

from __future__ import annotations

import random
from typing import Any

from ..errors import OptionError
from ..options import GenerationOptions

_RNG = random.SystemRandom()
TOP_K_OFF = 2**31 - 1  # genai has no "off" for top_k; this keeps every token
SEED_RANGE = 2**31


def apply_options(cfg: Any, o: GenerationOptions) -> Any:
    """Write `o` into genai's config `cfg` (the model's defaults); return it."""
    cfg.max_new_tokens = o.max_new_tokens
    cfg.apply_chat_template = False  # the prompt is already rendered
    if o.temperature is not None:
        cfg.temperature = o.temperature
        cfg.do_sample = o.temperature > 0
    if o.top_p is not None:
        cfg.top_p = o.top_p
    if o.top_k is not None:
        cfg.top_k = o.top_k if o.top_k > 0 else TOP_K_OFF
    if o.min_p is not None:
        cfg.min_p = o.min_p
    if o.repetition_penalty is not None:
        cfg.repetition_penalty = o.repetition_penalty
    if o.presence_penalty is not None:
        cfg.presence_penalty = o.presence_penalty
    if o.frequency_penalty is not None:
        cfg.frequency_penalty = o.frequency_penalty
    if o.no_repeat_ngram_size is not None:
        cfg.no_repeat_ngram_size = o.no_repeat_ngram_size
    if o.seed is not None:
        cfg.rng_seed = o.seed
    elif cfg.do_sample:
        # genai's default seed is fixed: without this every "random" answer is the same
        cfg.rng_seed = _RNG.randrange(SEED_RANGE)
    if o.ignore_eos:
        cfg.ignore_eos = True
    if o.stop:
        cfg.stop_strings = set(o.stop)
        cfg.include_stop_str_in_output = False
    if o.n > 1:
        if o.temperature == 0:
            raise OptionError(
                "n > 1 needs sampling: greedy decoding (temperature 0) gives n identical answers",
                "give a temperature above 0",
                param="n",
            )
        if not cfg.do_sample:  # the model's default is greedy: sample, as OpenAI's n does
            cfg.do_sample = True
            cfg.rng_seed = o.seed if o.seed is not None else _RNG.randrange(SEED_RANGE)
        cfg.num_return_sequences = o.n
    if o.logprobs:
        cfg.logprobs = 1  # genai reports the chosen token's log-probability only
    return cfg
