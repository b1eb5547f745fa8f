"""Answer quality (`ovchat eval`): does the model end its answers on its own, does it loop,
how long does it talk.

The shipped prompts (prompts.py), several seeds each, the model's own default sampling
(its generation_config; `sampling` replaces fields), a budget of new tokens. Per answer:

- ended:  the model stopped on its own (end of turn / EOS) within the budget;
- rep4:   the share of repeated word 4-grams, 1 - distinct/total, over the answer's words
          (lower-cased, split on whitespace); 0 for answers under 8 words;
- looped: rep4 >= LOOP_REP4 (0.25). Chosen by reading answers near the threshold on
          SmolLM2 (416 answers, 4 backends): lists, code and recipes stay under 0.2, every
          answer at 0.25 or more was saying the same phrase again. The rates at 0.2 and 0.3
          are reported too, so a reader can see how much the threshold matters.

Backends (the same token ids for every backend: the export's own chat template and
tokenizer, as `ovchat generate` renders them): the export through openvino-genai's
ContinuousBatchingPipeline (all prompts of a seed in one batch, the sampler `ovchat serve`
runs), the unquantized reference through transformers, and llama.cpp on the GGUF source.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..progress import Progress, printer
from .prompts import PROMPTS

LOOP_REP4 = 0.25  # rep4 at or above this: a looping answer (see the module doc)
NGRAM = 4
DEFAULT_SEEDS = 2  # seeds per prompt in a plain `ovchat eval` (the README's table: 8)
DEFAULT_ANSWER_TOKENS = 256  # the budget of new tokens per answer
# Sampling fields the backends understand (GenerationOptions' names).
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                 "presence_penalty", "frequency_penalty", "no_repeat_ngram_size")  # fmt: skip

_say = printer("ovchat eval")
Prompt = tuple[str, str, str]  # (id, kind, text)
# One generated answer: (prompt index, seed, generated ids without the end token, ended)
Raw = tuple[int, int, list[int], bool]


def rep_ngram(text: str, n: int = NGRAM) -> float:
    """1 - distinct/total word n-grams (lower-cased, whitespace words); 0 if too short."""
    words = text.lower().split()
    if len(words) < 2 * n:
        return 0.0
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams)


@dataclass
class Answer:
    prompt_id: str
    kind: str
    seed: int
    text: str
    tokens: int
    ended: bool
    rep4: float = 0.0
    looped: bool = False

    def __post_init__(self) -> None:
        self.rep4 = round(rep_ngram(self.text), 4)
        self.looped = self.rep4 >= LOOP_REP4


@dataclass
class AnswerSummary:
    """One backend's answers, summed up (rates are shares of all answers, 0..1)."""

    label: str
    backend: str
    sampling: dict[str, Any]
    max_new_tokens: int
    seeds: list[int]
    prompts: int
    answers: int
    end_rate: float
    loop_rate: float
    loop_rate_020: float
    loop_rate_030: float
    runaway_rate: float  # looped and never ended
    mean_tokens: float
    mean_tokens_ended: float
    mean_rep4: float
    seconds: float
    loadavg: list[float]
    looped_prompts: dict[str, int] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self, with_answers: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not with_answers:
            d.pop("items")
        return d


def summarize(label: str, backend: str, answers: list[Answer], sampling: dict[str, Any],
              max_new_tokens: int, seeds: list[int], seconds: float) -> AnswerSummary:  # fmt: skip
    n = len(answers) or 1
    ended = [a for a in answers if a.ended]
    looped: dict[str, int] = {}
    for a in answers:
        if a.looped:
            looped[a.prompt_id] = looped.get(a.prompt_id, 0) + 1
    return AnswerSummary(
        label=label, backend=backend, sampling=sampling, max_new_tokens=max_new_tokens,
        seeds=seeds, prompts=len({a.prompt_id for a in answers}), answers=len(answers),
        end_rate=len(ended) / n,
        loop_rate=sum(a.looped for a in answers) / n,
        loop_rate_020=sum(a.rep4 >= 0.20 for a in answers) / n,
        loop_rate_030=sum(a.rep4 >= 0.30 for a in answers) / n,
        runaway_rate=sum(a.looped and not a.ended for a in answers) / n,
        mean_tokens=sum(a.tokens for a in answers) / n,
        mean_tokens_ended=sum(a.tokens for a in ended) / (len(ended) or 1),
        mean_rep4=sum(a.rep4 for a in answers) / n,
        seconds=round(seconds, 1), loadavg=[round(x, 2) for x in os.getloadavg()],
        looped_prompts=looped, items=[asdict(a) for a in answers],
    )  # fmt: skip


def select_prompts(count: int | None = None, ids: list[str] | None = None) -> list[Prompt]:
    """The first `count` shipped prompts, or those named by id."""
    from ..errors import OptionError

    if ids:
        known = {p[0] for p in PROMPTS}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise OptionError(
                f"unknown prompt id {unknown[0]!r}",
                f"known: {', '.join(p[0] for p in PROMPTS)}",
                param="prompt_ids",
            )
        return [p for p in PROMPTS if p[0] in ids]
    if count is not None and not 1 <= count <= len(PROMPTS):
        raise OptionError(f"prompts must be 1..{len(PROMPTS)}, got {count}", param="prompts")
    return list(PROMPTS[: count or len(PROMPTS)])


def run_answers(
    backends: list[tuple[str, str, Any]],
    model_dir: Path,
    prompts: list[Prompt],
    seeds: list[int],
    max_new_tokens: int = DEFAULT_ANSWER_TOKENS,
    sampling: dict[str, Any] | None = None,
    progress: Progress = _say,
) -> list[AnswerSummary]:
    """Answers of each backend ((label, "export"|"reference"|"llamacpp", its model)) to the
    same rendered prompts. The export comes first: its effective sampling (its own
    generation_config with `sampling` on top) is what the other backends are given."""
    from . import quality_backends as ab

    export = ab.ExportAnswers(model_dir, sampling or {})
    ids = [export.prompt_ids(p[2]) for p in prompts]
    effective = export.effective_sampling()
    out = []
    for label, kind, model in backends:
        progress(f"answers: {label}, {len(prompts)} prompts x {len(seeds)} seeds, "
                 f"{max_new_tokens} new tokens at most")  # fmt: skip
        run: Callable[..., list[Raw]]
        if kind == "export":
            run = export.generate
        elif kind == "reference":
            run = ab.TorchAnswers(model, effective).generate
        else:
            run = ab.LlamaCppAnswers(model, effective).generate
        t0 = time.perf_counter()
        raw = run(ids, seeds, max_new_tokens, progress)
        answers = [
            Answer(prompts[i][0], prompts[i][1], seed, export.decode(g), len(g), ended)
            for i, seed, g, ended in raw
        ]
        out.append(summarize(label, kind, answers, effective, max_new_tokens, seeds,
                             time.perf_counter() - t0))  # fmt: skip
    return out


def backends_for(
    model_dir: Path, which: str, reference: str | Path | None = None, progress: Progress = _say
) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """The backends `which` ("export" or "all") names for an export, and notes on those
    that cannot run here. "all": the export, its unquantized reference (PyTorch, when the
    export extra is installed) and llama.cpp on its GGUF source (when llama-cpp-python is
    installed and the source is a GGUF file)."""
    import importlib.util

    from ..convert.recipe import recipe_label
    from ..modeldir import read_model_info

    manifest = read_model_info(model_dir).manifest
    label = recipe_label((manifest.get("recipe") or {}).get("asked"))
    out: list[tuple[str, str, Any]] = [(f"this export ({label})", "export", model_dir)]
    notes: list[str] = []
    if which != "all":
        return out, notes
    if importlib.util.find_spec("torch") is None:
        notes.append("reference answers skipped: PyTorch is not installed (the export extra)")
    else:
        from .fidelity import reference_dir

        out.append(("reference (PyTorch fp32)", "reference",
                    reference_dir(model_dir, reference, progress)))  # fmt: skip
    source = manifest.get("source") or {}
    gguf = Path(str(source.get("model", "")))
    if source.get("kind") != "gguf" or not gguf.is_file():
        notes.append("llama.cpp answers skipped: the export's source is not a GGUF file")
    elif importlib.util.find_spec("llama_cpp") is None:
        notes.append("llama.cpp answers skipped: llama-cpp-python is not installed")
    else:
        out.append((f"llama.cpp on {gguf.name}", "llamacpp", gguf))
    return out, notes
