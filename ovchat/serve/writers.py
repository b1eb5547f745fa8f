"""How OpenAI's answers for /v1/chat/completions and /v1/completions are written: the JSON body,
and the server-sent events of a streamed one (n choices, tool-call deltas, logprobs).

An AnswerWriter turns the Assembler's Deltas (assembler.py) into events; streaming.py sends them.
"""

from __future__ import annotations

import json
from typing import Any

from ..engine.reasoning import Mode
from .assembler import Answer, Assembler, Delta, logprob_entry
from .schema import new_id, now

DONE = "data: [DONE]\n\n"  # the last event of every chat/completions stream, whatever ended it


def detail(why: str | None) -> dict[str, str]:
    """A choice's `finish_detail`, when its "length" answer was cut short of its limit (ovchat's
    own field, documented in the Limits page: OpenAI has none for it)."""
    return {"finish_detail": why} if why else {}


def sse_data(obj: Any) -> str:
    # Server-sent events written by hand: one `data: <json>` line and a blank line per event,
    # exactly what OpenAI streams for chat and completions (no event names, no ids).
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


class AnswerWriter:
    """How one endpoint writes an answer: `whole()` for one JSON body; `opening()`,
    `piece()` per Delta and `closing()` for a stream (each returns encoded events)."""

    def __init__(
        self, model: str, n: int = 1, tools: bool = False, logprobs: bool = False, top: bool = False
    ) -> None:
        self.model = model
        self.n = n
        self.tools = tools
        self.logprobs = logprobs  # report logprobs
        self.top = top  # and top_logprobs (1: the chosen token)
        self.created = now()
        self.reasoning: Mode = ""  # the plan's: how answers may hold <think> reasoning

    def assembler(self) -> Assembler:
        return Assembler(self.n, self.tools, self.reasoning)

    def opening(self) -> list[str]:
        return []

    def piece(self, d: Delta) -> list[str]:
        raise NotImplementedError

    def closing(self, answers: list[Answer], usage: dict[str, int], with_usage: bool) -> list[str]:
        raise NotImplementedError

    def whole(self, answers: list[Answer], usage: dict[str, int]) -> dict[str, Any]:
        raise NotImplementedError

    def failure(self, body: dict[str, Any]) -> str:
        """An error event in OpenAI's shape, then the end of the stream."""
        return sse_data(body) + DONE


class ChatWriter(AnswerWriter):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.id = new_id("chatcmpl")
        self.unopened: set[int] = set()  # answers whose role has not been sent yet

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }

    def _event(self, index: int, delta: dict[str, Any], **kw: Any) -> str:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": None, **kw}
        return sse_data({**self._head(), "choices": [choice]})

    def _logprobs(self, d: Delta) -> dict[str, Any] | None:
        if not self.logprobs:
            return None
        content = [logprob_entry(t, self.top) for t in d.logprobs]
        return {"content": content, "refusal": None}

    def opening(self) -> list[str]:
        if self.tools:  # the role comes with the first delta: content "" or, for a call, null
            self.unopened = set(range(self.n))
            return []
        return [self._event(i, {"role": "assistant", "content": ""}) for i in range(self.n)]

    def piece(self, d: Delta) -> list[str]:
        if d.index in self.unopened and (d.kind != "text" or d.text):
            self.unopened.discard(d.index)
            if d.kind == "call":  # as OpenAI: a call's answer has content null, not ""
                fn = {"name": d.name, "arguments": ""}
                call = {"index": d.call, "id": d.id, "type": "function", "function": fn}
                role = {"role": "assistant", "content": None, "tool_calls": [call]}
                return [self._event(d.index, role)]
            return [self._event(d.index, {"role": "assistant", "content": ""}), *self.piece(d)]
        return self._piece(d)

    def _piece(self, d: Delta) -> list[str]:
        if d.kind == "reasoning":  # vLLM's and DeepSeek's field
            return [self._event(d.index, {"reasoning_content": d.text})] if d.text else []
        if d.kind == "text":
            if not d.text and not (self.logprobs and d.logprobs):
                return []
            delta = {"content": d.text} if d.text else {}
            return [self._event(d.index, delta, logprobs=self._logprobs(d))]
        if d.kind == "call":
            fn = {"name": d.name, "arguments": ""}
            call = {"index": d.call, "id": d.id, "type": "function", "function": fn}
            return [self._event(d.index, {"tool_calls": [call]})]
        if d.kind == "arguments":
            call = {"index": d.call, "function": {"arguments": d.text}}
            return [self._event(d.index, {"tool_calls": [call]})]
        return [self._event(d.index, {}, finish_reason=d.finish, **detail(d.detail))]

    def closing(self, answers: list[Answer], usage: dict[str, int], with_usage: bool) -> list[str]:
        out = [sse_data({**self._head(), "choices": [], "usage": usage})] if with_usage else []
        return [*out, DONE]

    def whole(self, answers: list[Answer], usage: dict[str, int]) -> dict[str, Any]:
        choices = []
        for a in answers:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": a.content() or (None if a.calls else ""),
                "refusal": None,
            }
            if a.reasoning:
                message["reasoning_content"] = a.reasoning
            if a.calls:
                message["tool_calls"] = [c.as_dict() for c in a.calls]
            logprobs = None
            if self.logprobs:
                content = [logprob_entry(t, self.top) for t in a.logprobs]
                logprobs = {"content": content, "refusal": None}
            choices.append(
                {
                    "index": a.index,
                    "message": message,
                    "logprobs": logprobs,
                    "finish_reason": a.finish,
                    **detail(a.detail),
                }
            )
        head = {**self._head(), "object": "chat.completion"}
        return {**head, "choices": choices, "usage": usage}


class CompletionWriter(AnswerWriter):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.id = new_id("cmpl")

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }

    def _logprobs(self, tokens: list[Any], offset: int = 0) -> dict[str, Any] | None:
        """The legacy logprobs object: tokens, their logprobs, top-1, offsets in the text."""
        if not self.logprobs:
            return None
        offsets = []
        for t in tokens:
            offsets.append(offset)
            offset += len(t.token)
        return {
            "tokens": [t.token for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{t.token: t.logprob} for t in tokens] if self.top else None,
            "text_offset": offsets,
        }

    def piece(self, d: Delta) -> list[str]:
        if d.kind == "finish":
            choice = {"index": d.index, "text": "", "logprobs": None, "finish_reason": d.finish}
            choice.update(detail(d.detail))
        elif d.text or (self.logprobs and d.logprobs):
            lp = self._logprobs(list(d.logprobs))
            choice = {"index": d.index, "text": d.text, "logprobs": lp, "finish_reason": None}
        else:
            return []
        return [sse_data({**self._head(), "choices": [choice]})]

    def closing(self, answers: list[Answer], usage: dict[str, int], with_usage: bool) -> list[str]:
        out = [sse_data({**self._head(), "choices": [], "usage": usage})] if with_usage else []
        return [*out, DONE]

    def whole(self, answers: list[Answer], usage: dict[str, int]) -> dict[str, Any]:
        choices = [
            {
                "index": a.index,
                "text": a.text,
                "logprobs": self._logprobs(a.logprobs),
                "finish_reason": a.finish,
                **detail(a.detail),
            }
            for a in answers
        ]
        return {**self._head(), "choices": choices, "usage": usage}
