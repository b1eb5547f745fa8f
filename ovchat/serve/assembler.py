"""From the engine's Chunks to answers: one per choice (n > 1), each with its text, its tool
calls read out as they stream, its logprobs and its finish reason. The OpenAI shapes
(streaming.py for chat and completions, responses.py for /v1/responses) are written from
these events; nothing here knows JSON or HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..engine import Chunk
from ..engine.reasoning import Mode, ThinkSplitter
from ..engine.toolparse import CallScanner
from ..engine.tools import ToolCall
from ..engine.types import TokenLogprob

Kind = Literal["text", "reasoning", "call", "arguments", "finish"]


@dataclass(frozen=True)
class Delta:
    """Something new in answer `index`: text (with the logprobs of its tokens), reasoning
    (`<think>` text, engine/reasoning.py), a tool call
    starting (`call`: its number in the answer, `id`, `name`), more of a call's arguments, or
    the answer's end (`finish`: OpenAI's finish reason)."""

    kind: Kind
    index: int
    text: str = ""
    logprobs: tuple[TokenLogprob, ...] = ()
    call: int = 0
    id: str = ""
    name: str = ""
    finish: str = ""
    detail: str | None = None  # why a "length" answer was cut short (Chunk.finish_detail)


@dataclass
class Answer:
    index: int
    text: str = ""  # outside tool calls
    calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: str = ""
    detail: str | None = None
    scanner: CallScanner | None = None
    reasoning: str = ""  # the answer's thinking, apart from its text
    splitter: ThinkSplitter | None = None

    def content(self) -> str:
        # text around a call is often just the newline before it
        return self.text.strip() if self.calls else self.text


class Assembler:
    """Feed it the request's chunks in order; it returns Deltas and keeps the answers."""

    def __init__(self, n: int, tools: bool, reasoning: Mode = "") -> None:
        self.answers = [
            Answer(
                i,
                scanner=CallScanner() if tools else None,
                splitter=ThinkSplitter(reasoning) if reasoning else None,
            )
            for i in range(n)
        ]
        self.last: Chunk | None = None

    def feed(self, chunk: Chunk) -> list[Delta]:
        self.last = chunk
        answer = self.answers[chunk.index]
        answer.logprobs.extend(chunk.logprobs)
        out: list[Delta] = []
        lp = chunk.logprobs
        text = chunk.text
        if answer.splitter is not None:
            parts = answer.splitter.feed(text)
            if chunk.finish_reason is not None:
                parts += answer.splitter.close()
            text = "".join(t for kind, t in parts if kind == "text")
            for kind, t in parts:
                if kind == "reasoning":
                    answer.reasoning += t
                    out.append(Delta("reasoning", answer.index, t))
        if answer.scanner is None:
            if text or lp:
                answer.text += text
                out.append(Delta("text", answer.index, text, lp))
        else:
            events = answer.scanner.feed(text)
            if chunk.finish_reason is not None:
                events += answer.scanner.close()
            for e in events:
                if e.kind == "text":
                    answer.text += e.text
                    out.append(Delta("text", answer.index, e.text, lp))
                    lp = ()
                elif e.kind == "call":
                    out.append(Delta("call", answer.index, call=e.index, id=e.id, name=e.name))
                else:
                    out.append(Delta("arguments", answer.index, e.text, call=e.index))
            if lp:  # tokens inside a call: their logprobs still belong to the answer
                out.append(Delta("text", answer.index, "", lp))
            answer.calls = answer.scanner.calls
        if chunk.finish_reason is not None:
            answer.finish = finish_reason(chunk.finish_reason, bool(answer.calls))
            answer.detail = chunk.finish_detail
            out.append(Delta("finish", answer.index, finish=answer.finish, detail=answer.detail))
        return out


def finish_reason(engine_reason: str, called: bool) -> str:
    """OpenAI's finish reason: a cut answer is "length" even inside a call."""
    if engine_reason == "length":
        return "length"
    return "tool_calls" if called else "stop"


def logprob_entry(t: TokenLogprob, top: bool) -> dict[str, Any]:
    """One token in chat's logprobs.content; `top` lists the chosen token as its only
    alternative (top_logprobs 1: the engine knows no other token's logprob)."""
    entry: dict[str, Any] = {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)}
    entry["top_logprobs"] = [{k: v for k, v in entry.items()}] if top else []
    return entry
