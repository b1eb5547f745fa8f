"""Vision-language models under continuous batching (genai's ContinuousBatchingPipeline,
the server's scheduler): several image requests at once give the same greedy answers as one
at a time through VLMPipeline, on the tiny LLaVA and Gemma 3; the prompt count holds the
image tokens (as many as transformers' processor puts in) and the encoding time is
reported."""

from __future__ import annotations

import asyncio

import pytest
from test_vision import F32, flat, hf_prompt_tokens

import ovchat
from ovchat.engine.types import Completion
from ovchat.engine.vision import VisionEngine
from ovchat.options import GenerationOptions

QUESTION = "Describe the picture."
COLOURS = [(200, 40, 90), (10, 140, 90), (30, 30, 230), (250, 250, 0)]
MESSAGES = [{"role": "user", "content": QUESTION}]


@pytest.mark.parametrize("arch", ["llava", "gemma3"])
def test_image_requests_at_once_match_one_at_a_time(arch, request):
    path = request.getfixturevalue(f"tiny_{arch}")
    hf = request.getfixturevalue(f"tiny_{arch}_hf")
    pictures = [flat(c) for c in COLOURS]
    opts = GenerationOptions(max_new_tokens=8, temperature=0)
    with ovchat.load(path, **F32) as m:  # VLMPipeline: one request at a time
        assert m.engine.backend == "pipeline"
        alone = [m.engine.generate(m.engine.plan(MESSAGES, opts, images=[p])) for p in pictures]

    eng = VisionEngine(path, properties=F32, backend="batching", kv_cache_gb=1)
    busiest = 0

    async def ask(picture) -> Completion:
        nonlocal busiest
        chunks = []
        async for c in eng.astream(eng.plan(MESSAGES, opts, images=[picture])):
            busiest = max(busiest, eng.status().active)
            chunks.append(c)
        return Completion.collect(chunks)

    async def all_at_once() -> list[Completion]:
        return await asyncio.gather(*(ask(p) for p in pictures))

    try:
        assert eng.backend == "batching"  # genai's batching pipeline took the model
        together = asyncio.run(all_at_once())
    finally:
        eng.close()
    assert [c.text for c in together] == [c.text for c in alone]
    assert len({c.text for c in alone}) == len(pictures)  # each picture is really seen
    assert busiest >= 2  # the requests ran in the same steps
    # the prompt with its image tokens, as transformers counts it; the text alone is fewer
    n = hf_prompt_tokens(hf, QUESTION)
    assert {c.prompt_tokens for c in alone + together} == {n}
    assert eng.plan(MESSAGES, opts, images=[pictures[0]]).prompt_tokens != n
    assert all(c.image_seconds is not None and c.image_seconds > 0 for c in alone + together)
