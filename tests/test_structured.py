"""JSON answers and tool calls from the real default model (SmolLM2-135M) at temperature 1:
over HTTP with the official client (streamed and not), from Python and from the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import openai
import pytest
from conftest import run_main
from openai.lib._parsing._completions import type_to_response_format_param
from pydantic import BaseModel, Field
from test_serve import ServerThread

import ovchat
from ovchat import Engine
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

pytestmark = pytest.mark.real

SEEDS = 16  # concurrent, so about the time of the longest answer


class Address(BaseModel):
    city: str = Field(max_length=32)
    country: str = Field(max_length=32)


class Person(BaseModel):
    """Every string bounded: then every answer finishes (docs/server.md, "JSON output")."""

    name: str = Field(max_length=32)
    age: int = Field(ge=0, le=150)
    role: Literal["admin", "user", "guest"]
    email: str | None = Field(default=None, max_length=40)
    address: Address
    tags: list[Annotated[str, Field(max_length=16)]] = Field(max_length=3)


class Weather(BaseModel):
    city: str = Field(max_length=40)
    unit: Literal["celsius", "fahrenheit"]


WEATHER_TOOL = openai.pydantic_function_tool(Weather, name="get_weather", description="The weather")
ADD_TOOL = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two integers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def engine(smollm2: Path) -> Iterator[Engine]:
    e = Engine(smollm2, backend="batching")
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=SEEDS), engine)) as s:
        yield s


@pytest.fixture
def client(server: ServerThread) -> openai.OpenAI:
    # one per test: a pooled connection left idle between tests is closed by the server
    return server.client(timeout=600)


def _many(fn: Any) -> list[Any]:
    with ThreadPoolExecutor(SEEDS) as pool:
        return list(pool.map(fn, range(SEEDS)))


# -- JSON ----------------------------------------------------------------------------------
def test_pydantic_schema_parsed_over_many_seeds(client, engine):
    messages = [{"role": "user", "content": "Make up a person record as JSON."}]

    def one(seed: int) -> Any:
        r = client.chat.completions.parse(
            model=engine.info.name,
            messages=messages,
            response_format=Person,
            temperature=1.0,
            seed=seed,
            max_tokens=400,
        )
        return r.choices[0]

    choices = _many(one)
    for c in choices:  # parse() raises on a cut answer; every one finished and validates
        assert c.finish_reason == "stop" and isinstance(c.message.parsed, Person)
        assert Person.model_validate_json(c.message.content) == c.message.parsed
    assert len({c.message.content for c in choices}) > SEEDS // 2  # really sampled


def test_unbounded_schema_still_only_valid_or_cut(client, engine):
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
        "required": ["title", "year"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "film", "schema": schema}}

    def one(seed: int) -> Any:
        return client.chat.completions.create(
            model=engine.info.name,
            messages=[{"role": "user", "content": "Name a film and its year as JSON."}],
            response_format=fmt,
            temperature=1.0,
            seed=seed,
            max_tokens=120,
        ).choices[0]

    choices = _many(one)
    done = [c for c in choices if c.finish_reason == "stop"]
    for c in done:
        doc = json.loads(c.message.content)
        assert set(doc) == {"title", "year"} and isinstance(doc["year"], int)
    for c in choices:
        if c.finish_reason != "stop":  # cut inside a string: said so, as OpenAI does
            assert c.finish_reason == "length" and c.message.content.startswith('{"title": "')
    assert len(done) >= SEEDS // 2


def test_json_schema_streamed_and_json_object(client, engine):
    stream = client.chat.completions.create(
        model=engine.info.name,
        messages=[{"role": "user", "content": "Make up a person record as JSON."}],
        response_format=type_to_response_format_param(Person),
        temperature=1.0,
        max_tokens=400,
        stream=True,
    )
    text, finish = "", None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert finish == "stop"
    Person.model_validate_json(text)
    # any JSON object: open-ended (a small model may add keys until its limit), never invalid
    r = client.chat.completions.create(
        model=engine.info.name,
        messages=[{"role": "user", "content": "Describe a cat as a JSON object."}],
        response_format={"type": "json_object"},
        temperature=1.0,
        seed=1,
        max_tokens=200,
    ).choices[0]
    assert r.message.content.startswith("{")
    if r.finish_reason == "stop":
        assert isinstance(json.loads(r.message.content), dict)


# -- tools ---------------------------------------------------------------------------------
def _call_loop(client: openai.OpenAI, engine: Engine, stream: bool) -> None:
    kw: dict[str, Any] = dict(model=engine.info.name, temperature=1.0, seed=3, max_tokens=80)
    tools = [WEATHER_TOOL, ADD_TOOL]
    if stream:
        calls: dict[int, dict[str, str]] = {}
        finish = None
        for chunk in client.chat.completions.create(
            messages=ASK, tools=tools, tool_choice="required", stream=True, **kw
        ):
            for c in chunk.choices:
                for d in c.delta.tool_calls or ():
                    call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
                    call["id"] += d.id or ""
                    call["name"] += d.function.name or ""
                    call["arguments"] += d.function.arguments or ""
                finish = c.finish_reason or finish
        assert finish == "tool_calls" and len(calls) == 1
        call = calls[0]
    else:
        r = client.chat.completions.create(messages=ASK, tools=tools, tool_choice="required", **kw)
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (tc,) = choice.message.tool_calls
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    assert call["id"].startswith("call_") and call["name"] in ("get_weather", "add")
    args = json.loads(call["arguments"])
    if call["name"] == "get_weather":
        Weather.model_validate(args)
    else:
        assert set(args) == {"a", "b"} and all(isinstance(v, int) for v in args.values())
    # the result goes back; the model answers in text
    assistant = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call["id"], "type": "function",
         "function": {"name": call["name"], "arguments": call["arguments"]}},
    ]}  # fmt: skip
    result = {"role": "tool", "tool_call_id": call["id"], "content": '{"celsius": 21}'}
    follow = client.chat.completions.create(
        messages=[*ASK, assistant, result], tools=tools, tool_choice="none", **kw
    )
    answer = follow.choices[0]
    assert answer.finish_reason in ("stop", "length") and answer.message.content
    assert not answer.message.tool_calls
    # the whole loop went through the prompt: the call and its result are in it
    prompt = engine.render([*ASK, assistant, result])
    assert "<tool_response>" in prompt and f'"name": "{call["name"]}"' in prompt
    assert follow.usage.prompt_tokens == len(engine.encode(prompt))


def test_tool_loop_not_streamed(client, engine):
    _call_loop(client, engine, stream=False)


def test_tool_loop_streamed(client, engine):
    _call_loop(client, engine, stream=True)


def test_named_tool_choice_over_seeds(client, engine):
    def one(seed: int) -> Any:
        return client.chat.completions.create(
            model=engine.info.name,
            messages=[{"role": "user", "content": "What is 2 plus 3?"}],
            tools=[WEATHER_TOOL, ADD_TOOL],
            tool_choice={"type": "function", "function": {"name": "add"}},
            temperature=1.0,
            seed=seed,
            max_tokens=60,
        ).choices[0]

    for c in _many(one):
        assert c.finish_reason == "tool_calls" and len(c.message.tool_calls) == 1
        args = json.loads(c.message.tool_calls[0].function.arguments)
        assert c.message.tool_calls[0].function.name == "add"
        assert set(args) == {"a", "b"} and all(type(v) is int for v in args.values())


def test_bad_tool_parameters_are_a_400(client, engine):
    bad = {"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}}}  # fmt: skip
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=engine.info.name, messages=ASK, tools=[bad])
    assert e.value.param == "tools" and "cannot be used" in e.value.message
    ok = client.chat.completions.create(model=engine.info.name, messages=ASK, max_tokens=2)
    assert ok.choices[0].message.content is not None  # still serving


# -- /v1/responses with tools and a format -------------------------------------------------
def test_responses_function_call_and_format(client, engine):
    tool = {"type": "function", "name": "get_weather", "parameters": Weather.model_json_schema()}
    with client.responses.stream(
        model=engine.info.name, input=ASK, tools=[tool], tool_choice="required", temperature=1.0
    ) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    (item,) = final.output
    assert item.type == "function_call" and item.name == "get_weather"
    Weather.model_validate_json(item.arguments)
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    # the call's output back as an item, then a text answer
    follow = client.responses.create(
        model=engine.info.name,
        input=[*ASK, {"type": "function_call", "call_id": item.call_id, "name": item.name,
                      "arguments": item.arguments},
               {"type": "function_call_output", "call_id": item.call_id, "output": "21 C"}],
        max_output_tokens=40,
    )  # fmt: skip
    assert follow.output[0].type == "message" and follow.output_text
    parsed = client.responses.parse(
        model=engine.info.name, input="Make up a person.", text_format=Person, temperature=1.0
    )
    assert isinstance(parsed.output_parsed, Person)


# -- Python API and CLI --------------------------------------------------------------------
def test_python_api(smollm2):
    with ovchat.load(smollm2) as model:
        text = model.generate("Make up a person.", json_schema=Person, temperature=1.0, seed=5)
        assert isinstance(Person.model_validate_json(text), Person)
        code = model.generate("A zip code:", regex=r"[0-9]{5}", max_new_tokens=10)
        assert len(code) == 5 and code.isdigit()
        done = model.complete(ASK, tools=[WEATHER_TOOL], tool_choice="get_weather", seed=1)
        assert done.finish_reason == "tool_calls" and done.tool_calls[0].name == "get_weather"
        Weather.model_validate_json(done.tool_calls[0].arguments)
        with pytest.raises(ovchat.OptionError) as e:
            model.generate("x", json_schema={"type": "nope"})
        assert e.value.param == "json_schema" and "nope" in str(e.value)


def test_cli_constraints(smollm2, tmp_path, capsys):
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(Person.model_json_schema()))
    r = run_main(capsys, "generate", "Make up a person.", "-m", str(smollm2), "--json-schema",
                 str(schema), "-t", "1", "--seed", "2")  # fmt: skip
    assert r.returncode == 0, r.stderr
    Person.model_validate_json(r.stdout)
    grammar = tmp_path / "yes.ebnf"
    grammar.write_text('root ::= "yes" | "no"\n')
    r = run_main(capsys, "generate", "Is water wet?", "-m", str(smollm2), "--grammar", str(grammar))
    assert r.returncode == 0 and r.stdout.strip() in ("yes", "no")
    r = run_main(capsys, "generate", "x", "-m", str(smollm2), "--regex", "(a")
    assert r.returncode == 2 and "--regex" in r.stderr and "parenthesis" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_main(capsys, "generate", "x", "-m", str(smollm2), "--json-schema", str(tmp_path / "no"))
    assert r.returncode == 2 and "--json-schema" in r.stderr and "cannot read" in r.stderr
