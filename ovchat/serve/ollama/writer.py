"""Ollama's answers: one JSON object per line (NDJSON) while streaming — each with a piece of
the message (or of the response, for /api/generate) and `done: false` — then a last line
with `done: true`, `done_reason` and the counts and durations (nanoseconds); or that last
line alone, holding the whole answer, with `stream: false`. Tool calls come whole, with
their arguments as an object, in a line of their own once the answer is over."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from ..assembler import Answer, Delta
from ..writers import AnswerWriter


def created_at() -> str:
    """Ollama's timestamp: RFC 3339 in UTC, with nanosecond digits."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _arguments(text: str) -> Any:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:  # cut at num_predict inside the call: sent as the text it has
        return text
    return value


class OllamaWriter(AnswerWriter):
    """/api/chat (`chat`) or /api/generate answers."""

    def __init__(self, model: str, tools: bool, chat: bool, arrived: float) -> None:
        super().__init__(model, 1, tools)
        self.chat = chat
        self.arrived = arrived  # time.perf_counter() at the request's arrival
        self.first: float | None = None  # when the first piece came

    def _head(self, done: bool) -> dict[str, Any]:
        return {"model": self.model, "created_at": created_at(), "done": done}

    def _piece(self, text: str = "", thinking: str = "", calls: Any = None) -> dict[str, Any]:
        if self.chat:
            msg: dict[str, Any] = {"role": "assistant", "content": text}
            if thinking:
                msg["thinking"] = thinking
            if calls:
                msg["tool_calls"] = calls
            return {"message": msg}
        out: dict[str, Any] = {"response": text}
        if thinking:
            out["thinking"] = thinking
        return out

    def piece(self, d: Delta) -> list[str]:
        if self.first is None:
            self.first = time.perf_counter()
        if d.kind == "text" and d.text:
            return [line({**self._head(False), **self._piece(d.text)})]
        if d.kind == "reasoning" and d.text:
            return [line({**self._head(False), **self._piece(thinking=d.text)})]
        return []

    def _calls(self, a: Answer) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "function": {"index": i, "name": c.name,
                                      "arguments": _arguments(c.arguments)}}
            for i, c in enumerate(a.calls)
        ]  # fmt: skip

    def _final(self, a: Answer, usage: dict[str, int], whole: bool) -> dict[str, Any]:
        end = time.perf_counter()
        first = self.first or end
        text = a.content() if whole else ""
        calls = self._calls(a) if whole and a.calls else None
        thinking = a.reasoning if whole else ""
        return {
            **self._head(True),
            **self._piece(text, thinking, calls),
            "done_reason": "length" if a.finish == "length" else "stop",
            "total_duration": _ns(end - self.arrived),
            "load_duration": 0,
            "prompt_eval_count": usage["prompt_tokens"],
            "prompt_eval_duration": _ns(first - self.arrived),
            "eval_count": usage["completion_tokens"],
            "eval_duration": _ns(end - first),
        }

    def closing(self, answers: list[Answer], usage: dict[str, int], with_usage: bool) -> list[str]:
        a = answers[0]
        out = []
        if a.calls:
            out.append(line({**self._head(False), **self._piece(calls=self._calls(a))}))
        return [*out, line(self._final(a, usage, whole=False))]

    def whole(self, answers: list[Answer], usage: dict[str, int]) -> dict[str, Any]:
        return self._final(answers[0], usage, whole=True)

    def failure(self, body: dict[str, Any]) -> str:
        return line({"error": str(body.get("error", {}).get("message", "error"))})


def _ns(seconds: float) -> int:
    return max(0, int(seconds * 1e9))
