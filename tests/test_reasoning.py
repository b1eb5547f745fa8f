"""Reasoning (`<think>…</think>`) comes back apart from the answer on every protocol: a tiny
random Llama given a DeepSeek-R1-style template (the generation prompt opens `<think>`; with
`enable_thinking` false it holds an empty thinking block instead). Random weights never close
the thinking, so an answer with thinking on is all reasoning; with it off, all text."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import anthropic
import ollama
import openai
import pytest
from conftest import LLAMA3_TEMPLATE
from test_serve import ServerThread

from ovchat import Engine, GenerationOptions
from ovchat.engine.reasoning import ThinkSplitter
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

THINKING_TEMPLATE = LLAMA3_TEMPLATE.replace(
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\n\n</think>\n\n' }}{% else %}{{ '<think>\n' }}{% endif %}",
)
USER = [{"role": "user", "content": "What does the class statement do?"}]
N = 8


@pytest.fixture(scope="module")
def engine(tiny_llama_hf: Path, tiny_root: Path, tiny_export) -> Iterator[Engine]:
    assert THINKING_TEMPLATE != LLAMA3_TEMPLATE
    hf = tiny_root / "llama-thinking-hf"
    if not hf.exists():
        shutil.copytree(tiny_llama_hf, hf)
        (hf / "chat_template.jinja").write_text(THINKING_TEMPLATE)
    e = Engine(tiny_export(hf, "int4"), backend="batching", max_num_seqs=4)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=4), engine)) as s:
        yield s


@pytest.fixture(scope="module")
def thought(engine: Engine) -> str:
    """The engine's own answer with thinking on (all of it thinking, see the module doc)."""
    text = engine.generate(USER, GenerationOptions(max_new_tokens=N, temperature=0)).text
    assert text and "</think>" not in text
    return text


@pytest.fixture(scope="module")
def answered(engine: Engine) -> str:
    plan = engine.plan(USER, GenerationOptions(max_new_tokens=N, temperature=0), thinking=False)
    return engine.generate(plan).text


def test_the_switch_reaches_the_template(engine):
    on, off = engine.plan(USER), engine.plan(USER, thinking=False)
    assert on.reasoning == "inside" and off.reasoning == "tagged"
    assert engine.render(USER).endswith("<think>\n")
    assert engine.render(USER, thinking=False).endswith("</think>\n\n")


def test_chat_completions_reasoning_content(server, engine, thought, answered):
    client = server.client()
    kw = dict(model=engine.info.name, messages=USER, max_tokens=N, temperature=0)
    r = client.chat.completions.create(**kw).choices[0].message
    assert r.reasoning_content == thought and r.content == ""  # type: ignore[attr-defined]
    parts = list(client.chat.completions.create(stream=True, **kw))
    deltas = [p.choices[0].delta for p in parts if p.choices]
    streamed = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert streamed == thought and not "".join(d.content or "" for d in deltas)
    off = (
        client.chat.completions.create(
            **kw, extra_body={"chat_template_kwargs": {"enable_thinking": False}}
        )
        .choices[0]
        .message
    )
    assert off.content == answered and not getattr(off, "reasoning_content", None)
    effort = client.chat.completions.create(**kw, reasoning_effort="none").choices[0].message
    assert effort.content == answered


def test_responses_reasoning_item(server, engine, thought, answered):
    client = server.client()
    kw = dict(model=engine.info.name, input=USER, max_output_tokens=N, temperature=0)
    r = client.responses.create(**kw)
    assert [i.type for i in r.output] == ["reasoning", "message"]
    assert r.output[0].content[0].text == thought
    with client.responses.stream(**kw) as s:
        events = list(s)
    kinds = [e.type for e in events]
    final = events[-1].response  # response.incomplete: cut at max_output_tokens
    assert "response.reasoning_text.delta" in kinds and final.output[0].type == "reasoning"
    assert final.output[0].content[0].text == thought
    off = client.responses.create(**kw, reasoning={"effort": "none"})
    assert [i.type for i in off.output] == ["message"] and off.output_text == answered


def test_ollama_thinking(server, engine, thought, answered):
    client = ollama.Client(host=server.url)
    opts = {"temperature": 0, "num_predict": N}
    r = client.chat(model=engine.info.name, messages=USER, options=opts, think=True)
    assert r.message.thinking == thought and r.message.content == ""
    parts = list(client.chat(model=engine.info.name, messages=USER, options=opts, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == thought
    off = client.chat(model=engine.info.name, messages=USER, options=opts, think=False)
    assert off.message.content == answered and not off.message.thinking


def test_anthropic_thinking_blocks(server, engine, thought, answered):
    client = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    kw = dict(model=engine.info.name, max_tokens=N, messages=USER,
              extra_body={"temperature": 0})  # fmt: skip
    r = client.messages.create(**kw)
    assert [b.type for b in r.content] == ["thinking", "text"]
    assert r.content[0].thinking == thought
    with client.messages.stream(**kw) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].thinking == thought
    off = client.messages.create(**kw, thinking={"type": "disabled"})
    assert [b.type for b in off.content] == ["text"] and off.content[0].text == answered


def test_the_splitter_in_any_split():
    text = "<think>\nstep one</think>\n\nThe answer."
    for cut in range(1, len(text)):
        s = ThinkSplitter("tagged")
        parts = s.feed(text[:cut]) + s.feed(text[cut:]) + s.close()
        assert "".join(t for k, t in parts if k == "reasoning") == "\nstep one"
        assert "".join(t for k, t in parts if k == "text") == "The answer."
    s = ThinkSplitter("tagged")
    assert s.feed("No thinking <here>") + s.close() == [("text", "No thinking <here>")]
    assert (
        json.dumps(ThinkSplitter("inside").feed("a</think>b"))
        == '[["reasoning", "a"], ["text", "b"]]'
    )


def test_a_thinking_budget(server, engine):
    """At most B tokens of thinking, then `</think>` written for the model, then the answer
    with what is left of max_tokens."""
    budget = 3
    short = engine.generate(USER, GenerationOptions(max_new_tokens=budget, temperature=0)).text
    ids = [*engine.prompt_ids(USER), *engine.encode(short + "\n</think>\n\n")]
    left = GenerationOptions(max_new_tokens=N - budget, temperature=0)
    plan = engine.planner.plan_ids(ids, left)
    after = engine.generate(plan).text
    client = server.client()
    kw = dict(model=engine.info.name, messages=USER, max_tokens=N, temperature=0)
    r = client.chat.completions.create(**kw, extra_body={"thinking_budget": budget})
    msg = r.choices[0].message
    assert msg.reasoning_content == short and msg.content == after  # type: ignore[attr-defined]
    assert r.usage.completion_tokens == N and r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == len(engine.prompt_ids(USER))
    budgeted = {"thinking_budget": budget}
    streamed = list(client.chat.completions.create(**kw, stream=True, extra_body=budgeted))
    deltas = [p.choices[0].delta for p in streamed if p.choices]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == short
    assert "".join(d.content or "" for d in deltas) == after
    claude = anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)
    m = claude.messages.create(model=engine.info.name, max_tokens=N, messages=USER,
                               thinking={"type": "enabled", "budget_tokens": budget},
                               extra_body={"temperature": 0})  # fmt: skip
    assert m.content[0].thinking == short and m.content[1].text == after
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**{**kw, "temperature": 1.0}, n=2, extra_body=budgeted)
    assert e.value.param == "thinking_budget"
