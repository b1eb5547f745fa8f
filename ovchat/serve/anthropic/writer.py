"""Anthropic's answers: a Message object, or its stream of events in Anthropic's order —
message_start, then per content block (thinking, text, tool_use) content_block_start,
its deltas (thinking_delta, text_delta, input_json_delta), content_block_stop; then
message_delta (stop_reason, usage) and message_stop. A failure mid-stream is an `error`
event in Anthropic's shape."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..assembler import Answer, Delta
from ..protocol_errors import reshape
from ..writers import AnswerWriter
from .schema import input_object


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def tool_id(call_id: str) -> str:
    """Anthropic's ids for tool uses (toolu_…); ovchat's calls are call_…."""
    return "toolu_" + call_id.removeprefix("call_")


def event(kind: str, **fields: Any) -> str:
    data = json.dumps({"type": kind, **fields}, ensure_ascii=False, separators=(",", ":"))
    return f"event: {kind}\ndata: {data}\n\n"


def stop_reason(a: Answer) -> str:
    if a.finish == "length":
        return "max_tokens"
    return "tool_use" if a.calls else "end_turn"


class MessagesWriter(AnswerWriter):
    def __init__(self, model: str, tools: bool, prompt_tokens: int) -> None:
        super().__init__(model, 1, tools)
        self.id = new_id("msg")
        self.prompt_tokens = prompt_tokens
        self.block = -1  # index of the open block
        self.open: str | None = None  # its type

    def _message(self, content: list[dict[str, Any]], reason: str | None, out: int) -> dict:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": out,
            },
        }

    # -- the whole message ---------------------------------------------------------------
    def whole(self, answers: list[Answer], usage: dict[str, int]) -> dict[str, Any]:
        a = answers[0]
        content: list[dict[str, Any]] = []
        if a.reasoning:
            content.append({"type": "thinking", "thinking": a.reasoning, "signature": ""})
        if a.content() or not a.calls:
            content.append({"type": "text", "text": a.content()})
        for c in a.calls:
            content.append({"type": "tool_use", "id": tool_id(c.id), "name": c.name,
                            "input": input_object(c.arguments)})  # fmt: skip
        self.prompt_tokens = usage["prompt_tokens"]
        return self._message(content, stop_reason(a), usage["completion_tokens"])

    # -- the events ----------------------------------------------------------------------
    def opening(self) -> list[str]:
        return [event("message_start", message=self._message([], None, 1)), event("ping")]

    def _start(self, block: dict[str, Any]) -> list[str]:
        out = self._stop()
        self.block += 1
        self.open = block["type"]
        return [*out, event("content_block_start", index=self.block, content_block=block)]

    def _stop(self) -> list[str]:
        if self.open is None:
            return []
        out = []
        if self.open == "thinking":
            delta = {"type": "signature_delta", "signature": ""}
            out.append(event("content_block_delta", index=self.block, delta=delta))
        self.open = None
        return [*out, event("content_block_stop", index=self.block)]

    def _delta(self, delta: dict[str, Any]) -> str:
        return event("content_block_delta", index=self.block, delta=delta)

    def piece(self, d: Delta) -> list[str]:
        out: list[str] = []
        if d.kind == "reasoning" and d.text:
            if self.open != "thinking":
                out += self._start({"type": "thinking", "thinking": "", "signature": ""})
            out.append(self._delta({"type": "thinking_delta", "thinking": d.text}))
        elif d.kind == "text" and d.text:
            if self.open != "text":
                out += self._start({"type": "text", "text": ""})
            out.append(self._delta({"type": "text_delta", "text": d.text}))
        elif d.kind == "call":
            block = {"type": "tool_use", "id": tool_id(d.id), "name": d.name, "input": {}}
            out += self._start(block)
        elif d.kind == "arguments" and self.open == "tool_use":
            out.append(self._delta({"type": "input_json_delta", "partial_json": d.text}))
        return out

    def closing(self, answers: list[Answer], usage: dict[str, int], with_usage: bool) -> list[str]:
        a = answers[0]
        out = self._stop()
        if self.block < 0:  # an empty answer is still one text block
            out += self._start({"type": "text", "text": ""}) + self._stop()
        delta = {"stop_reason": stop_reason(a), "stop_sequence": None}
        tokens = {
            "input_tokens": usage["prompt_tokens"],
            "output_tokens": usage["completion_tokens"],
        }
        return [*out, event("message_delta", delta=delta, usage=tokens), event("message_stop")]

    def failure(self, body: dict[str, Any]) -> str:
        status = 503 if body.get("error", {}).get("code") == "server_shutting_down" else 500
        shaped = reshape("/v1/messages", status, body)
        return event("error", error=shaped["error"])
