"""The answer of POST /v1/responses (OpenAI's Responses API, stateless; the request is in
responses_schema.py, the route in routes.py): a Response object, or its `response.*` events:
created, in_progress, then per output item (a message, or a function call) its added /
delta / done events, and completed (or incomplete, when cut at max_output_tokens)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from .assembler import Answer, Delta
from .responses_schema import ResponsesRequest
from .schema import now
from .writers import AnswerWriter


def new_id(prefix: str) -> str:
    """OpenAI's ids in this API: resp_…, msg_…, fc_… (chat's are chatcmpl-…)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def _logprobs(answer_lp: Any) -> list[dict[str, Any]]:
    return [
        {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes), "top_logprobs": []}
        for t in answer_lp
    ]


class ResponsesWriter(AnswerWriter):
    """A Response object and its stream of events (one answer: the API has no `n`)."""

    def __init__(self, model: str, body: ResponsesRequest, tools: bool, logprobs: bool) -> None:
        super().__init__(model, 1, tools, logprobs)
        self.id = new_id("resp")
        self.body = body
        self.seq = 0
        self.items: list[dict[str, Any]] = []  # output items so far
        self.open: dict[str, Any] | None = None  # the item being streamed
        self.text_lp: list[Any] = []

    # -- the object ----------------------------------------------------------------------
    def response(self, status: str, output: list[dict[str, Any]], usage: Any = None) -> dict:
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": now() if status != "in_progress" else None,
            "error": None,
            "incomplete_details": incomplete,
            "model": self.model,
            "output": output,
            "usage": usage,
            **self.body.echo(),
        }

    def whole(self, answers: list[Answer], usage: dict[str, int]) -> dict[str, Any]:
        a = answers[0]
        status = "incomplete" if a.finish == "length" else "completed"
        output: list[dict[str, Any]] = []
        if a.reasoning:
            output.append(self._reasoning(a.reasoning, "completed"))
        if a.content() or not a.calls:
            lp = _logprobs(a.logprobs) if self.logprobs else []
            output.append(self._message(a.content(), "completed", lp))
        output += [self._call(c.id, c.name, c.arguments, "completed") for c in a.calls]
        output[-1]["status"] = status  # the item the cut fell in
        return self.response(status, output, _usage(usage))

    def _message(self, text: str, status: str, lp: list[dict[str, Any]]) -> dict[str, Any]:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": lp}
        return {
            "id": new_id("msg"),
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": [part] if status != "in_progress" else [],
        }

    def _reasoning(self, text: str, status: str) -> dict[str, Any]:
        """A reasoning item: the model's thinking, whole (no summary: that is OpenAI's)."""
        content = [{"type": "reasoning_text", "text": text}] if text else []
        return {"id": new_id("rs"), "type": "reasoning", "summary": [], "content": content,
                "status": status}  # fmt: skip

    def _call(self, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
        return {
            "id": new_id("fc"),
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": status,
        }

    # -- the events ----------------------------------------------------------------------
    def _event(self, kind: str, **fields: Any) -> str:
        body = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        return f"event: {kind}\ndata: {data}\n\n"

    def opening(self) -> list[str]:
        started = self.response("in_progress", [])
        return [
            self._event("response.created", response=started),
            self._event("response.in_progress", response=started),
        ]

    def piece(self, d: Delta) -> list[str]:
        out: list[str] = []
        if d.kind == "reasoning" and d.text:
            if self.open is None or self.open["type"] != "reasoning":
                out += self._close()
                self.open = self._reasoning("", "in_progress")
                out.append(self._added())
                self.open["content"] = [{"type": "reasoning_text", "text": ""}]
            self.open["content"][0]["text"] += d.text
            out.append(self._event("response.reasoning_text.delta", **self._where(),
                                   content_index=0, delta=d.text))  # fmt: skip
        elif d.kind == "text":
            if d.text:
                if self.open is None or self.open["type"] != "message":
                    out += self._close() + self._open_message()
                self.open["content"][0]["text"] += d.text  # type: ignore[index]
                lp = _logprobs(d.logprobs) if self.logprobs else []
                self.text_lp += lp
                out.append(self._event("response.output_text.delta", **self._where(),
                                       content_index=0, delta=d.text, logprobs=lp))  # fmt: skip
        elif d.kind == "call":
            out += self._close()
            self.open = self._call(d.id, d.name, "", "in_progress")
            out.append(self._added())
        elif d.kind == "arguments" and self.open is not None:
            self.open["arguments"] += d.text
            out.append(self._event("response.function_call_arguments.delta", **self._where(),
                                   delta=d.text))  # fmt: skip
        elif d.kind == "finish":
            # cut at max_output_tokens: the item in progress is incomplete, as the response
            out += self._close("incomplete" if d.finish == "length" else "completed")
        return out

    def _where(self) -> dict[str, Any]:
        assert self.open is not None
        return {"item_id": self.open["id"], "output_index": len(self.items)}

    def _added(self) -> str:
        return self._event("response.output_item.added", output_index=len(self.items),
                           item=dict(self.open or {}))  # fmt: skip

    def _open_message(self) -> list[str]:
        self.open = self._message("", "in_progress", [])
        self.text_lp = []
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        added = self._added()
        self.open["content"] = [part]
        return [added, self._event("response.content_part.added", **self._where(),
                                   content_index=0, part=dict(part))]  # fmt: skip

    def _close(self, status: str = "completed") -> list[str]:
        item, out = self.open, []
        if item is None:
            return []
        if item["type"] == "reasoning":
            out.append(self._event("response.reasoning_text.done", **self._where(),
                                   content_index=0, text=item["content"][0]["text"]))  # fmt: skip
        elif item["type"] == "message":
            part = {**item["content"][0], "logprobs": self.text_lp}
            item["content"] = [part]
            out += [
                self._event("response.output_text.done", **self._where(), content_index=0,
                            text=part["text"], logprobs=self.text_lp),
                self._event("response.content_part.done", **self._where(), content_index=0,
                            part=part),
            ]  # fmt: skip
        else:
            out.append(self._event("response.function_call_arguments.done", **self._where(),
                                   name=item["name"], arguments=item["arguments"]))  # fmt: skip
        item["status"] = status
        out.append(self._event("response.output_item.done", output_index=len(self.items),
                               item=item))  # fmt: skip
        self.items.append(item)
        self.open = None
        return out

    def closing(self, answers: list[Answer], usage: dict[str, int], with_usage: bool) -> list[str]:
        a = answers[0]
        out = self._close()
        if all(i["type"] == "reasoning" for i in self.items):  # an empty answer: a message
            out += self._open_message() + self._close()
        status = "incomplete" if a.finish == "length" else "completed"
        final = self.response(status, self.items, _usage(usage))
        return [*out, self._event(f"response.{status}", response=final)]

    def failure(self, body: dict[str, Any]) -> str:
        err = body["error"]
        return self._event("error", code=err.get("code"), message=err["message"], param=None)


def _usage(u: dict[str, int]) -> dict[str, Any]:
    return {
        "input_tokens": u["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": u["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u["total_tokens"],
    }
