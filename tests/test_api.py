"""The Python API (`ovchat.load`, Model, Conversation) on tiny models, and on SmolLM2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ovchat
from ovchat.errors import ContextLengthError, OptionError
from ovchat.options import GenerationOptions

# The README's example, exactly as the README shows it.
README_EXAMPLE = """\
import ovchat

model = ovchat.load()  # the default model; or ovchat.load("./model/phi3-instruct/int4", "GPU")
print(model.generate("What is the capital of France?", max_new_tokens=64))

chat = model.chat(system="You are a helpful assistant. Answer briefly.", max_new_tokens=200)
print(chat.send("What is the capital of France?"))
for chunk in chat.stream("What is it famous for?"):  # this turn sees the first one
    print(chunk.text, end="", flush=True)
print()
print(len(chat.messages), "messages; last answer:", chat.last.generated_tokens, "tokens")
"""
GREEDY = {"temperature": 0.0, "max_new_tokens": 12}
Q1 = "What does the class statement do?"
Q2 = "And the def statement?"


@pytest.fixture(scope="module")
def model(tiny_llama):
    with ovchat.load(tiny_llama) as m:
        yield m


@pytest.fixture(scope="module")
def long_llama(tiny_llama, tmp_path_factory) -> Path:
    """The tiny model told its window is 4096 tokens (its RoPE has no limit): long answers to
    stop, and conversations that are not trimmed (256 tokens end both too soon)."""
    path = Path(shutil.copytree(tiny_llama, tmp_path_factory.mktemp("api") / "long"))
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "max_position_embeddings": 4096}))
    return path


@pytest.fixture(scope="module")
def long_model(long_llama):
    with ovchat.load(long_llama) as m:
        yield m


def run_example(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_generate_str_goes_through_the_chat_template(model):
    text = model.generate(Q1, **GREEDY)
    assert isinstance(text, str) and text
    templated = model.engine.generate(
        [{"role": "user", "content": Q1}], GenerationOptions(**GREEDY)
    )
    assert text == templated.text
    raw = model.generate(Q1, raw=True, **GREEDY)
    assert raw == model.engine.generate(Q1, GenerationOptions(**GREEDY)).text
    assert raw != text  # the template really changed the prompt


def test_stream_yields_engine_chunks(model):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": Q1}]
    chunks = list(model.stream(messages, **GREEDY))
    assert all(isinstance(c, ovchat.Chunk) for c in chunks)
    assert len(chunks) > 2 and chunks[-1].finish_reason == "length"
    assert chunks[-1].prompt_tokens == len(model.engine.prompt_ids(messages))
    assert "".join(c.text for c in chunks) == model.generate(messages, **GREEDY)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"temprature": 0.5}, "unknown generation option: temprature"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be an integer"),
        ({"top_p": 2}, "top_p must be in (0, 1]"),
        ({"stop": ["ok", 3]}, "stop must be a string or a list of strings"),
        ({"seed": True}, "seed must be an integer"),
    ],
)
def test_options_are_validated(model, options, needle):
    with pytest.raises(OptionError) as err:
        model.generate(Q1, **options)
    assert needle in str(err.value)
    with pytest.raises(OptionError):
        model.chat(**options)


def test_bad_messages_are_refused(model):
    with pytest.raises(OptionError, match="role"):
        model.generate([{"role": "robot", "content": "hi"}])
    with pytest.raises(OptionError, match="content"):
        model.generate([{"role": "user"}])


def test_conversation_keeps_history_and_sends_it(model):
    chat = model.chat(system="Be brief.", **GREEDY)
    a1 = chat.send(Q1)
    first_prompt = chat.last.prompt_tokens
    a2 = "".join(c.text for c in chat.stream(Q2))
    assert chat.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": Q1},
        {"role": "assistant", "content": a1},
        {"role": "user", "content": Q2},
        {"role": "assistant", "content": a2},
    ]
    # the second prompt is the whole conversation so far, through the template
    assert chat.last.prompt_tokens == len(model.engine.prompt_ids(chat.messages[:4]))
    assert chat.last.prompt_tokens > first_prompt + len(model.engine.encode(a1))
    assert chat.context_tokens == chat.last.prompt_tokens + chat.last.generated_tokens
    messages = chat.messages
    messages.append({"role": "user", "content": "not sent"})  # a copy: history unchanged
    assert len(chat.messages) == 5
    chat.reset()
    assert chat.messages == [{"role": "system", "content": "Be brief."}] and chat.last is None


def test_stopping_a_stream_keeps_the_partial_answer(long_model):
    chat = long_model.chat(temperature=0.0, max_new_tokens=4000)
    seen = []
    for chunk in chat.stream(Q1):
        seen.append(chunk.text)
        if len(seen) == 3:
            break  # leaving the loop closes the generator, which stops generation
    assert chat.messages[-1] == {"role": "assistant", "content": "".join(seen)}
    assert chat.last.finish_reason == "cancelled"
    assert chat.last.generated_tokens < 2000  # stopped, not run to the end behind our back
    assert chat.send(Q2, max_new_tokens=4)  # and the next turn works
    assert len(chat.messages) == 4 and chat.last.generated_tokens == 4


def test_too_long_message_leaves_history_untouched(model):
    chat = model.chat(**GREEDY)
    chat.send(Q1)
    before = chat.messages
    with pytest.raises(ContextLengthError):
        chat.send("word " * 400)  # more than the tiny model's 256-token window
    assert chat.messages == before
    with pytest.raises(OptionError):
        chat.send("   ")


def test_context_trimming_drops_oldest_turns_keeps_system(model):
    assert model.context_length == 256
    chat = model.chat(system="You answer questions about Python.", temperature=0.0)
    question = "Explain what the statement does in a Python program, with an example please."
    for i in range(6):
        chat.send(f"{i}: {question}", max_new_tokens=48)
    assert chat.dropped > 0
    msgs = chat.messages
    assert msgs[0] == {"role": "system", "content": "You answer questions about Python."}
    assert msgs[1]["role"] == "user" and msgs[-1]["role"] == "assistant"
    assert msgs[-2]["content"] == f"5: {question}"
    assert not any(m["content"].startswith("0: ") for m in msgs)  # the oldest went first
    # what was sent fits: the prompt plus the answer budget within the window
    assert chat.last.prompt_tokens + 48 <= model.context_length


def test_system_setter_and_messages_setter(model):
    chat = model.chat()
    chat.messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    chat.system = "S"
    assert chat.messages[0] == {"role": "system", "content": "S"} and len(chat.messages) == 3
    chat.system = None
    assert [m["role"] for m in chat.messages] == ["user", "assistant"]
    with pytest.raises(OptionError):
        chat.messages = [{"role": "user", "content": 3}]


def test_readme_example_runs_on_a_tiny_model(long_llama):
    assert README_EXAMPLE.count("ovchat.load()") == 1
    code = README_EXAMPLE.replace("ovchat.load()", f"ovchat.load({str(long_llama)!r})")
    r = run_example(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().splitlines()[-1].startswith("5 messages; last answer:")


@pytest.mark.real
def test_readme_example_runs_as_written_on_smollm2(smollm2):
    r = run_example(README_EXAMPLE)  # unchanged: the default model from OVCHAT_HOME
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().splitlines()[-1].startswith("5 messages; last answer:")


@pytest.mark.real
def test_smollm2_conversation(smollm2):
    with ovchat.load() as m:
        assert m.path == smollm2 and m.context_length == 8192
        chat = m.chat(system="You are a helpful assistant.", temperature=0.0, max_new_tokens=64)
        a1 = chat.send("What is the capital of France?")
        # the turn ends by itself (end-of-turn token honoured), well before the limit
        assert a1.strip() and chat.last.finish_reason == "stop"
        rendered = m.engine.render([*chat.messages, {"role": "user", "content": "Why?"}])
        assert "<|im_start|>assistant\n" + a1 in rendered  # the first turn, in its template
        chat.send("Why?")
        assert chat.last.prompt_tokens == len(m.engine.encode(rendered))
