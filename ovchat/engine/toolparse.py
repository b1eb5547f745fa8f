"""Reading tool calls out of an answer while it streams.

The model writes calls in the format tools.py describes (`<tool_call>{"name": ...,
"arguments": {...}}</tool_call>`). `CallScanner` splits the text as it arrives into text
outside the calls and, per call, its start (id and name) and its arguments piece by piece,
so a server can stream OpenAI's tool-call deltas without waiting for the whole call.

Written by hand: genai constrains the call but hands back text, and no library here parses
this format incrementally.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

from .tools import CALL_CLOSE, CALL_OPEN, ToolCall, new_call_id

# The head of a call, up to its arguments: {"name": "x", "arguments":
# (only once the arguments have begun: the space before them may still be on its way)
_HEAD = re.compile(
    re.escape(CALL_OPEN)
    + r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*(?=\S)'
)

EventKind = Literal["text", "call", "arguments"]


@dataclass(frozen=True)
class CallEvent:
    """ "text": answer text outside calls; "call": call number `index` starts (`id`, `name`);
    "arguments": more of that call's arguments (JSON text)."""

    kind: EventKind
    text: str = ""
    index: int = 0
    id: str = ""
    name: str = ""


@dataclass
class _Call:
    id: str
    name: str = ""
    started: bool = False  # its "call" event was sent
    args_at: int = 0  # where its arguments begin in the call's text
    sent: int = 0  # characters of arguments already sent


@dataclass
class CallScanner:
    """Feed it text pieces; it returns events. `close()` at the end; then `content` and
    `calls` hold the whole answer."""

    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    _buf: str = ""
    _call: _Call | None = None

    def feed(self, text: str) -> list[CallEvent]:
        self._buf += text
        out: list[CallEvent] = []
        while True:
            if self._call is None:
                i = self._buf.find(CALL_OPEN)
                if i < 0:
                    keep = _partial_suffix(self._buf, CALL_OPEN)
                    self._text(self._buf[: len(self._buf) - keep], out)
                    self._buf = self._buf[len(self._buf) - keep :]
                    return out
                self._text(self._buf[:i], out)
                self._buf = self._buf[i:]
                self._call = _Call(new_call_id())
            if not self._scan_call(out):
                return out

    def close(self) -> list[CallEvent]:
        """The end of the answer: a call cut short is kept as it is (as OpenAI does when an
        answer hits its token limit); a lone "<tool_call" fragment is text."""
        out: list[CallEvent] = []
        call = self._call
        if call is not None and call.started:
            rest = self._buf[call.args_at :]
            self._args(call, rest, out)
            self.calls.append(ToolCall(call.id, call.name, rest.strip()))
        else:
            self._text(self._buf, out)
        self._buf, self._call = "", None
        return out

    # -- internals -------------------------------------------------------------------------
    def _text(self, text: str, out: list[CallEvent]) -> None:
        if text:
            self.content += text
            out.append(CallEvent("text", text))

    def _args(self, call: _Call, args: str, out: list[CallEvent]) -> None:
        if len(args) > call.sent:
            out.append(CallEvent("arguments", args[call.sent :], len(self.calls)))
            call.sent = len(args)

    def _scan_call(self, out: list[CallEvent]) -> bool:
        """Advance the open call; True when it closed (scanning goes on after it)."""
        call = self._call
        assert call is not None
        buf = self._buf
        if not call.started and (m := _HEAD.match(buf)):
            call.name, call.started, call.args_at = json.loads(m.group(1)), True, m.end()
            out.append(CallEvent("call", index=len(self.calls), id=call.id, name=call.name))
        end = buf.find(CALL_CLOSE)
        if end < 0:
            if call.started:  # send what cannot be the call's own closing brace
                args = buf[call.args_at :]
                j = args.rfind("}")
                if j >= 0 and CALL_CLOSE.startswith(args[j + 1 :].lstrip()):
                    args = args[:j]
                self._args(call, args, out)
            return False
        body, self._buf, self._call = buf[:end], buf[end + len(CALL_CLOSE) :], None
        parsed = _parse(body[len(CALL_OPEN) :])
        if parsed is None and not call.started:  # not a call after all: it was text
            self._text(body + CALL_CLOSE, out)
            return True
        if not call.started:  # a well-formed call in another key order: sent whole
            call.name = parsed[0] if parsed else ""
            out.append(CallEvent("call", index=len(self.calls), id=call.id, name=call.name))
        raw = body[call.args_at :].rstrip() if call.args_at else ""
        args = raw[:-1].rstrip() if raw.endswith("}") else raw
        if parsed is not None and not _same_json(args, parsed[1]):
            args = parsed[1]
        self._args(call, args, out)
        self.calls.append(ToolCall(call.id, call.name, args))
        return True


def _parse(body: str) -> tuple[str, str] | None:
    """(name, arguments as JSON text) of a call's JSON body, or None if it is not one."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    return obj["name"], json.dumps(args, ensure_ascii=False)


def _same_json(a: str, b: str) -> bool:
    try:
        return bool(json.loads(a) == json.loads(b))
    except ValueError:
        return False


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that could be the start of `marker`."""
    for k in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-k:]):
            return k
    return 0


def split_calls(text: str) -> tuple[str, list[ToolCall]]:
    """A whole answer → (its text outside calls, its calls)."""
    scanner = CallScanner()
    scanner.feed(text)
    scanner.close()
    return scanner.content, scanner.calls
