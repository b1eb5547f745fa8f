"""The rest of OpenAI's fields over real HTTP with the official client, on the tiny Llama: n
choices, logprobs, penalties, the Responses API's shapes, and every refused field and bad
schema as a 4xx in OpenAI's error shape (the server serving on after each).

What needs a real model (valid JSON at temperature 1, tool calls) is in test_structured.py.
"""

from __future__ import annotations

import json
import math
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

USER = [{"role": "user", "content": "What does the class statement do?"}]


@pytest.fixture(scope="module")
def engine(tiny_llama: Path) -> Iterator[Engine]:
    e = Engine(tiny_llama, backend="batching", max_num_seqs=8)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=8), engine)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: ServerThread) -> openai.OpenAI:
    return server.client()


# -- n -------------------------------------------------------------------------------------
def test_n_choices_streamed_and_not(client, engine):
    kw: dict[str, Any] = dict(
        model=engine.info.name, messages=USER, n=3, max_tokens=8, temperature=1.0, seed=11
    )
    whole = client.chat.completions.create(**kw)
    assert [c.index for c in whole.choices] == [0, 1, 2]
    texts = [c.message.content for c in whole.choices]
    assert len(set(texts)) >= 2  # three samples of 8 tokens from random weights differ
    assert all(c.finish_reason == "length" for c in whole.choices)
    assert whole.usage.completion_tokens == 24  # usage counts every choice
    assert whole.usage.prompt_tokens == len(engine.prompt_ids(USER))
    streamed = ["", "", ""]
    finished = {}
    for chunk in client.chat.completions.create(stream=True, **kw):
        for c in chunk.choices:
            streamed[c.index] += c.delta.content or ""
            if c.finish_reason:
                finished[c.index] = c.finish_reason
    assert streamed == texts  # the same seed gives the same three answers
    assert finished == {0: "length", 1: "length", 2: "length"}
    done = client.completions.create(
        model=engine.info.name, prompt="The class", n=2, max_tokens=4, temperature=1.0,
        extra_body={"ignore_eos": True},  # random weights may sample the end token early
    )  # fmt: skip
    assert [c.index for c in done.choices] == [0, 1] and done.usage.completion_tokens == 8


# -- logprobs ------------------------------------------------------------------------------
def test_chat_logprobs_shape_and_values(client, engine):
    kw: dict[str, Any] = dict(model=engine.info.name, messages=USER, max_tokens=6, temperature=0)
    r = client.chat.completions.create(logprobs=True, top_logprobs=1, **kw)
    choice = r.choices[0]
    content = choice.logprobs.content
    assert len(content) == r.usage.completion_tokens == 6
    for t in content:
        assert math.isfinite(t.logprob) and t.logprob <= 0
        assert bytes(t.bytes).decode("utf-8", "backslashreplace") == t.token
        assert [(x.token, x.logprob) for x in t.top_logprobs] == [(t.token, t.logprob)]
    plain = client.chat.completions.create(**kw).choices[0]
    assert plain.logprobs is None and plain.message.content == choice.message.content
    no_top = client.chat.completions.create(logprobs=True, **kw).choices[0].logprobs.content
    assert [t.logprob for t in no_top] == pytest.approx([t.logprob for t in content])
    assert all(t.top_logprobs == [] for t in no_top)
    streamed = []
    for chunk in client.chat.completions.create(logprobs=True, stream=True, **kw):
        for c in chunk.choices:
            if c.logprobs and c.logprobs.content:
                streamed += c.logprobs.content
    assert [t.token for t in streamed] == [t.token for t in content]
    assert [t.logprob for t in streamed] == pytest.approx([t.logprob for t in content])


def test_completions_logprobs_legacy_shape(client, engine):
    r = client.completions.create(
        model=engine.info.name, prompt="The class", max_tokens=5, temperature=0, logprobs=1
    )
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.text_offset) == 5
    assert all(x <= 0 for x in lp.token_logprobs)
    assert lp.top_logprobs == [{t: x} for t, x in zip(lp.tokens, lp.token_logprobs, strict=True)]
    assert lp.text_offset[0] == 0 and lp.text_offset == sorted(lp.text_offset)


# -- penalties, seed, user -----------------------------------------------------------------
def test_penalties_change_the_answer(client, engine):
    kw: dict[str, Any] = dict(
        model=engine.info.name, messages=USER, max_tokens=40, temperature=0, user="u-1"
    )
    base = client.chat.completions.create(**kw).choices[0].message.content
    pen = client.chat.completions.create(frequency_penalty=2.0, **kw).choices[0].message.content
    pres = client.chat.completions.create(presence_penalty=2.0, **kw).choices[0].message.content
    assert base != pen and base != pres  # greedy, so only the penalty can change it


# -- /v1/responses -------------------------------------------------------------------------
def test_responses_plain_and_streamed(client, engine):
    kw: dict[str, Any] = dict(
        model=engine.info.name,
        instructions="Be brief.",
        input="What does the class statement do?",
        max_output_tokens=6,
        temperature=0,
    )
    r = client.responses.create(**kw)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What does the class statement do?"},
    ]
    assert r.id.startswith("resp") and r.object == "response" and r.model == engine.info.name
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.input_tokens == len(engine.prompt_ids(messages))
    assert r.usage.output_tokens == 6 and r.usage.total_tokens == r.usage.input_tokens + 6
    chat = client.chat.completions.create(
        model=engine.info.name, messages=messages, max_tokens=6, temperature=0
    )
    assert r.output_text == chat.choices[0].message.content
    assert r.instructions == "Be brief." and r.max_output_tokens == 6
    with client.responses.stream(**{**kw, "max_output_tokens": 200}) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        events[-1].type,
    ]
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output_text == text and final.output[0].content[0].text == text
    # an earlier turn sent back as items: the same prompt as the chat messages
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello"}],
        },
        {"role": "user", "content": "What does the class statement do?"},
    ]
    r2 = client.responses.create(model=engine.info.name, input=items, max_output_tokens=2)
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "What does the class statement do?"},
    ]
    assert r2.usage.input_tokens == len(engine.prompt_ids(turns))


def test_responses_logprobs(client, engine):
    r = client.responses.create(
        model=engine.info.name,
        input="The class",
        max_output_tokens=4,
        temperature=0,
        include=["message.output_text.logprobs"],
    )
    lp = r.output[0].content[0].logprobs
    assert len(lp) == 4 and all(t.logprob <= 0 for t in lp)


# -- refusals and bad schemas --------------------------------------------------------------
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
BAD_REF = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}}
CHAT_ERRORS = [
    # (id, extra body, param, words the message must hold)
    ("n-0", {"n": 0}, "n", "n"),
    ("n-too-many", {"n": 9}, "n", "8"),
    ("n-greedy", {"n": 2, "temperature": 0}, "n", "sampling"),
    ("top-logprobs-2", {"logprobs": True, "top_logprobs": 2}, "top_logprobs", "chosen token"),
    ("top-logprobs-alone", {"top_logprobs": 1}, "top_logprobs", "logprobs"),
    ("penalty-range", {"presence_penalty": 2.5}, "presence_penalty", "2"),
    ("logit-bias", {"logit_bias": {"50": 5}}, "logit_bias", "logit_bias"),
    ("audio", {"modalities": ["text", "audio"]}, "modalities", "audio"),
    ("functions", {"functions": [{"name": "f"}]}, "functions", "tools"),
    ("function-call", {"function_call": "auto"}, "function_call", "tools"),
    ("web-search", {"web_search_options": {}}, "web_search_options", "web search"),
    (
        "bad-ref",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": BAD_REF},
            }
        },
        "response_format",
        "$defs",
    ),
    (
        "bad-type",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "nope"}},
            }
        },
        "response_format",
        "nope",
    ),
    (
        "lookahead",
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "(?=a)"}},
            }
        },
        "response_format",
        "Lookahead",
    ),
    (
        "no-schema-format",
        {"response_format": {"type": "json_schema"}},
        "response_format",
        "json_schema",
    ),
    ("format-type", {"response_format": {"type": "yaml"}}, "response_format.type", "text"),
    (
        "tool-bad-name",
        {"tools": [{"type": "function", "function": {"name": "a b"}}]},
        "tools[0].function.name",
        "letters",
    ),
    (
        "tool-choice-unknown",
        {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "g"}}},
        "tool_choice",
        "'g'",
    ),
    ("required-without-tools", {"tool_choice": "required"}, "tools", "no tools"),
    (
        "tools-and-schema",
        {"tools": [TOOL], "response_format": {"type": "json_object"}},
        "response_format",
        "tools",
    ),
    (
        "tool-message-bad-args",
        {
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        }
                    ],
                },
            ]
        },
        "messages[1].tool_calls[0].function.arguments",
        "JSON",
    ),
]
OTHER_ERRORS = [
    ("/v1/completions", {"prompt": "x", "logprobs": 2}, "logprobs", "chosen token"),
    ("/v1/completions", {"prompt": "x", "echo": True}, "echo", "echo"),
    ("/v1/completions", {"prompt": "x", "suffix": "y"}, "suffix", "suffix"),
    ("/v1/completions", {"prompt": "x", "best_of": 3}, "best_of", "best_of"),
    (
        "/v1/responses",
        {"input": "x", "previous_response_id": "resp_1"},
        "previous_response_id",
        "stores nothing",
    ),
    ("/v1/responses", {"input": "x", "background": True}, "background", "stores nothing"),
    ("/v1/responses", {"input": "x", "conversation": "c"}, "conversation", "stores nothing"),
    ("/v1/responses", {"input": "x", "top_logprobs": 3}, "top_logprobs", "chosen token"),
    (
        "/v1/responses",
        {"input": "x", "text": {"format": {"type": "json_schema", "name": "x", "schema": BAD_REF}}},
        "text.format",
        "$defs",
    ),
    (
        "/v1/responses",
        {"input": "x", "tools": [{"type": "web_search"}]},
        "tools[0].type",
        "function",
    ),
    (
        "/v1/responses",
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
        "input",
        "",
    ),
]


def _check_error(
    server: ServerThread, model: str, path: str, body: dict, param: str, words: str
) -> None:
    r = httpx.post(f"{server.url}{path}", json=body, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error" and (err["param"] or "").startswith(param)
    assert words in err["message"], err["message"]
    assert ".cc:" not in err["message"] and "/home" not in err["message"]  # no internals
    # a refused constraint never reached the engine: it still serves, constrained or not
    ok = server.client().chat.completions.create(
        model=model, messages=USER, max_tokens=2, response_format={"type": "json_object"}
    )
    assert ok.usage.completion_tokens >= 1


@pytest.mark.parametrize(
    "body,param,words", [c[1:] for c in CHAT_ERRORS], ids=[c[0] for c in CHAT_ERRORS]
)
def test_chat_refusals(server, engine, body, param, words):
    body = {"messages": USER, **body}
    _check_error(server, engine.info.name, "/v1/chat/completions", body, param, words)


@pytest.mark.parametrize("path,body,param,words", OTHER_ERRORS)
def test_other_refusals(server, engine, path, body, param, words):
    _check_error(server, engine.info.name, path, body, param, words)


def test_refusals_through_the_openai_client(client, engine):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=engine.info.name, messages=USER, logprobs=True, top_logprobs=5
        )
    assert e.value.param == "top_logprobs" and e.value.status_code == 400
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=engine.info.name, input="x", previous_response_id="r")
    assert e.value.param == "previous_response_id"


def test_constrained_requests_are_counted(server, client, engine):
    before = server.metrics()
    client.chat.completions.create(
        model=engine.info.name,
        messages=USER,
        max_tokens=3,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {"type": "integer"}},
        },
    )
    after = server.metrics()
    key = 'ovchat_constrained_requests_total{kind="json_schema"}'
    assert after[key] - before.get(key, 0) == 1
    body = json.dumps({"messages": USER, "max_tokens": 3, "response_format": {"type": "text"}})
    httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=60)
    assert server.metrics()[key] == after[key]  # plain text is not constrained
