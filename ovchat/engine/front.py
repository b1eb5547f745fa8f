"""What every chat engine offers its callers for prompts, the same whether the engine runs
here (engine.py) or in a process of its own (remote.py): the planner's rendering and
tokenizing, `plan()` — the planner's plan, checked against the KV-cache pool when the
budget was asked for, with genai's config built by the engine's own `checked()` — and the
grammar check (grammarsandbox.py) that picks the request's constraint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..options import GenerationOptions
from .grammarsandbox import GrammarCheck
from .planner import Plan, Planner, Prompt
from .structured import Constraint, constraints, vocab_size
from .tools import ToolSet
from .types import Messages


class PlanningFront:
    """Mixed into Engine and EngineClient: both hold `path`, `tokenizer`, `planner`,
    `kv_pool_tokens` and `checked()`."""

    path: Path
    tokenizer: Any
    planner: Planner
    kv_pool_tokens: int | None
    _grammar: GrammarCheck | None = None  # started on the first constrained request

    def checked(self, plan: Plan, grammar_timeout: float | None = None) -> Plan:
        raise NotImplementedError

    def grammar_check(self) -> GrammarCheck:
        """This model's grammar sandbox."""
        if self._grammar is None:
            self._grammar = GrammarCheck(self.path, vocab_size(self.path, self.tokenizer))
        return self._grammar

    def constraint(self, plan: Plan, grammar_timeout: float | None = None) -> Constraint | None:
        """The plan's constraint: the one already accepted, else the first of its candidates
        that compiles in the grammar sandbox within `grammar_timeout` seconds (None: the
        default); an OptionError naming the field if none does."""
        if plan.constraint is not None:
            return plan.constraint
        candidates = constraints(plan.options, plan.tools)
        return self.grammar_check().choose(candidates, grammar_timeout) if candidates else None

    def close_grammar(self) -> None:
        if self._grammar is not None:
            self._grammar.close()

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
        grammar_timeout: float | None = None,
    ) -> Plan:
        """The planner's plan, with genai's config built and checked: every mistake in the
        request surfaces here, before anything is streamed. `thinking`: the template's
        switch for reasoning (None: its default); `grammar_timeout`: seconds its constraint
        may take to compile (None: grammarsandbox's default)."""
        plan = self.planner.plan(
            prompt, options, tools=tools, strict_budget=strict_budget, thinking=thinking
        )
        if strict_budget:
            check_pool(plan, self.kv_pool_tokens)
        return self.checked(plan, grammar_timeout)


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
