"""Reasoning (`<think>…</think>`, as Qwen3 and DeepSeek-R1 templates have their models
write): the thinking of an answer split from the answer itself, as it streams.

Written by hand: genai's ReasoningIncrementalParser, told to expect the opening tag,
swallows an answer that never opens it (a thinking model with thinking turned off, or one
that just answers); this splitter passes such an answer through as it is.

`mode` is "tagged" (the answer may open with <think>) or "inside" (the prompt already
opened it: DeepSeek-R1's templates end the generation prompt with `<think>\\n`).
"""

from __future__ import annotations

from typing import Literal

OPEN, CLOSE = "<think>", "</think>"
Mode = Literal["", "tagged", "inside"]
Part = tuple[Literal["reasoning", "text"], str]


def reasoning_mode(template: str, prompt: str) -> Mode:
    """How an answer to `prompt` (rendered by `template`) may hold reasoning."""
    if OPEN not in template:
        return ""
    return "inside" if prompt.rstrip().endswith(OPEN) else "tagged"


def _held(text: str, tag: str) -> int:
    """How many characters at the end of `text` could be the start of `tag`."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ThinkSplitter:
    """Feed it the answer's text as it streams; it returns (kind, text) parts."""

    def __init__(self, mode: Mode) -> None:
        self.state = "reasoning" if mode == "inside" else "start"
        self.buffer = ""

    def feed(self, text: str) -> list[Part]:
        self.buffer += text
        out: list[Part] = []
        while self.buffer:
            if self.state == "start":  # only whitespace so far: an opening tag may come
                lead = self.buffer.lstrip()
                if lead.startswith(OPEN):
                    self.buffer = lead[len(OPEN) :]
                    self.state = "reasoning"
                elif OPEN.startswith(lead):  # "", "<", "<th", …: wait for more
                    break
                else:
                    self.state = "text"
            elif self.state == "reasoning":
                at = self.buffer.find(CLOSE)
                if at >= 0:
                    out.append(("reasoning", self.buffer[:at]))
                    self.buffer = self.buffer[at + len(CLOSE) :].lstrip("\n")
                    self.state = "after"
                else:
                    keep = _held(self.buffer, CLOSE)
                    cut = len(self.buffer) - keep
                    out.append(("reasoning", self.buffer[:cut]))
                    self.buffer = self.buffer[cut:]
                    break
            elif self.state == "after":  # the blank lines after </think> are not the answer
                if not self.buffer.strip("\n"):
                    break
                self.buffer = self.buffer.lstrip("\n")
                self.state = "text"
            else:
                out.append(("text", self.buffer))
                self.buffer = ""
        return [p for p in out if p[1]]

    def close(self) -> list[Part]:
        """The end of the answer: what was held back."""
        rest, self.buffer = self.buffer, ""
        if not rest:
            return []
        return [("reasoning" if self.state == "reasoning" else "text", rest)]
