"""The engine's streaming primitive on tiny models: chunks, stats, options, cancel, errors."""

from __future__ import annotations

import json
import threading
import time

import pytest

from ovchat.engine import Engine, check_device
from ovchat.errors import ContextLengthError, DeviceError, InvalidModelError, OptionError
from ovchat.options import GenerationOptions

USER = [{"role": "user", "content": "What does the class statement do?"}]


@pytest.fixture(scope="module", params=["pipeline", "batching"])
def engine(request, tiny_llama):
    e = Engine(tiny_llama, backend=request.param)
    yield e
    e.close()


def test_stream_yields_chunks_then_finish(engine):
    chunks = list(engine.stream(USER, GenerationOptions(max_new_tokens=12, temperature=0)))
    assert chunks[-1].finish_reason in ("stop", "length")
    assert all(c.finish_reason is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.prompt_tokens == len(engine.prompt_ids(USER))
    assert 1 <= last.generated_tokens <= 12
    assert last.ttft is not None and last.ttft > 0
    text = "".join(c.text for c in chunks)
    # counts are consistent with the text: re-encoding gives back about as many tokens
    assert text and abs(len(engine.encode(text)) - last.generated_tokens) <= 2


def test_max_new_tokens_gives_length(engine):
    c = engine.generate(USER, GenerationOptions(max_new_tokens=5, temperature=0))
    # random tiny weights practically never emit the end token within 5 tokens
    assert c.generated_tokens == 5 and c.finish_reason == "length"
    assert c.tokens_per_second and c.tokens_per_second > 0


def test_greedy_is_deterministic_and_same_across_backends(tiny_llama, engine):
    o = GenerationOptions(max_new_tokens=16, temperature=0)
    a = engine.generate(USER, o).text
    b = engine.generate(USER, o).text
    assert a == b
    other = Engine(tiny_llama, backend="batching" if engine.backend == "pipeline" else "pipeline")
    try:
        assert other.generate(USER, o).text == a
    finally:
        other.close()


def test_seeded_sampling_repeats(engine):
    o = GenerationOptions(max_new_tokens=16, temperature=1.0, top_k=50, seed=7)
    assert engine.generate(USER, o).text == engine.generate(USER, o).text


def test_stop_string(engine):
    full = engine.generate(USER, GenerationOptions(max_new_tokens=24, temperature=0)).text
    words = full.split()
    assert len(words) >= 3
    stop = words[1]
    cut = engine.generate(USER, GenerationOptions(max_new_tokens=24, temperature=0, stop=(stop,)))
    assert stop not in cut.text
    assert cut.finish_reason == "stop"
    assert full.startswith(cut.text.rstrip()) or cut.text.strip() in full


def test_close_generator_cancels(engine):
    gen = engine.stream(USER, GenerationOptions(max_new_tokens=200, temperature=0))
    next(gen)
    gen.close()  # generation must really stop, and the engine must still work afterwards
    if engine.backend == "batching":
        deadline = time.monotonic() + 30
        while engine.status().active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.status().active == 0  # the request was cancelled and its blocks freed
    else:
        assert not engine._lock.locked()  # the worker finished: nothing holds the pipeline
    assert engine.generate(USER, GenerationOptions(max_new_tokens=3)).generated_tokens == 3


def test_cancel_event(engine):
    ev = threading.Event()
    chunks = []
    for c in engine.stream(USER, GenerationOptions(max_new_tokens=200, temperature=0), ev):
        chunks.append(c)
        if len(chunks) == 2:
            ev.set()
    assert chunks[-1].finish_reason == "cancelled"
    assert chunks[-1].generated_tokens < 200


def test_prompt_longer_than_context(engine):
    long = "word " * 2000
    with pytest.raises(ContextLengthError, match="context window"):
        list(engine.stream(long))


def test_answer_budget_clamped_to_context(engine):
    ids = engine.encode("word " * 100)
    room = engine.info.context_length - len(ids)
    c = engine.generate("word " * 100, GenerationOptions(max_new_tokens=10_000, temperature=0))
    assert c.generated_tokens <= room and c.finish_reason in ("length", "stop")


def test_chat_template_is_the_models(tiny_phi3):
    e = Engine(tiny_phi3)
    text = e.render([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}])
    assert text == "<|system|>\nS<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\n"


@pytest.mark.parametrize(
    "bad",
    [
        dict(max_new_tokens=0),
        dict(temperature=-1),
        dict(top_p=0),
        dict(top_p=1.5),
        dict(top_k=-2),
        dict(repetition_penalty=0),
        dict(seed=-1),
        dict(stop=("",)),
    ],
)
def test_bad_options(bad):
    with pytest.raises(OptionError):
        GenerationOptions(**bad)


def test_unknown_device_names_present_ones():
    with pytest.raises(DeviceError, match=r"available: .*CPU"):
        check_device("NPU.7")
    assert check_device("cpu") == "CPU"
    assert check_device("AUTO") == "AUTO"


def test_missing_and_corrupted_dirs(tmp_path, tiny_llama):
    with pytest.raises(InvalidModelError, match="does not exist"):
        Engine(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidModelError, match=r"missing openvino_model\.xml"):
        Engine(tmp_path / "empty")
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_llama, broken)
    (broken / "openvino_model.xml").write_text("<net><layers>truncated")
    with pytest.raises(InvalidModelError, match="could not load"):
        Engine(broken, properties={"CACHE_DIR": ""})


def test_unseeded_sampling_varies(engine):
    """Without a seed, sampling draws a fresh one per request (genai's default is fixed)."""
    o = GenerationOptions(max_new_tokens=16, temperature=1.5, top_k=0)
    texts = {engine.generate(USER, o).text for _ in range(4)}
    assert len(texts) > 1


def test_config_not_an_object_or_bad_context(tmp_path, tiny_llama):
    import shutil

    for bad, needle in (("[1, 2]", "not a JSON object"), ('{"max_position_embeddings": 0}',
                        "context of 0")):  # fmt: skip
        d = tmp_path / f"m{len(bad)}"
        shutil.copytree(tiny_llama, d)
        (d / "config.json").write_text(bad)
        with pytest.raises(InvalidModelError, match=needle):
            Engine(d)


def test_bad_property_is_an_option_error(tiny_llama):
    with pytest.raises(OptionError, match="FOO"):
        Engine(tiny_llama, properties={"FOO": "bar"})


def test_corrupted_bin_names_the_cause_and_the_fix(tmp_path, tiny_llama):
    import shutil

    d = tmp_path / "trunc"
    shutil.copytree(tiny_llama, d)
    data = (d / "openvino_model.bin").read_bytes()
    (d / "openvino_model.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(InvalidModelError) as err:
        Engine(d, properties={"CACHE_DIR": ""})
    msg = str(err.value)
    assert "Exception from" not in msg and ".cpp" not in msg
    src = json.loads((tiny_llama / "ovchat.json").read_text())["source"]["model"]
    assert f"ovchat export {src} {d} --force" in msg  # a command that really rebuilds it


def test_untokenizable_prompt_is_an_option_error(engine):
    with pytest.raises(OptionError, match="not valid UTF-8"):
        list(engine.stream("hi \udcff\udcfe"))  # undecodable bytes read with surrogateescape
    with pytest.raises(OptionError, match="not valid UTF-8"):
        list(engine.stream([{"role": "user", "content": "hi \udcff"}]))


def test_pipeline_load_is_served_from_the_cache(tmp_path, tiny_llama):
    """The second load must reuse the compiled blob, not rewrite it."""
    cache = tmp_path / "cache"
    Engine(tiny_llama, properties={"CACHE_DIR": str(cache)})
    blobs = {p: p.stat().st_mtime_ns for p in cache.rglob("*.blob")}
    assert blobs
    Engine(tiny_llama, properties={"CACHE_DIR": str(cache)})
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.blob")} == blobs


def test_a_plan_is_sent_as_planned(engine):
    o = GenerationOptions(max_new_tokens=8, temperature=0)
    ids = engine.prompt_ids(USER)
    plan = engine.plan(USER, o)
    assert list(plan.ids) == ids and plan.options == o
    a, b = engine.generate(USER, o), engine.generate(plan, o)
    assert (a.text, a.prompt_tokens) == (b.text, b.prompt_tokens) == (a.text, len(ids))


def test_bytes_python_refuses_become_replacement_characters(engine):
    """F4 90 80 80 passes genai's detokenizer but not Python's UTF-8 decoder (past
    U+10FFFF): the answer goes on with U+FFFD instead of failing (a tiny model sampled it)."""
    import queue

    from ovchat.engine.streamer import TokenCounter

    tok = engine.tokenizer
    vocab = tok.get_vocab()
    bad = [vocab[bytes([b])] for b in (0xF4, 0x90, 0x80, 0x80)]
    hello = [int(i) for i in tok.encode("Hello there").input_ids.data[0]]
    sink: queue.Queue = queue.Queue()
    counter = TokenCounter(tok, sink, threading.Event())
    for ids in (hello, bad, hello, [tok.get_eos_token_id()]):
        counter.write(ids)
    counter.end()
    events = [sink.get_nowait() for _ in range(sink.qsize())]
    text = "".join(payload[1] for kind, payload in events if kind == "text")
    assert text.startswith("Hello there") and text.endswith("Hello there")
    assert "\ufffd" in text and counter.tokens == 2 * len(hello) + 5
