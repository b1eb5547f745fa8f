"""Several models behind one real server, through the official openai client: two chat
models streaming at once, embeddings, a model that fails to load, loading on first use,
LRU and keep-alive unloading, `rm` of a model a server holds, and the CLI's `--library`
with `ovchat ps`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from conftest import run_cli, run_main
from test_serve import WAIT_SECONDS, ServerThread, _ovchat

from ovchat.engine.embedder import Embedder
from ovchat.serve import ServerSettings as Settings
from ovchat.serve import create_app
from ovchat.serve.settings import ModelSpec

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
USER = [{"role": "user", "content": "What does the class statement do?"}]
TEXTS = ["What does the class statement do?", "hello world"]


@pytest.fixture(scope="module")
def broken(tiny_llama, tmp_path_factory) -> Path:
    """An export whose weights were cut short: OpenVINO refuses to load it."""
    d = tmp_path_factory.mktemp("broken") / "broken"
    shutil.copytree(tiny_llama, d)
    data = (d / "openvino_model.bin").read_bytes()
    (d / "openvino_model.bin").write_bytes(data[: len(data) // 3])
    return d


@pytest.fixture(scope="module")
def server(tiny_llama, tiny_phi3, tiny_bert, broken):
    specs = (
        ModelSpec("llama", tiny_llama, ("tiny-llama",)),
        ModelSpec("phi3", tiny_phi3),
        ModelSpec("bert", tiny_bert),
        ModelSpec("broken", broken),
    )
    props = {**F32, "CACHE_DIR": ""}
    settings = Settings(models=specs, max_loaded=3, kv_cache_gb=1, properties=props)
    with ServerThread(create_app(settings)) as s:
        yield s


def states(s: ServerThread) -> dict[str, str]:
    return {m["id"]: m["state"] for m in httpx.get(f"{s.url}/v1/models").json()["data"]}


def metric(s: ServerThread, name: str, **labels: str) -> float:
    key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
    return s.metrics().get(key, 0.0)


def test_models_listed_default_loaded_others_on_first_use(server):
    models = server.client().models.list().data
    assert [m.id for m in models] == ["llama", "phi3", "bert", "broken"]
    assert [m.model_extra["kind"] for m in models] == ["chat", "chat", "embedding", "chat"]
    assert states(server) == {
        "llama": "loaded", "phi3": "unloaded", "bert": "unloaded", "broken": "unloaded",
    }  # fmt: skip
    assert server.client().models.retrieve("tiny-llama").id == "llama"  # an alias
    with pytest.raises(openai.NotFoundError) as e:
        server.client().chat.completions.create(model="nope", messages=USER, max_tokens=2)
    assert e.value.code == "model_not_found" and "'llama', 'phi3'" in e.value.message


def test_two_chat_models_stream_at_once(server):
    client = server.client()
    # The model field picks; phi3 loads on its first request (its load time is a metric).
    r = client.chat.completions.create(model="phi3", messages=USER, max_tokens=3, temperature=0)
    assert r.model == "phi3" and r.usage.completion_tokens == 3
    assert metric(server, "ovchat_model_load_seconds_count", model="phi3") == 1
    assert metric(server, "ovchat_model_loads_total", model="phi3", outcome="loaded") == 1

    async def stream(model: str) -> dict[str, Any]:
        aclient = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0)
        s = await aclient.chat.completions.create(
            model=model, messages=USER, max_tokens=120, temperature=0, stream=True,
            extra_body={"ignore_eos": True},
        )  # fmt: skip
        times, parts = [], []
        async for chunk in s:
            assert chunk.model == model
            if chunk.choices and chunk.choices[0].delta.content:
                times.append(time.monotonic())
                parts.append(chunk.choices[0].delta.content)
        return {"first": times[0], "last": times[-1], "text": "".join(parts)}

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(stream("llama"), stream("phi3"))

    a, b = asyncio.run(both())
    assert a["first"] < b["last"] and b["first"] < a["last"], (a, b)  # they overlapped
    for model, got in (("llama", a), ("phi3", b)):  # and each is its own model's answer
        want = client.chat.completions.create(
            model=model, messages=USER, max_tokens=120, temperature=0,
            extra_body={"ignore_eos": True},
        )  # fmt: skip
        assert got["text"] == want.choices[0].message.content
    assert a["text"] != b["text"]


def test_embeddings_float_base64_dimensions_usage(server, tiny_bert):
    client = server.client()
    want = Embedder(tiny_bert, properties=F32).embed(TEXTS)
    r = client.embeddings.create(model="bert", input=TEXTS)  # the client asks for base64
    assert r.model == "bert" and [d.index for d in r.data] == [0, 1]
    assert np.allclose([d.embedding for d in r.data], want.vectors, atol=1e-5)
    assert r.usage.prompt_tokens == r.usage.total_tokens == want.total_tokens
    body = {"model": "bert", "input": TEXTS[0], "encoding_format": "float"}
    raw = httpx.post(f"{server.url}/v1/embeddings", json=body).json()
    assert np.allclose(raw["data"][0]["embedding"], want.vectors[0], atol=1e-5)
    assert (
        len(client.embeddings.create(model="bert", input="x", dimensions=64).data[0].embedding)
        == 64
    )
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="bert", input="x", dimensions=32)
    assert e.value.param == "dimensions" and "Matryoshka" in e.value.message
    for bad in ([], [1, 2, 3], ["ok", ""]):
        with pytest.raises(openai.BadRequestError) as e:
            client.embeddings.create(model="bert", input=bad)
        assert e.value.param == "input", e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="llama", input="x")
    assert e.value.code == "model_not_supported" and "chat model" in e.value.message
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="bert", messages=USER, max_tokens=2)
    assert "embedding model" in e.value.message and "/v1/embeddings" in e.value.message
    assert metric(server, "ovchat_embedded_tokens_total") >= want.total_tokens


def test_a_model_that_fails_to_load_answers_its_own_requests(server, broken):
    client = server.client()
    for _ in range(2):  # the second is answered from the failure, without a new attempt
        with pytest.raises(openai.APIStatusError) as e:
            client.chat.completions.create(model="broken", messages=USER, max_tokens=2)
        assert e.value.status_code == 503 and e.value.code == "model_load_failed"
        assert "could not be loaded" in e.value.message and str(broken) not in e.value.message
    assert metric(server, "ovchat_model_loads_total", model="broken", outcome="failed") == 1
    assert states(server)["broken"] == "failed"
    r = client.chat.completions.create(model="llama", messages=USER, max_tokens=2)
    assert r.usage.completion_tokens == 2  # the others go on serving


def test_least_recently_used_unloads_past_max_loaded(tiny_llama, tiny_phi3, tiny_bert):
    specs = (ModelSpec("llama", tiny_llama), ModelSpec("phi3", tiny_phi3),
             ModelSpec("bert", tiny_bert))  # fmt: skip
    settings = Settings(models=specs, max_loaded=2, kv_cache_gb=1, properties={"CACHE_DIR": ""})
    with ServerThread(create_app(settings)) as s:
        client = s.client()
        client.chat.completions.create(model="phi3", messages=USER, max_tokens=2)
        assert states(s) == {"llama": "loaded", "phi3": "loaded", "bert": "unloaded"}
        client.embeddings.create(model="bert", input="x")  # llama is the least recently used
        assert states(s) == {"llama": "unloaded", "phi3": "loaded", "bert": "loaded"}
        assert metric(s, "ovchat_model_unloads_total", model="llama", reason="lru") == 1

        # Three requests to an unloaded model at once: they wait for one load.
        async def three() -> list[Any]:
            ac = openai.AsyncOpenAI(base_url=f"{s.url}/v1", api_key="x", max_retries=0)
            calls = [ac.chat.completions.create(model="llama", messages=USER, max_tokens=2)
                     for _ in range(3)]  # fmt: skip
            return await asyncio.gather(*calls)

        assert [r.usage.completion_tokens for r in asyncio.run(three())] == [2, 2, 2]
        assert metric(s, "ovchat_model_loads_total", model="llama", outcome="loaded") == 2
        assert states(s) == {"llama": "loaded", "phi3": "unloaded", "bert": "loaded"}
        s.wait_idle()


def test_keep_alive_unloads_idle_models(tiny_llama, tiny_bert):
    specs = (ModelSpec("llama", tiny_llama), ModelSpec("bert", tiny_bert))
    settings = Settings(models=specs, keep_alive=0.5, kv_cache_gb=1)
    with ServerThread(create_app(settings)) as s:
        s.client().embeddings.create(model="bert", input="x")
        deadline = time.monotonic() + WAIT_SECONDS
        while states(s) != {"llama": "unloaded", "bert": "unloaded"}:
            assert time.monotonic() < deadline, states(s)
            time.sleep(0.1)
        assert metric(s, "ovchat_model_unloads_total", model="bert", reason="keep_alive") == 1
        r = s.client().chat.completions.create(model="llama", messages=USER, max_tokens=2)
        assert r.usage.completion_tokens == 2  # and it loads again when asked for


def test_rm_of_a_model_a_server_holds_is_refused(tiny_llama, tmp_path, monkeypatch, capsys):
    from ovchat.library.store import Entry, now, write_entry

    monkeypatch.setenv("OVCHAT_HOME", str(tmp_path))
    path = tmp_path / "models" / "tiny-int4"
    shutil.copytree(tiny_llama, path)
    write_entry(Entry("tiny", "int4", path, now(), default=True))
    app = create_app(Settings(models=(ModelSpec("tiny:int4", path),), kv_cache_gb=1))
    with ServerThread(app):
        r = run_main(capsys, "rm", "-y", "tiny")
        assert r.returncode == 2 and "held by a running server" in r.stderr, r
        assert path.is_dir()
        r = run_main(capsys, "ps", "--json")
        (record,) = json.loads(r.stdout)
        assert record["pid"] == os.getpid() and record["models"][0]["state"] == "loaded"
    r = run_main(capsys, "rm", "-y", "tiny")  # the server has stopped: it goes
    assert r.returncode == 0 and not path.exists(), r


def test_cli_serves_the_library_and_ps_shows_it(tiny_llama, tiny_bert, tmp_path):
    env = {"OVCHAT_HOME": str(tmp_path)}
    assert run_cli("cp", str(tiny_llama), "chat", env=env).returncode == 0
    assert run_cli("cp", str(tiny_bert), "vectors", env=env).returncode == 0
    proc = subprocess.Popen(
        [_ovchat(), "serve", "--library", "--port", "0",
         "--max-loaded", "1", "--kv-cache-gb", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"ovchat serve: chat:int4, vectors:fp32 ready at (http://\S+)", line)
        assert m, line + (proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
        client = openai.OpenAI(base_url=m.group(1) + "v1", api_key="x", max_retries=0)
        assert len(client.embeddings.create(model="vectors", input="hi").data[0].embedding) == 64
        ps = run_cli("ps", env=env)
        assert ps.returncode == 0, ps.stderr
        rows = {ln.split()[0]: ln.split()[2] for ln in ps.stdout.splitlines()[1:]}
        assert rows == {"chat:int4": "unloaded", "vectors:fp32": "loaded"}  # --max-loaded 1
        r = client.chat.completions.create(model="chat", messages=USER, max_tokens=2)
        assert r.model == "chat:int4"  # the name without its tag is accepted
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert run_cli("ps", env=env).stdout.strip() == "no ovchat server is running"


def test_cli_bad_model_lists_close_names(tmp_path):
    r = run_cli("serve", "-m", "nosuchmodel", "--port", "0", env={"OVCHAT_HOME": str(tmp_path)})
    assert r.returncode == 2 and "no model named 'nosuchmodel'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
