"""EngineClient (engine/remote.py) against its engine process (engine/enginecore.py), on the
tiny model: a step's chunks cross the pipe in one message, and still each request's chunks
come in order, each answer ends once, a cancelled request stops while the others go on, and
n > 1 answers and logprobs come through."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovchat import GenerationOptions
from ovchat.engine.remote import EngineClient
from ovchat.engine.types import Chunk

PROMPTS = [[{"role": "user", "content": f"Tell me about the number {i}."}] for i in range(4)]
LONG = 200  # tokens: the tiny model's window is 256


@pytest.fixture(scope="module")
def client(tiny_llama: Path) -> Iterator[EngineClient]:
    c = EngineClient(tiny_llama, kv_cache_gb=1, properties={"CACHE_DIR": ""})
    yield c
    c.close()


async def collect(
    c: EngineClient, prompt: list, o: GenerationOptions, cancel: threading.Event | None = None
) -> list[Chunk]:
    out = []
    async for chunk in c.astream(prompt, o, cancel=cancel):
        out.append(chunk)
        if cancel is not None and len(out) == 1:
            cancel.set()  # the caller's event, the consumer still waiting: the watcher tells
    return out


def check_one_answer(chunks: list[Chunk], tokens: int) -> None:
    """In order: counts never go back, one final chunk, last."""
    counts = [c.generated_tokens for c in chunks]
    assert counts == sorted(counts)
    assert [c.finish_reason is not None for c in chunks].count(True) == 1
    assert chunks[-1].finish_reason == "length" and chunks[-1].generated_tokens == tokens


def test_concurrent_answers_keep_their_tokens_and_order(client):
    o = GenerationOptions(max_new_tokens=24, temperature=0, ignore_eos=True, logprobs=True)

    async def all_at_once() -> list[list[Chunk]]:
        return list(await asyncio.gather(*(collect(client, p, o) for p in PROMPTS)))

    for chunks in asyncio.run(all_at_once()):
        check_one_answer(chunks, 24)
        ids = [lp.id for c in chunks for lp in c.logprobs]
        assert len(ids) == 24  # each token once, with the chunk its text came in
        assert "".join(c.text for c in chunks) == client.tokenizer.decode(ids)
    assert client.status().active == 0 and not client._sinks and not client._cancels


@pytest.mark.parametrize("how", ["event", "leaving"])
def test_a_request_cancelled_mid_answer_stops_and_the_others_go_on(client, how):
    o = GenerationOptions(max_new_tokens=LONG, temperature=0, ignore_eos=True)
    before = client.finished["cancelled"]

    async def leave_after_one(prompt: list) -> list[Chunk]:
        out = []
        async for chunk in client.astream(prompt, o):
            out.append(chunk)
            break  # the consumer leaves: the engine is told at once
        return out

    async def run() -> list[list[Chunk]]:
        cut = collect(client, PROMPTS[0], o, threading.Event())
        if how == "leaving":
            cut = leave_after_one(PROMPTS[0])
        return list(await asyncio.gather(cut, *(collect(client, p, o) for p in PROMPTS[1:])))

    cancelled, *others = asyncio.run(run())
    for chunks in others:
        check_one_answer(chunks, LONG)
    if how == "event":
        assert cancelled[-1].finish_reason == "cancelled"
        assert cancelled[-1].generated_tokens < LONG
    assert client.finished["cancelled"] == before + 1
    assert not client._sinks and not client._cancels  # every request had its one End


def test_n_answers_and_logprobs_come_through(client):
    o = GenerationOptions(
        max_new_tokens=8, n=2, logprobs=True, ignore_eos=True, temperature=1.0, seed=3
    )
    chunks = list(client.stream(PROMPTS[0], o))
    for index in (0, 1):
        mine = [c for c in chunks if c.index == index]
        assert mine[-1].finish_reason == "length"
        assert [c.finish_reason is not None for c in mine].count(True) == 1
        assert sum(len(c.logprobs) for c in mine) == 8
        assert all(lp.logprob <= 0 for c in mine for lp in c.logprobs)
    assert chunks[-1].generated_tokens == 16
