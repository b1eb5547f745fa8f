"""Ollama's native API over real HTTP with the official `ollama` client, on the tiny Phi-3
(random weights: the checks are about the protocol, and about answers equal to the engine's
own at temperature 0)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest
from test_serve import ServerThread

from ovchat import Engine, GenerationOptions
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app

USER = [{"role": "user", "content": "What does the class statement do?"}]
NOW = {"type": "function", "function": {"name": "now", "description": "The time"}}


@pytest.fixture(scope="module")
def engine(tiny_phi3: Path) -> Iterator[Engine]:
    e = Engine(tiny_phi3, backend="batching", max_num_seqs=4)
    yield e
    e.close()


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[ServerThread]:
    with ServerThread(create_app(Settings(max_running=4, api_key="sesame"), engine)) as s:
        yield s


@pytest.fixture(scope="module")
def client(server: ServerThread) -> ollama.Client:
    return ollama.Client(host=server.url, headers={"Authorization": "Bearer sesame"})


def test_chat_matches_the_engine_streamed_or_not(client, engine):
    opts = {"temperature": 0, "num_predict": 8}
    r = client.chat(model=engine.info.name, messages=USER, options=opts, stream=False)
    want = engine.generate(USER, GenerationOptions(max_new_tokens=8, temperature=0))
    assert r.message.role == "assistant" and r.message.content == want.text
    assert r.done and r.done_reason == "length" and r.eval_count == 8
    assert r.prompt_eval_count == len(engine.prompt_ids(USER))
    assert r.total_duration and r.total_duration >= r.eval_duration
    parts = list(client.chat(model=engine.info.name, messages=USER, options=opts, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content or "" for p in parts) == want.text
    assert parts[-1].done_reason == "length" and parts[-1].eval_count == 8


def test_generate_raw_and_templated(client, engine):
    opts = {"temperature": 0, "num_predict": 5}
    raw = client.generate(model=engine.info.name, prompt="The class", raw=True, options=opts)
    assert raw.response == engine.generate("The class", GenerationOptions(
        max_new_tokens=5, temperature=0)).text  # fmt: skip
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    templ = client.generate(model=engine.info.name, prompt="Hi", system="Be brief.", options=opts)
    assert templ.response == engine.generate(msgs, GenerationOptions(
        max_new_tokens=5, temperature=0)).text  # fmt: skip
    assert templ.prompt_eval_count == len(engine.prompt_ids(msgs))
    streamed = list(client.generate(model=engine.info.name, prompt="Hi", system="Be brief.",
                                    options=opts, stream=True))  # fmt: skip
    assert "".join(p.response for p in streamed) == templ.response
    # no prompt: the model is loaded, nothing generated
    load = client.generate(model=engine.info.name)
    assert load.done and load.done_reason == "load" and load.response == ""


def test_options_stop_and_seed(client, engine):
    kw = dict(model=engine.info.name, messages=USER)
    full = client.chat(**kw, options={"temperature": 0, "num_predict": 24}).message.content
    stops = [full[i : i + 3] for i in range(3, len(full) - 3)]
    stop = next(t for t in stops if t.isascii() and t.isalnum())
    cut = client.chat(**kw, options={"temperature": 0, "num_predict": 24, "stop": [stop]})
    assert cut.done_reason == "stop" and cut.message.content == full[: full.index(stop)]
    seeded = {"temperature": 1.0, "seed": 7, "num_predict": 12, "top_k": 20, "top_p": 0.9}
    a = client.chat(**kw, options=seeded).message.content
    assert a == client.chat(**kw, options=seeded).message.content
    small = client.chat(**kw, options={"num_ctx": len(engine.prompt_ids(USER)) + 3})
    assert small.eval_count == 3 and small.done_reason == "length"


def test_format_json_and_schema(client, engine):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}  # fmt: skip
    r = client.chat(model=engine.info.name, messages=USER, format=schema,
                    options={"temperature": 1.0, "seed": 1, "num_predict": 40})  # fmt: skip
    assert r.message.content.startswith("{")
    if r.done_reason == "stop":
        assert set(json.loads(r.message.content)) == {"n"}
    j = client.generate(model=engine.info.name, prompt="Describe a cat.", format="json",
                        options={"temperature": 1.0, "seed": 2, "num_predict": 30})  # fmt: skip
    assert j.response.startswith("{")


def test_tool_call_and_its_result(client, engine):
    r = client.chat(
        model=engine.info.name,
        messages=[{"role": "user", "content": "Time?"}],
        tools=[NOW],
        options={"temperature": 1.0, "seed": 0, "num_predict": 100},
    )
    # the tiny model may answer in text; when it calls, the call is whole and its
    # arguments an object (the tool takes none: exactly {})
    for call in r.message.tool_calls or ():
        assert call.function.name == "now" and call.function.arguments == {}
    history = [
        {"role": "user", "content": "Time?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "now", "arguments": {}}}]},
        {"role": "tool", "content": "12:00", "tool_name": "now"},
    ]  # fmt: skip
    follow = client.chat(model=engine.info.name, messages=history, tools=[NOW],
                         options={"num_predict": 4})  # fmt: skip
    assert follow.done
    assert follow.prompt_eval_count == len(engine.prompt_ids(
        [{**m, "tool_call_id": "now"} if m["role"] == "tool" else m for m in history],
        _tools()))  # fmt: skip


def _tools():
    from ovchat.engine.tools import check_tools

    return check_tools([NOW], "auto")


def test_models_endpoints(client, engine, server):
    (m,) = client.list().models
    assert m.model == engine.info.name and m.details.format == "openvino" and m.size > 0
    (p,) = client.ps().models
    assert p.model == engine.info.name and p.context_length == engine.info.context_length
    shown = client.show(engine.info.name)
    assert "completion" in shown.capabilities and shown.template
    headers = {"Authorization": "Bearer sesame"}
    v = httpx.get(f"{server.url}/api/version", headers=headers).json()
    assert v["version"] and v["ovchat"]
    assert client.pull(engine.info.name).status == "success"
    assert [s.status for s in client.pull(engine.info.name, stream=True)][-1] == "success"


def test_errors_are_ollamas(client, engine, server):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="no-such-model", messages=USER)
    assert e.value.status_code == 404 and "no-such-model" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model=engine.info.name, messages=USER, options={"temperature": -1})
    assert e.value.status_code == 400 and "options.temperature" in e.value.error
    r = httpx.post(f"{server.url}/api/chat", json={"model": engine.info.name})
    assert r.status_code == 401 and set(r.json()) == {"error"}
    r = httpx.post(f"{server.url}/api/chat", content=b"{nope",
                   headers={"Authorization": "Bearer sesame"})  # fmt: skip
    assert r.status_code == 400 and set(r.json()) == {"error"}
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'ovchat_requests_total{endpoint="/api/chat",status="200"}' in metrics
    assert 'ovchat_requests_total{endpoint="/api/chat",status="401"}' in metrics


# -- a pool of models: embeddings, keep_alive, the model list --------------------------------
@pytest.fixture(scope="module")
def pool_server(tiny_llama: Path, tiny_bert: Path) -> Iterator[ServerThread]:
    from ovchat.serve.settings import ModelSpec

    specs = (ModelSpec("llama", tiny_llama), ModelSpec("bert", tiny_bert))
    settings = Settings(models=specs, max_loaded=2, kv_cache_gb=1, properties={"CACHE_DIR": ""})
    with ServerThread(create_app(settings)) as s:
        yield s


def test_embed_keep_alive_and_the_model_list(pool_server):
    client = ollama.Client(host=pool_server.url)
    assert [m.model for m in client.list().models] == ["llama", "bert"]
    e = client.embed(model="bert", input=["a cat", "a dog"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 64
    one = client.embed(model="bert", input="a cat").embeddings[0]
    assert one == pytest.approx(e.embeddings[0], abs=1e-5)
    assert client.show("bert").capabilities == ["embedding"]
    assert {m.model for m in client.ps().models} == {"llama", "bert"}
    # keep_alive 0: unloaded once idle; the next request loads it again
    client.chat(model="llama", messages=USER, options={"num_predict": 2}, keep_alive=0)
    deadline = time.monotonic() + 30
    while "llama" in {m.model for m in client.ps().models}:
        assert time.monotonic() < deadline, "keep_alive 0 did not unload the model"
        time.sleep(0.2)
    assert client.chat(model="llama", messages=USER, options={"num_predict": 2}).done
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model="llama", input="x")
    assert err.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as err:
        client.pull("no-such-model-anywhere")
    assert err.value.status_code == 404
