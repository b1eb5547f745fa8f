"""Details of OpenAI's shapes that other people's clients rely on, over real HTTP on the
tiny Phi-3 (its window holds the generic tool prompt): a tool without parameters, the first
delta of a streamed call, /v1/responses ids and items cut at max_output_tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from test_serve import ServerThread

from ovchat import Engine
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

ASK = [{"role": "user", "content": "What time is it?"}]
NOW = {"type": "function", "function": {"name": "now", "description": "The time"}}
NOW_EMPTY = {
    "type": "function",
    "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
def engine(tiny_phi3: Path) -> Iterator[Engine]:
    e = Engine(tiny_phi3, backend="batching", max_num_seqs=4)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=4), engine)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: ServerThread) -> openai.OpenAI:
    return server.client()


@pytest.mark.parametrize("tool", [NOW, NOW_EMPTY], ids=["no-parameters", "empty-properties"])
def test_a_tool_without_parameters_is_called_with_empty_arguments(client, engine, tool):
    for seed in range(3):
        r = client.chat.completions.create(
            messages=ASK, model=engine.info.name, tools=[tool], tool_choice="required",
            temperature=1.0, seed=seed, max_tokens=100,
        )  # fmt: skip
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.function.name == "now" and json.loads(call.function.arguments) == {}


def test_a_streamed_call_starts_with_content_null(server):
    body = {"messages": ASK, "tools": [NOW], "tool_choice": "required", "stream": True,
            "max_tokens": 100}  # fmt: skip
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    first = events[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0]["function"]["name"] == "now"
    assert not any("role" in e["choices"][0]["delta"] for e in events[1:] if e["choices"])
    # a text answer with tools offered still opens with content ""
    body["tool_choice"] = "none"
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


def test_responses_ids_and_an_answer_cut_at_max_output_tokens(client, engine):
    m = engine.info.name
    r = client.responses.create(model=m, input="Say something long.", max_output_tokens=3)
    assert r.id.startswith("resp_") and r.status == "incomplete"
    (item,) = r.output
    assert item.id.startswith("msg_") and item.status == "incomplete"
    with client.responses.stream(model=m, input="Say something long.", max_output_tokens=3) as s:
        events: list[Any] = list(s)
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done and done[-1].item.status == "incomplete"
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.id.startswith("resp_")
    assert events[-1].response.output[-1].status == "incomplete"
