"""Tools without a model: what a request offers (checked), how the prompt carries tools,
calls and results (the model's template, or ovchat's generic format), and calls read back out
of streamed text in any split."""

from __future__ import annotations

import json
import random

import pytest

from ovchat.engine.planner import Planner, check_messages
from ovchat.engine.toolparse import CallScanner, split_calls
from ovchat.engine.tools import GENERIC_PROMPT, check_tools
from ovchat.errors import OptionError

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ADD = {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}

# A Hermes-style template that takes tools (as Qwen2.5's does, shortened).
HERMES_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}"
    "{{ messages[0].content }}\n\n{% endif %}# Tools\n<tools>{% for tool in tools %}\n"
    "{{ tool | tojson }}{% endfor %}\n</tools>\nCall them as <tool_call>"
    '{"name": ..., "arguments": ...}</tool_call><|im_end|>\n'
    "{%- elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}"
    "<|im_end|>\n{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{%- elif message.role == 'assistant' %}<|im_start|>assistant"
    "{%- for tc in message.tool_calls %}\n<tool_call>\n"
    '{"name": "{{ tc.function.name }}", "arguments": {{ tc.function.arguments | tojson }}}'
    "\n</tool_call>{%- endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}"
    "\n</tool_response><|im_end|>\n{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}"
)
LOOP = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
]


# -- checking tools ----------------------------------------------------------------------------
def test_check_tools_accepts_openai_shapes():
    ts = check_tools([WEATHER, ADD], {"type": "function", "function": {"name": "add"}}, False)
    assert ts is not None and [t.name for t in ts.tools] == ["get_weather", "add"]
    assert ts.choice == "add" and [t.name for t in ts.forced] == ["add"] and not ts.parallel
    assert check_tools([WEATHER], "required").forced == ts.tools[:1]  # type: ignore[union-attr]
    assert check_tools([WEATHER], "auto").forced == ()  # type: ignore[union-attr]
    assert not check_tools([WEATHER], "none").active  # type: ignore[union-attr]
    assert check_tools(None, "auto") is None and check_tools([], None) is None


@pytest.mark.parametrize(
    "tools,choice,param",
    [
        ([WEATHER], "get_time", "tool_choice"),
        (None, "required", "tools"),
        ([WEATHER, WEATHER], None, "tools[1].function.name"),
        ([{"type": "function", "function": {"name": "bad name"}}], None, "tools[0].function.name"),
        ([{"type": "custom", "custom": {"name": "x"}}], None, "tools[0]"),
        (
            [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}],
            None,
            "tools[0].function.parameters",
        ),
        ([WEATHER], {"type": "function"}, "tool_choice"),
    ],
)
def test_check_tools_refuses_with_the_field(tools, choice, param):
    with pytest.raises(OptionError) as e:
        check_tools(tools, choice)
    assert e.value.param == param


def test_messages_with_calls_and_results_are_checked():
    msgs = check_messages(LOOP)
    assert msgs[1]["content"] == "" and msgs[1]["tool_calls"][0]["function"]["arguments"] == {
        "city": "Paris"
    }
    assert msgs[2] == {"role": "tool", "content": '{"celsius": 21}', "tool_call_id": "call_1"}
    bad = [LOOP[0], {**LOOP[1], "tool_calls": [{"function": {"name": "f", "arguments": "{x"}}]}]
    with pytest.raises(OptionError) as e:
        check_messages(bad)
    assert e.value.param == "messages[1].tool_calls[0].function.arguments"


# -- the prompt ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    import openvino_genai as ov_genai

    return ov_genai.Tokenizer(str(tiny_llama))


def test_generic_format_for_a_template_without_tools(tokenizer):
    planner = Planner(tokenizer, 4096)
    assert planner.has_chat_template and not planner.template_takes_tools
    text = planner.render(LOOP, check_tools([WEATHER], "auto"))
    listed = json.dumps(check_tools([WEATHER]).tools[0].as_dict())  # type: ignore[union-attr]
    assert GENERIC_PROMPT.split("{tools}")[0] in text and listed in text
    # the call and its result went through the template as plain turns
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in text
    assert '<tool_response>\n{"celsius": 21}\n</tool_response>' in text
    # tool_choice "none": the tools are not described, the history still is
    quiet = planner.render(LOOP, check_tools([WEATHER], "none"))
    assert GENERIC_PROMPT[:30] not in quiet and "<tool_response>" in quiet


def test_native_template_gets_the_tools(tokenizer):
    tokenizer.set_chat_template(HERMES_TEMPLATE)
    try:
        planner = Planner(tokenizer, 4096)
        assert planner.template_takes_tools
        text = planner.render(LOOP, check_tools([WEATHER], "auto"))
    finally:
        tokenizer.set_chat_template("")
    assert "# Tools" in text and '"name": "get_weather"' in text and GENERIC_PROMPT[:30] not in text
    assert '{"name": "get_weather", "arguments": {"city": "Paris"}}' in text
    assert "<|im_start|>user\n<tool_response>" in text


def test_a_raw_prompt_takes_no_tools(tokenizer):
    with pytest.raises(OptionError) as e:
        Planner(tokenizer, 4096).prompt_ids("hi", check_tools([WEATHER]))
    assert e.value.param == "tools"


# -- reading calls back ----------------------------------------------------------------------
ANSWER = (
    "Let me look.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris", "when": {"day": 1}}}\n</tool_call>\n'
    '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
)


def test_calls_read_from_any_split_of_the_stream():
    want = [{"city": "Paris", "when": {"day": 1}}, {"a": 1, "b": 2}]
    for seed in range(100):
        rnd = random.Random(seed)
        scanner, events, i = CallScanner(), [], 0
        while i < len(ANSWER):
            k = rnd.randint(1, 7)
            events += scanner.feed(ANSWER[i : i + k])
            i += k
        events += scanner.close()
        text = "".join(e.text for e in events if e.kind == "text")
        args: dict[int, str] = {}
        for e in events:
            if e.kind == "arguments":
                args[e.index] = args.get(e.index, "") + e.text
        starts = [(e.index, e.name) for e in events if e.kind == "call"]
        assert text == "Let me look.\n\n" and starts == [(0, "get_weather"), (1, "add")]
        assert [json.loads(a) for a in args.values()] == want
        assert not any(a[0].isspace() for a in args.values())  # exactly the arguments
        assert [c.arguments for c in scanner.calls] == list(args.values())
        assert len({c.id for c in scanner.calls}) == 2


def test_split_calls_edge_cases():
    assert split_calls("no calls, but a <tool_c") == ("no calls, but a <tool_c", [])
    text, calls = split_calls('<tool_call>\n{"arguments": {"a": 1}, "name": "f"}\n</tool_call>')
    assert text == "" and calls[0].name == "f" and json.loads(calls[0].arguments) == {"a": 1}
    assert split_calls("x <tool_call>not json</tool_call>")[1] == []  # left as text
    cut = split_calls('<tool_call>\n{"name": "f", "arguments": {"a": "unfinish')[1]
    assert cut[0].name == "f" and cut[0].arguments == '{"a": "unfinish'  # as generated
