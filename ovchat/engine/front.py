"""What every chat engine offers its callers for prompts, the same whether the engine runs
here (engine.py) or in a process of its own (remote.py): the planner's rendering and
tokenizing, and `plan()` — the planner's plan, checked against the KV-cache pool when the
budget was asked for, with genai's config built by the engine's own `checked()`."""

from __future__ import annotations

from ..errors import OptionError
from ..options import GenerationOptions
from .planner import Plan, Planner, Prompt
from .tools import ToolSet
from .types import Messages


class PlanningFront:
    """Mixed into Engine and EngineClient: both hold `planner`, `kv_pool_tokens` and
    `checked()`."""

    planner: Planner
    kv_pool_tokens: int | None

    def checked(self, plan: Plan) -> Plan:
        raise NotImplementedError

    @property
    def has_chat_template(self) -> bool:
        return self.planner.has_chat_template

    def render(
        self, messages: Messages, tools: ToolSet | None = None, thinking: bool | None = None
    ) -> str:
        return self.planner.render(messages, tools, thinking)

    def encode(self, text: str) -> list[int]:
        return self.planner.encode(text)

    def prompt_ids(self, prompt: Prompt, tools: ToolSet | None = None) -> list[int]:
        return self.planner.prompt_ids(prompt, tools)

    def plan(
        self,
        prompt: Prompt,
        options: GenerationOptions | None = None,
        *,
        tools: ToolSet | None = None,
        strict_budget: bool = False,
        thinking: bool | None = None,
    ) -> Plan:
        """The planner's plan, with genai's config built and checked: every mistake in the
        request surfaces here, before anything is streamed. `thinking`: the template's
        switch for reasoning (None: its default)."""
        plan = self.planner.plan(
            prompt, options, tools=tools, strict_budget=strict_budget, thinking=thinking
        )
        if strict_budget:
            check_pool(plan, self.kv_pool_tokens)
        return self.checked(plan)


def check_pool(plan: Plan, pool: int | None) -> None:
    """Refuse answers that could never fit in a KV-cache pool of `pool` tokens together (n
    answers of max_new_tokens after the prompt, which they share): genai would drop them
    midway."""
    o = plan.options
    need = plan.prompt_tokens + o.n * o.max_new_tokens
    if pool is not None and need > pool:
        answers = f"{o.n} answers" if o.n > 1 else "an answer"
        raise OptionError(
            f"{answers} of up to {o.max_new_tokens} tokens after a {plan.prompt_tokens}-"
            f"token prompt need {need} tokens of KV cache; this server's holds {pool}",
            "ask for fewer tokens (max_tokens) or fewer answers (n)",
            param="max_new_tokens",
        )
