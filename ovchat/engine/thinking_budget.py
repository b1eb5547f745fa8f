"""A token budget for reasoning: the answer thinks for at most `budget` tokens, then answers.

Two generations, one stream: the first thinks (up to the budget, ending at `</think>`);
if it ran out, `</think>` is written for it; the second answers after the thinking, with
what is left of max_new_tokens (the prefix cache holds the prompt, so the second starts
from where the first ended). The chunks come out as one answer: token counts add up and
only the last carries a finish reason.

Written by hand: genai has no per-request limit on one part of an answer.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..options import GenerationOptions
from .planner import Plan
from .reasoning import CLOSE
from .types import Chunk

if TYPE_CHECKING:
    from .engine import Engine

FORCED_CLOSE = f"\n{CLOSE}\n\n"  # written when the thinking ran out of budget


async def budgeted(
    eng: Engine, plan: Plan, budget: int, cancel: threading.Event
) -> AsyncIterator[Chunk]:
    """`eng.astream(plan)`, the reasoning cut at `budget` tokens (plan.reasoning is set)."""
    total = plan.options.max_new_tokens
    think = GenerationOptions(
        max_new_tokens=min(budget, total),
        temperature=plan.options.temperature,
        top_p=plan.options.top_p,
        top_k=plan.options.top_k,
        seed=plan.options.seed,
        stop=(CLOSE,),
    )
    first = eng.checked(Plan(plan.ids, think, reasoning=plan.reasoning))
    first.config.include_stop_str_in_output = True  # to know how the thinking ended
    text, used, last = "", 0, None
    phase = threading.Event()  # each generation's own (astream sets it when it ends)
    async for chunk in eng.astream(first, cancel=phase):
        if cancel.is_set():
            phase.set()
        text += chunk.text
        used = chunk.generated_tokens
        last = chunk
        if chunk.finish_reason is None:
            yield chunk
        elif chunk.text:
            yield dataclasses.replace(chunk, finish_reason=None)
    if last is None:
        return
    closed = text.rstrip().endswith(CLOSE)
    if last.finish_reason not in ("length", "stop") or (
        last.finish_reason == "stop" and not closed
    ):
        yield dataclasses.replace(last, text="")  # the answer ended (or was cancelled)
        return
    added = "" if closed else FORCED_CLOSE
    if added:  # the stream gets the tag alone: the newline before it is not thinking
        yield dataclasses.replace(last, text=CLOSE, finish_reason=None)
    left = total - used
    if left < 1:
        yield dataclasses.replace(last, text="", finish_reason="length")
        return
    ids = [*plan.ids, *eng.encode(text + added)]
    options = plan.options.replace(max_new_tokens=left)
    second = eng.checked(eng.planner.plan_ids(ids, options, tools=plan.tools))
    phase = threading.Event()
    async for chunk in eng.astream(second, cancel=phase):
        if cancel.is_set():
            phase.set()
        yield dataclasses.replace(
            chunk, prompt_tokens=plan.prompt_tokens, generated_tokens=used + chunk.generated_tokens
        )
