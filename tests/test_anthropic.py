"""Anthropic's Messages API over real HTTP with the official `anthropic` client, on the tiny
Phi-3 (random weights: the protocol is checked, and answers equal to the engine's own).
The client no longer lists temperature among its arguments; the API takes it (extra_body)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from test_serve import ServerThread

from ovchat import Engine, GenerationOptions
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

USER = [{"role": "user", "content": "What does the class statement do?"}]
NOW = {"name": "now", "description": "The time", "input_schema": {"type": "object",
                                                                   "properties": {}}}  # fmt: skip
KEY = "sesame"


@pytest.fixture(scope="module")
def engine(tiny_phi3: Path) -> Iterator[Engine]:
    e = Engine(tiny_phi3, backend="batching", max_num_seqs=4)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=4, api_key=KEY), engine)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: ServerThread) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)


def test_message_matches_the_engine(client, engine):
    r = client.messages.create(model=engine.info.name, max_tokens=8, messages=USER,
                               system="Be brief.", extra_body={"temperature": 0})  # fmt: skip
    msgs = [{"role": "system", "content": "Be brief."}, *USER]
    want = engine.generate(msgs, GenerationOptions(max_new_tokens=8, temperature=0))
    assert r.id.startswith("msg_") and r.type == "message" and r.role == "assistant"
    (block,) = r.content
    assert block.type == "text" and block.text == want.text
    assert r.stop_reason == "max_tokens" and r.usage.output_tokens == 8
    assert r.usage.input_tokens == len(engine.prompt_ids(msgs))


def test_stream_event_sequence(client, engine, server):
    kw = dict(model=engine.info.name, max_tokens=8, messages=USER, extra_body={"temperature": 0})
    whole = client.messages.create(**kw)
    with client.messages.stream(**kw) as s:
        kinds = [e.type for e in s]
        final = s.get_final_message()
    assert final.content[0].text == whole.content[0].text
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 8
    # the wire: Anthropic's exact order
    body = {**kw, **kw.pop("extra_body"), "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/messages", json=body,
                      headers={"x-api-key": KEY}) as r:  # fmt: skip
        raw = r.read().decode()
    names = [ln[7:] for ln in raw.splitlines() if ln.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "text" in kinds and kinds[-1] == "message_stop"


def test_a_full_tool_loop(client, engine):
    kw = dict(model=engine.info.name, max_tokens=100, tools=[NOW])
    ask = [{"role": "user", "content": "What time is it?"}]
    r = client.messages.create(messages=ask, tool_choice={"type": "tool", "name": "now"}, **kw)
    assert r.stop_reason == "tool_use"
    (use,) = [b for b in r.content if b.type == "tool_use"]
    assert use.name == "now" and use.input == {} and use.id.startswith("toolu_")
    with client.messages.stream(messages=ask, tool_choice={"type": "any"}, **kw) as s:
        streamed = s.get_final_message()
    assert streamed.stop_reason == "tool_use" and streamed.content[-1].input == {}
    history = [*ask, {"role": "assistant", "content": r.content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                             "content": "12:00"}]}]  # fmt: skip
    follow = client.messages.create(messages=history, tool_choice={"type": "none"},
                                    **{**kw, "max_tokens": 6})  # fmt: skip
    assert follow.content[0].type == "text" and follow.stop_reason in ("end_turn", "max_tokens")
    assert not [b for b in follow.content if b.type == "tool_use"]
    count = client.messages.count_tokens(model=engine.info.name, messages=history, tools=[NOW],
                                         tool_choice={"type": "none"})  # fmt: skip
    assert follow.usage.input_tokens == count.input_tokens > 0
    offered = client.messages.count_tokens(model=engine.info.name, messages=history, tools=[NOW])
    assert offered.input_tokens > count.input_tokens  # the tools are in the prompt


def test_count_tokens_and_the_billing_header_line(client, engine):
    def count(system: str) -> int:
        return client.messages.count_tokens(
            model=engine.info.name, messages=USER,
            system=[{"type": "text", "text": system}]).input_tokens  # fmt: skip

    plain = count("You are a coding agent.")
    assert plain == len(engine.prompt_ids(
        [{"role": "system", "content": "You are a coding agent."}, *USER]))  # fmt: skip
    for n in (1, 2):
        header = f"x-anthropic-billing-header: cc_version=2.{n}; cch={n * 12345};\n"
        assert count(header + "You are a coding agent.") == plain


def test_errors_are_anthropics(client, engine, server):
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(model="no-such-model", max_tokens=4, messages=USER)
    assert nf.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=engine.info.name, max_tokens=4, messages=USER,
                               extra_body={"temperature": 1.5})  # fmt: skip
    assert e.value.body["type"] == "error" and "temperature" in e.value.body["error"]["message"]
    r = httpx.post(f"{server.url}/v1/messages", json={"messages": USER},
                   headers={"x-api-key": KEY})  # fmt: skip
    assert r.status_code == 400 and "max_tokens" in r.json()["error"]["message"]
    document = [{"role": "user", "content": [{"type": "document", "source": {}}]}]
    r = httpx.post(f"{server.url}/v1/messages", json={"messages": document, "max_tokens": 4},
                   headers={"x-api-key": KEY})  # fmt: skip
    assert r.status_code == 400 and "document" in r.json()["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError) as au:
        anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0).messages.create(
            model=engine.info.name, max_tokens=4, messages=USER)  # fmt: skip
    assert au.value.body["error"]["type"] == "authentication_error"
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'ovchat_requests_total{endpoint="/v1/messages",status="200"}' in metrics
    assert 'ovchat_requests_total{endpoint="/v1/messages",status="401"}' in metrics
    assert json.loads(r.text)["type"] == "error"
